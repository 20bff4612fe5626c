"""Request bodies of the notification routes (shape only: no queries, no permissions)."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate, validates_schema

from core.schemas import ApiSchema, invalid
from notifications.preferences import LANGUAGES, QUIET_CUSTOM, QUIET_DEFAULT, QUIET_OFF
from notifications.quiet_hours import parse_quiet_hours
from notifications.triggers import EXTERNAL_CHANNELS, IN_APP, PLATFORMS, TRIGGERS

MAX_TOKEN_LENGTH = 4096


class StrictBoolean(fields.Field):
    """JSON true or false only (marshmallow's Boolean also takes "yes", 1...)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise invalid("notification.must-be-boolean")
        return value


class ChannelSwitchesSchema(ApiSchema):
    push = StrictBoolean()
    sms = StrictBoolean()
    email = StrictBoolean()
    # Shown for completeness; the inbox cannot be switched off, so only true is accepted.
    in_app = StrictBoolean(validate=validate.Equal(True))


class QuietHoursSchema(ApiSchema):
    mode = fields.String(required=True, validate=validate.OneOf(
        [QUIET_DEFAULT, QUIET_OFF, QUIET_CUSTOM]
    ))
    start = fields.String(allow_none=True)
    end = fields.String(allow_none=True)

    @validates_schema
    def _window(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("mode") != QUIET_CUSTOM:
            return
        try:
            parse_quiet_hours(f"{data.get('start') or ''}-{data.get('end') or ''}")
        except ValueError:
            raise invalid("notification.invalid-quiet-hours", field_name="start") from None


class PreferencesSchema(ApiSchema):
    """PUT body: the whole document; what is left out takes its default."""

    triggers = fields.Dict(
        keys=fields.String(validate=validate.OneOf(sorted(TRIGGERS))),
        values=fields.Nested(ChannelSwitchesSchema),
        load_default=dict,
    )
    quiet_hours = fields.Nested(QuietHoursSchema, load_default=None)
    language = fields.String(allow_none=True, load_default=None,
                             validate=validate.OneOf(LANGUAGES))


class DeviceSchema(ApiSchema):
    platform = fields.String(required=True, validate=validate.OneOf(PLATFORMS))
    token = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TOKEN_LENGTH))


def channel_switches(triggers: dict[str, dict[str, bool]]) -> dict[str, dict[str, bool]]:
    """The external-channel part of a loaded ``triggers`` document."""
    return {
        trigger: {c: v for c, v in values.items() if c in EXTERNAL_CHANNELS and c != IN_APP}
        for trigger, values in triggers.items()
    }

