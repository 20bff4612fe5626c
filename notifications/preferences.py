"""Per-person notification preferences: channels per trigger, quiet hours, language."""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from core.db import utcnow
from notifications.models import RECIPIENT_CITIZEN, Preference
from notifications.quiet_hours import QuietHours, parse_quiet_hours
from notifications.recipients import Recipient
from notifications.triggers import ACCOUNT_NOTICES, EXTERNAL_CHANNELS, TRIGGERS
from registry.models import Citizen

QUIET_DEFAULT = "default"
QUIET_OFF = "off"
QUIET_CUSTOM = "custom"
LANGUAGES = ("vi", "en")


@dataclass(frozen=True, slots=True)
class Preferences:
    """Effective settings of one person (defaults applied)."""

    channels: Mapping[str, Mapping[str, bool]]
    quiet_mode: str
    quiet_hours: QuietHours | None
    language: str | None  # the person's choice; None: their registry language, else vi
    version: int  # 0 while the person never saved anything

    def wants(self, trigger: str, channel: str) -> bool:
        notice = ACCOUNT_NOTICES.get(trigger)
        if notice is not None:
            return channel in notice.defaults  # account notices are not the person's to mute
        return bool(self.channels.get(trigger, {}).get(channel, False))


def default_channels() -> dict[str, dict[str, bool]]:
    """Every trigger with its default per external channel."""
    return {
        code: {channel: channel in trigger.defaults for channel in EXTERNAL_CHANNELS}
        for code, trigger in TRIGGERS.items()
    }


@lru_cache(maxsize=16)
def _defaults(service_quiet_hours: QuietHours | None) -> Preferences:
    # Shared by everyone who never saved preferences (most people): read-only by contract.
    return Preferences(default_channels(), QUIET_DEFAULT, service_quiet_hours, None, 0)


def effective(row: Preference | None, *, service_quiet_hours: QuietHours | None) -> Preferences:
    """Overlay a stored row on the defaults."""
    if row is None:
        return _defaults(service_quiet_hours)
    channels = default_channels()
    for trigger, values in (row.channels or {}).items():
        if trigger in channels and isinstance(values, dict):
            for channel, enabled in values.items():
                if channel in channels[trigger] and isinstance(enabled, bool):
                    channels[trigger][channel] = enabled
    if row.quiet_hours is None:
        mode, quiet = QUIET_DEFAULT, service_quiet_hours
    elif row.quiet_hours == "":
        mode, quiet = QUIET_OFF, None
    else:
        mode, quiet = QUIET_CUSTOM, parse_quiet_hours(row.quiet_hours)
    return Preferences(channels, mode, quiet, row.language, row.version)


def load_rows(
    session: Session, recipients: Iterable[Recipient]
) -> dict[Recipient, Preference]:
    """Stored rows of many people in one query per kind (people without one are absent)."""
    by_kind: dict[str, list[uuid.UUID]] = defaultdict(list)
    for recipient in set(recipients):
        by_kind[recipient.kind].append(recipient.id)
    rows: dict[Recipient, Preference] = {}
    for kind, owner_ids in by_kind.items():
        for start in range(0, len(owner_ids), 500):
            chunk = {"kind": kind, "ids": owner_ids[start:start + 500]}
            for row in session.scalars(_rows_query(), chunk):
                rows[Recipient(row.owner_kind, row.owner_id)] = row
    return rows


@functools.cache
def _rows_query() -> Any:
    # Built once: every notification fan-out runs it.
    return select(Preference).where(Preference.owner_kind == bindparam("kind"),
                                    Preference.owner_id.in_(bindparam("ids", expanding=True)))


def get_preferences(
    session: Session, recipient: Recipient, *, service_quiet_hours: QuietHours | None
) -> Preferences:
    """The effective preferences of one person."""
    row = session.get(Preference, (recipient.kind, recipient.id))
    return effective(row, service_quiet_hours=service_quiet_hours)


def registry_language(session: Session, recipient: Recipient) -> str:
    """The language the registry holds for a citizen (vi for accounts and by default)."""
    if recipient.kind != RECIPIENT_CITIZEN:
        return "vi"
    language = session.scalar(select(Citizen.preferred_language).where(Citizen.id == recipient.id))
    return language if language in LANGUAGES else "vi"


def replace_preferences(
    session: Session,
    recipient: Recipient,
    *,
    channels: Mapping[str, Mapping[str, bool]],
    quiet_mode: str,
    quiet_window: str | None,
    language: str | None,
    service_quiet_hours: QuietHours | None,
) -> Preferences:
    """Store a person's whole preference document; the caller checked If-Match and the shape."""
    defaults = default_channels()
    overrides: dict[str, Any] = {}
    for trigger, values in channels.items():
        changed = {c: v for c, v in values.items() if defaults[trigger][c] != v}
        if changed:
            overrides[trigger] = changed
    stored_quiet = {QUIET_DEFAULT: None, QUIET_OFF: ""}.get(quiet_mode, quiet_window)
    row = session.get(Preference, (recipient.kind, recipient.id))
    if row is None:
        row = Preference(
            owner_kind=recipient.kind, owner_id=recipient.id, channels=overrides,
            quiet_hours=stored_quiet, language=language, version=1, updated_at=utcnow(),
        )
        session.add(row)
    else:
        row.channels = overrides
        row.quiet_hours = stored_quiet
        row.language = language
        row.version += 1
        row.updated_at = utcnow()
    session.flush()
    return effective(row, service_quiet_hours=service_quiet_hours)


def delete_preferences(session: Session, owner_id: uuid.UUID) -> None:
    """Forget a person's settings (erasure)."""
    for row in session.scalars(select(Preference).where(Preference.owner_id == owner_id)):
        session.delete(row)
