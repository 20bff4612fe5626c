"""What a citizen's administrative record holds on the way in (shape only: no queries).

The health ID (personal identification number) is checked as DESIGN.md §2 says: length, digits,
province of birth registration, and the century/sex digit and birth year against the date of
birth and sex given beside it. Every rejection is a field-level message in Vietnamese and English.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from core.errors import Message
from core.i18n import register_messages
from core.schemas import ApiSchema, PhoneNumber, Text, invalid
from registry.models import SEXES
from registry.reference.health_id import (
    HEALTH_ID_MESSAGES,
    SOCIAL_INSURANCE_MESSAGES,
    normalize_health_id,
    province_codes,
    validate_health_id,
    validate_social_insurance_code,
)

LANGUAGES = ("vi", "en")
EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)
_VIETNAM = dt.timezone(dt.timedelta(hours=7))  # no daylight saving time


def vietnam_today() -> dt.date:
    """Today's calendar date in Vietnam (a birth at 06:00 in Hanoi is not "tomorrow" in UTC)."""
    return dt.datetime.now(_VIETNAM).date()


def health_id_problems(
    health_id: str, *, date_of_birth: dt.date | None, sex: str | None
) -> list[Message]:
    """What is wrong with a health ID given the date of birth and sex, as messages (may be [])."""
    # With a date of birth the century and year checks already cover a future year.
    today = vietnam_today() if date_of_birth is None else None
    codes = validate_health_id(health_id, date_of_birth=date_of_birth, sex=sex, today=today)
    return [Message(f"citizen.health_id.{code}") for code in codes]


def _plausible_birth_date(value: dt.date) -> None:
    if value > vietnam_today():
        raise invalid("citizen.date_of_birth.future")
    if value < EARLIEST_BIRTH_DATE:
        raise invalid("citizen.date_of_birth.too-early")


def _social_insurance_code(value: str) -> None:
    codes = validate_social_insurance_code(value)
    if codes:
        raise ValidationError([Message(f"citizen.social_insurance_code.{c}") for c in codes])


def _known_province(value: str) -> None:
    # Addresses use the 2-digit administrative code; the health ID's 3-digit code is "0" + it.
    if len(value) != 2 or "0" + value not in province_codes():
        raise invalid("citizen.address.province")


class HealthId(fields.String):
    """A personal identification number, without the spaces people type between groups."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return normalize_health_id(super()._deserialize(value, attr, data, **kwargs))


class AddressSchema(ApiSchema):
    province_code = fields.String(required=True, validate=_known_province)
    district_code = fields.String(allow_none=True, validate=validate.Regexp(r"\A[0-9]{3}\Z"))
    commune_code = fields.String(allow_none=True, validate=validate.Regexp(r"\A[0-9]{5}\Z"))
    line = Text(allow_none=True, validate=validate.Length(min=1, max=255))


class CitizenCreateSchema(ApiSchema):
    """Registration of a citizen by a station or clinic."""

    health_id = HealthId(required=True)
    full_name = Text(required=True, validate=validate.Length(min=1, max=200))
    date_of_birth = fields.Date(required=True, validate=_plausible_birth_date)
    sex = fields.String(required=True, validate=validate.OneOf(SEXES))
    phone = PhoneNumber(allow_none=True)
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    address = fields.Nested(AddressSchema, allow_none=True)
    ethnicity = Text(allow_none=True, validate=validate.Length(min=1, max=64))
    social_insurance_code = Text(allow_none=True, validate=_social_insurance_code)
    preferred_language = fields.String(load_default="vi", validate=validate.OneOf(LANGUAGES))
    # A newborn's parents, as on the birth papers the registering station saw: each becomes a
    # guardian in force (the consent layer decides who may name them and checks the rest).
    # Registration only: schemas built on this one (the update) do not take it.
    guardians = fields.List(
        fields.Nested(ApiSchema.from_dict({
            "health_id": HealthId(required=True),
            "date_of_birth": fields.Date(required=True),
            "relationship": fields.String(required=True,
                                          validate=validate.Length(min=1, max=32)),
        }, name="NewbornParentSchema")),
        validate=validate.Length(max=4),
    )

    @validates_schema(skip_on_field_errors=False)
    def _health_id_matches_birth_and_sex(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        health_id = data.get("health_id")
        if health_id is None:
            return  # absent or not a string: its field error says so
        problems = health_id_problems(
            health_id, date_of_birth=data.get("date_of_birth"), sex=data.get("sex")
        )
        if problems:
            raise ValidationError({"health_id": problems})


class CitizenUpdateSchema(CitizenCreateSchema):
    """A partial update; the health ID never changes (the service re-checks it against changes
    of date of birth or sex with :func:`health_id_problems`)."""

    class Meta(ApiSchema.Meta):
        # Guardians are named at registration only; later they change through their routes.
        exclude = ("health_id", "guardians")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("partial", True)
        super().__init__(**kwargs)

    @pre_load
    def _health_id_is_immutable(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping) and "health_id" in data:
            raise invalid("citizen.health_id.immutable", field_name="health_id")
        return data


MESSAGES: dict[str, Mapping[str, str]] = {
    **{f"citizen.health_id.{code}": texts for code, texts in HEALTH_ID_MESSAGES.items()},
    **{
        f"citizen.social_insurance_code.{code}": texts
        for code, texts in SOCIAL_INSURANCE_MESSAGES.items()
    },
    "citizen.health_id.immutable": {
        "vi": "Không thể thay đổi số định danh cá nhân.",
        "en": "The personal identification number cannot be changed.",
    },
    "citizen.date_of_birth.future": {
        "vi": "Ngày sinh không được ở tương lai.",
        "en": "The date of birth must not be in the future.",
    },
    "citizen.date_of_birth.too-early": {
        "vi": "Ngày sinh không được trước ngày 01/01/1900.",
        "en": "The date of birth must not be before 1 January 1900.",
    },
    "citizen.address.province": {
        "vi": "Mã tỉnh, thành phố không có trong danh mục (hai chữ số, ví dụ 01 là Hà Nội).",
        "en": "Unknown province code (two digits, e.g. 01 for Hà Nội).",
    },
}

register_messages(MESSAGES)
