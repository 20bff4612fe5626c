"""The in-app inbox: list, count unread, mark read, and render items into words on read.

Rendering happens per request in the reader's language: the stored parameters (encrypted) are
decrypted, names of people come from the registry (decrypted), practitioners and facilities from
the public register, vaccine doses from the schedule.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from auth.models import Account
from core.encryption import ERASED, keyring
from core.errors import NotFound
from core.i18n import translate
from core.vault.errors import VaultError
from notifications import triggers
from notifications.models import RECIPIENT_ACCOUNT, RECIPIENT_CITIZEN, Delivery, Notification
from notifications.recipients import Recipient
from registry.models import Citizen, Facility, Practitioner, PractitionerMembership
from registry.reference.schedule import load_schedule

IN_APP_STATUS = "delivered"


def _mine(recipient: Recipient) -> list[Any]:
    return [Notification.recipient_kind == recipient.kind,
            Notification.recipient_id == recipient.id]


def list_notifications(
    session: Session,
    recipient: Recipient,
    *,
    limit: int,
    before: tuple[dt.datetime, uuid.UUID] | None = None,
    unread_only: bool = False,
) -> tuple[list[Notification], bool]:
    """Newest first; (page, whether more follow). ``before`` is the last item of the previous
    page (keyset pagination: stable while new notifications arrive)."""
    query = select(Notification).where(*_mine(recipient))
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if before is not None:
        created, last_id = before
        query = query.where(
            (Notification.created_at < created)
            | ((Notification.created_at == created) & (Notification.id < last_id))
        )
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    return rows[:limit], len(rows) > limit


def all_notifications(session: Session, recipient: Recipient) -> list[Notification]:
    """Every notification of the recipient, newest first (their data export)."""
    return list(session.scalars(select(Notification).where(*_mine(recipient)).order_by(
        Notification.created_at.desc(), Notification.id.desc())))


def unread_count(session: Session, recipient: Recipient) -> int:
    """How many of the recipient's notifications are unread (for the phone's badge)."""
    return int(session.scalar(
        select(func.count()).select_from(Notification).where(
            *_mine(recipient), Notification.read_at.is_(None)
        )
    ) or 0)


def mark_read(
    session: Session, recipient: Recipient, notification_id: uuid.UUID, *, now: dt.datetime
) -> Notification:
    """Mark one notification read (idempotent); 404 when it is not the recipient's."""
    notification = session.get(Notification, notification_id)
    if notification is None or (notification.recipient_kind, notification.recipient_id) != (
        recipient.kind, recipient.id
    ):
        raise NotFound()
    if notification.read_at is None:
        notification.read_at = now
        session.flush()
    return notification


def mark_all_read(session: Session, recipient: Recipient, *, now: dt.datetime) -> int:
    """Mark every unread notification read; returns how many changed."""
    result = session.execute(
        update(Notification)
        .where(*_mine(recipient), Notification.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def delivery_statuses(
    session: Session, notification_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Delivery]]:
    """The outbox rows of these notifications, by notification."""
    found: dict[uuid.UUID, list[Delivery]] = defaultdict(list)
    if not notification_ids:
        return found
    query = select(Delivery).where(Delivery.notification_id.in_(list(notification_ids))).order_by(
        Delivery.created_at, Delivery.id
    )
    for delivery in session.scalars(query):
        found[delivery.notification_id].append(delivery)
    return found


# Rendering --------------------------------------------------------------------------------------
def _format_date(value: str | None, lang: str) -> str:
    if not value:
        return ""
    try:
        day = dt.date.fromisoformat(value[:10])
    except ValueError:
        return value
    if lang == "en":
        return f"{day.day} {day:%b} {day.year}"
    return f"{day:%d/%m/%Y}"


def _join(items: Sequence[str], lang: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + translate("notification.list.and", lang) + items[-1]


class _Lookups:
    """Names needed to render a page, fetched in a few queries."""

    def __init__(self, session: Session, notifications: Sequence[Notification]) -> None:
        self.params: dict[uuid.UUID, dict[str, Any]] = {}
        subjects = {n.subject_citizen_id for n in notifications}
        keyring(session).preload(subjects)
        practitioner_ids: set[uuid.UUID] = set()
        facility_ids: set[uuid.UUID] = set()
        for notification in notifications:
            try:
                params = notification.params
            except VaultError:
                params = None
            params = params if isinstance(params, dict) else {}
            self.params[notification.id] = params
            for key in ("practitioner_id", "author_practitioner_id"):
                if (value := _as_uuid(params.get(key))) is not None:
                    practitioner_ids.add(value)
            if (value := _as_uuid(params.get("facility_id"))) is not None:
                facility_ids.add(value)
        self.practitioners = {
            p.id: p for p in session.scalars(
                select(Practitioner).where(Practitioner.id.in_(practitioner_ids))
            )
        } if practitioner_ids else {}
        self.practitioner_facility: dict[uuid.UUID, uuid.UUID] = {}
        if practitioner_ids:
            for membership in session.scalars(
                select(PractitionerMembership).where(
                    PractitionerMembership.practitioner_id.in_(practitioner_ids),
                    PractitionerMembership.ended_on.is_(None),
                ).order_by(PractitionerMembership.started_on)
            ):
                self.practitioner_facility.setdefault(
                    membership.practitioner_id, membership.facility_id
                )
                facility_ids.add(membership.facility_id)
        self.facilities = {
            f.id: f for f in session.scalars(select(Facility).where(Facility.id.in_(facility_ids)))
        } if facility_ids else {}
        self.names: dict[uuid.UUID, str | None] = {}
        for citizen in session.scalars(select(Citizen).where(Citizen.id.in_(subjects))):
            try:
                name = citizen.full_name
            except VaultError:
                name = None
            self.names[citizen.id] = None if name is ERASED else name

    def actor(self, params: dict[str, Any], lang: str, key: str = "practitioner_id") -> str:
        practitioner = self.practitioners.get(_as_uuid(params.get(key)))  # type: ignore[arg-type]
        facility_id = _as_uuid(params.get("facility_id"))
        if facility_id is None and practitioner is not None:
            facility_id = self.practitioner_facility.get(practitioner.id)
        facility = self.facilities.get(facility_id) if facility_id else None
        if practitioner is not None and facility is not None:
            return translate("notification.actor.practitioner-at", lang,
                             practitioner=practitioner.full_name, facility=facility.name)
        if practitioner is not None:
            return practitioner.full_name
        if facility is not None:
            return translate("notification.actor.facility", lang, facility=facility.name)
        return translate("notification.actor.unknown", lang)

    def name(self, citizen_id: uuid.UUID, lang: str) -> str:
        return self.names.get(citizen_id) or translate("notification.name.unknown", lang)


def _as_uuid(value: Any) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _dose_names(params: dict[str, Any], lang: str) -> str:
    try:
        schedule = load_schedule(str(params.get("schedule") or "vn-epi-children-2024"))
    except KeyError:
        schedule = load_schedule()
    rows = {row.id: row for row in schedule.rows}
    names = []
    for item in params.get("doses") or []:
        row = rows.get(item)
        names.append((row.name_en if lang == "en" else row.name_vi) if row else str(item))
    return _join(names, lang)


def _practitioner_of(session: Session, recipient: Recipient) -> uuid.UUID | None:
    """The practitioner behind a staff account (None for citizens and system accounts)."""
    if recipient.kind != RECIPIENT_ACCOUNT:
        return None
    return session.scalar(select(Account.practitioner_id).where(Account.id == recipient.id))


def _doctor_variant(notification: Notification, params: dict[str, Any],
                    practitioner_id: uuid.UUID | None) -> str | None:
    """For the practitioner a family-doctor change names: "registered" when she is the new
    family doctor, "left" when she was the previous one."""
    if notification.trigger != triggers.FAMILY_DOCTOR_CHANGED or practitioner_id is None:
        return None
    return "registered" if _as_uuid(params.get("practitioner_id")) == practitioner_id else "left"


def _doctor_body(notification: Notification, params: dict[str, Any], lookups: _Lookups,
                 variant: str, lang: str) -> str:
    name = lookups.names.get(notification.subject_citizen_id) or translate(
        "notification.name.patient", lang)
    facility = lookups.facilities.get(_as_uuid(params.get("facility_id")))  # type: ignore[arg-type]
    return translate(f"notification.{notification.trigger}.body.{variant}", lang, name=name,
                     facility=facility.name if facility is not None
                     else translate("notification.facility.yours", lang))


def _body(notification: Notification, params: dict[str, Any], lookups: _Lookups,
          recipient_is_subject: bool, lang: str) -> str:
    trigger = notification.trigger
    whose = "self" if recipient_is_subject else "other"
    name = "" if recipient_is_subject else lookups.name(notification.subject_citizen_id, lang)
    base = f"notification.{trigger}"
    if trigger in (triggers.VACCINATION_DUE, triggers.VACCINATION_OVERDUE):
        return translate(f"{base}.body.{whose}", lang, name=name,
                         doses=_dose_names(params, lang),
                         due_date=_format_date(params.get("due_date"), lang))
    if trigger == triggers.ENTRY_CREATED:
        author = lookups.actor(params, lang, key="author_practitioner_id")
        if params.get("restricted"):
            return translate(f"{base}.restricted.self", lang, author=author)
        section = str(params.get("section") or "")
        section_key = f"notification.section.{section}"
        try:
            section_name = translate(section_key, lang)
        except KeyError:
            section_name = section
        return translate(f"{base}.body.{whose}", lang, author=author, section=section_name,
                         name=name)
    if trigger == triggers.RECORD_ACCESSED:
        return translate(f"{base}.body.{whose}", lang, actor=lookups.actor(params, lang),
                         name=name, date=_format_date(params.get("date"), lang))
    if trigger in (triggers.BREAK_GLASS, triggers.ACCESS_REQUESTED):
        return translate(f"{base}.body.{whose}", lang, actor=lookups.actor(params, lang),
                         name=name)
    if trigger == triggers.ACCESS_REQUEST_ANSWERED:
        decision = "approved" if params.get("decision") == "approved" else "denied"
        return translate(f"{base}.body.{decision}", lang,
                         name=lookups.name(notification.subject_citizen_id, lang))
    if trigger == triggers.CONSENT_EXPIRING:
        return translate(f"{base}.body.{whose}", lang, name=name,
                         date=_format_date(params.get("expires_at"), lang))
    return translate(f"{base}.body.{whose}", lang, name=name,
                     due_date=_format_date(params.get("due_date"), lang))


# Structured fields the app may use to open the right screen (never names).
_DATA_FIELDS = ("section", "entry_id", "request_id", "decision", "consent_id", "expires_at",
                "break_glass_id", "due_date", "doses", "stage", "date")


def render(
    session: Session,
    recipient: Recipient,
    notifications: Sequence[Notification],
    *,
    lang: str,
) -> list[dict[str, Any]]:
    """The API representation of a page of notifications, in ``lang``."""
    lookups = _Lookups(session, notifications)
    deliveries = delivery_statuses(session, [n.id for n in notifications])
    practitioner = _practitioner_of(session, recipient)
    items = []
    for notification in notifications:
        params = lookups.params[notification.id]
        is_subject = (
            recipient.kind == RECIPIENT_CITIZEN and recipient.id == notification.subject_citizen_id
        )
        variant = _doctor_variant(notification, params, practitioner)
        title_key = f"notification.{notification.trigger}.title"
        items.append({
            "id": str(notification.id),
            "trigger": notification.trigger,
            "urgent": notification.urgent,
            "subject_citizen_id": str(notification.subject_citizen_id),
            "title": translate(title_key + (f".{variant}" if variant else ""), lang),
            "body": (_doctor_body(notification, params, lookups, variant, lang) if variant
                     else _body(notification, params, lookups, is_subject, lang)),
            "data": {k: params[k] for k in _DATA_FIELDS if params.get(k) is not None},
            "created_at": notification.created_at.isoformat(),
            "read_at": notification.read_at.isoformat() if notification.read_at else None,
            "deliveries": [{"channel": "in_app", "status": IN_APP_STATUS, "attempts": 1,
                            "updated_at": notification.created_at.isoformat()}] + [
                {"channel": d.channel, "status": d.status, "attempts": d.attempts,
                 "updated_at": d.updated_at.isoformat()}
                for d in deliveries.get(notification.id, [])
            ],
        })
    return items
