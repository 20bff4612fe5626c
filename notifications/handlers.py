"""Domain events → notifications, written in the emitting transaction (core/events.py).

ehr and consent never import this package: they emit events with ids and codes, and these
handlers turn them into outbox rows inside the same session, so a notification commits with the
change that caused it or not at all.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from consent import events as relationship_events
from consent.pdp import entry_readers
from core import events
from core.events import DomainEvent
from notifications import triggers
from notifications.models import RECIPIENT_CITIZEN
from notifications.outbox import NotificationRequest, enqueue
from notifications.quiet_hours import VIETNAM
from notifications.recipients import (
    Recipient,
    accounts_for_practitioner,
    recipients_for,
    recipients_for_many,
)

log = logging.getLogger("phr.notifications")

# Readers whose reading is no news to the citizen.
_SELF_ACTORS = frozenset({"citizen", "guardian", "self", "proxy"})
_NORMAL = "normal"


def _uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _tell(
    session: Session, event: DomainEvent, trigger: str, natural_key: str,
    params: dict[str, Any], *, recipients: list[Recipient] | None = None,
) -> None:
    people = recipients if recipients is not None else recipients_for(session, event.citizen_id)
    enqueue(session, [
        NotificationRequest(
            trigger=trigger, subject_citizen_id=event.citizen_id, recipient=person,
            natural_key=natural_key, params=params,
        )
        for person in people
    ], now=None)


def on_entries_created(session: Session, created: Sequence[DomainEvent]) -> None:
    """New entries in people's records: tell each person, and those acting for them whom the
    policy lets read the entry (a guardian of a teen does not hear of her restricted care).
    A station's batch arrives here whole: one fan-out, one enqueue."""
    planned: list[tuple[DomainEvent, str, dict[str, Any], bool]] = []
    for event in created:
        data = event.data
        if data.get("source") == "citizen-reported":
            continue  # people do not need telling about what they wrote themselves
        entry_id = _text(data.get("entry_id"))
        if entry_id is None:
            continue
        restricted = (data.get("sensitivity") or _NORMAL) != _NORMAL
        params = {
            "section": None if restricted else _text(data.get("section")),
            "entry_id": entry_id,
            "author_practitioner_id": _text(data.get("author_practitioner_id")),
            "restricted": restricted,
        }
        planned.append((event, entry_id, params, restricted))
    if not planned:
        return
    people = recipients_for_many(session, sorted({event.citizen_id for event, *_ in planned}))
    enqueue(session, [
        NotificationRequest(
            trigger=triggers.ENTRY_CREATED, subject_citizen_id=event.citizen_id,
            recipient=person, natural_key=f"entry:{entry_id}", params=params,
        )
        for event, entry_id, params, restricted in planned
        for person in (_readers(session, event, people[event.citizen_id]) if restricted
                       else people[event.citizen_id])
    ], now=None, new_facts=True)


def _readers(session: Session, event: DomainEvent, people: list[Recipient]) -> list[Recipient]:
    """Of the people told about a citizen, those the policy lets read this restricted entry
    (the citizen always; a guardian of a child under the teen-privacy age; a proxy granted the
    category). Normal entries need no question: everyone acting for the person reads them."""
    data = event.data
    raw_date = _text(data.get("clinical_date"))
    readers = set(entry_readers(
        session, citizen_id=event.citizen_id,
        candidates=[p.id for p in people if p.kind == RECIPIENT_CITIZEN],
        section=str(data.get("section")), sensitivity=str(data.get("sensitivity")),
        clinical_date=dt.date.fromisoformat(raw_date[:10]) if raw_date else None,
        now=event.occurred_at))
    return [p for p in people if p.kind == RECIPIENT_CITIZEN and p.id in readers]


def on_record_accessed(session: Session, event: DomainEvent) -> None:
    """Someone else read the record: one notification per reader per day (a digest)."""
    data = event.data
    if (data.get("actor_kind") or "") in _SELF_ACTORS:
        return
    practitioner = _text(data.get("practitioner_id"))
    facility = _text(data.get("facility_id"))
    reader = practitioner or facility
    if reader is None:
        return
    day = event.occurred_at.astimezone(VIETNAM).date().isoformat()
    params = {"practitioner_id": practitioner, "facility_id": facility, "date": day}
    _tell(session, event, triggers.RECORD_ACCESSED, f"reader:{reader}:{day}", params)


def on_break_glass_opened(session: Session, event: DomainEvent) -> None:
    """Emergency access opened: urgent, through quiet hours."""
    data = event.data
    key = _text(data.get("break_glass_id")) or event.occurred_at.isoformat()
    params = {
        "break_glass_id": _text(data.get("break_glass_id")),
        "practitioner_id": _text(data.get("practitioner_id")),
        "facility_id": _text(data.get("facility_id")),
    }
    _tell(session, event, triggers.BREAK_GLASS, f"break-glass:{key}", params)


def on_access_requested(session: Session, event: DomainEvent) -> None:
    """A practitioner asks for access: the citizen (or guardian) should answer. The consent
    layer names who (a request naming a teen's restricted category is the teen's alone)."""
    data = event.data
    request_id = _text(data.get("request_id"))
    if request_id is None:
        return
    params = {
        "request_id": request_id,
        "practitioner_id": _text(data.get("practitioner_id")),
        "facility_id": _text(data.get("facility_id")),
    }
    named = data.get("citizens")
    people = _citizens(named) if isinstance(named, list) else None
    _tell(session, event, triggers.ACCESS_REQUESTED, f"request:{request_id}", params,
          recipients=people)


def on_access_request_answered(session: Session, event: DomainEvent) -> None:
    """The citizen answered: tell the practitioner who asked (their staff accounts)."""
    data = event.data
    request_id = _text(data.get("request_id"))
    practitioner = _uuid(data.get("practitioner_id"))
    decision = _text(data.get("decision"))
    if request_id is None or practitioner is None or decision not in ("approved", "denied"):
        log.info("access-request answer not notified: event lacks request, practitioner "
                 "or decision")
        return
    people = accounts_for_practitioner(session, practitioner)
    if not people:
        return
    params = {"request_id": request_id, "decision": decision}
    _tell(session, event, triggers.ACCESS_REQUEST_ANSWERED,
          f"answer:{request_id}:{decision}", params, recipients=people)


def on_consent_expiring(session: Session, event: DomainEvent) -> None:
    """A consent the citizen granted is about to end."""
    data = event.data
    consent_id = _text(data.get("consent_id"))
    if consent_id is None:
        return
    expires = _text(data.get("expires_at"))
    params = {"consent_id": consent_id, "expires_at": expires}
    _tell(session, event, triggers.CONSENT_EXPIRING, f"consent:{consent_id}:{expires}", params)


def _citizens(values: Any) -> list[Recipient]:
    people = (_uuid(value) for value in (values or []))
    return [Recipient.citizen(person) for person in dict.fromkeys(people) if person is not None]


# Relationship changes (consent/events.py): the event names its audience, computed by the
# consent layer from the policy (the person from 12, the guardians in force who may see what
# changed, the practitioners concerned); each gets one notice per change.
_RELATIONSHIP_TRIGGERS = {
    relationship_events.GUARDIAN_CLAIMED: (triggers.GUARDIAN_CLAIMED, ("claim_id",)),
    relationship_events.GUARDIAN_CLAIM_ANSWERED: (
        triggers.GUARDIAN_CLAIM_ANSWERED, ("claim_id", "decision")),
    relationship_events.GUARDIANS_CHANGED: (
        triggers.GUARDIANS_CHANGED, ("guardianship_id", "change")),
    relationship_events.FAMILY_DOCTOR_CHANGED: (
        triggers.FAMILY_DOCTOR_CHANGED, ("practitioner_id", "facility_id")),
    relationship_events.CONSENT_GRANTED: (triggers.CONSENT_GRANTED, ("consent_id",)),
    relationship_events.CONSENT_REVOKED: (triggers.CONSENT_REVOKED, ("consent_id",)),
    relationship_events.ACCESS_FLAG_REVIEWED: (triggers.ACCESS_FLAG_REVIEWED, ("flag_id",)),
}
# Parameters kept for the inbox (ids and codes; the app fetches details over the API).
_RELATIONSHIP_PARAMS = ("claim_id", "decision", "guardianship_id", "change", "kind",
                        "practitioner_id", "facility_id", "consent_id", "flag_id", "event_id",
                        "outcome")


def on_relationship_changed(session: Session, event: DomainEvent) -> None:
    """Who may act on a record changed: tell the citizens and practitioners the event names."""
    trigger, key_fields = _RELATIONSHIP_TRIGGERS[event.name]
    data = event.data
    people = _citizens(data.get("citizens"))
    for value in data.get("practitioners") or []:
        practitioner = _uuid(value)
        if practitioner is not None:
            people.extend(accounts_for_practitioner(session, practitioner))
    if not people:
        return
    key = ":".join([trigger, *(str(data.get(name) or "-") for name in key_fields)])
    if event.name == relationship_events.FAMILY_DOCTOR_CHANGED:
        key += f":{event.occurred_at.isoformat()}"  # the same doctor may come back later
    params = {name: _text(data.get(name)) for name in _RELATIONSHIP_PARAMS
              if _text(data.get(name)) is not None}
    _tell(session, event, trigger, key, params, recipients=list(dict.fromkeys(people)))


HANDLERS: dict[str, Callable[[Session, DomainEvent], None]] = {
    events.RECORD_ACCESSED: on_record_accessed,
    events.BREAK_GLASS_OPENED: on_break_glass_opened,
    events.ACCESS_REQUESTED: on_access_requested,
    events.ACCESS_REQUEST_ANSWERED: on_access_request_answered,
    events.CONSENT_EXPIRING: on_consent_expiring,
    **dict.fromkeys(_RELATIONSHIP_TRIGGERS, on_relationship_changed),
}


BATCH_HANDLERS: dict[str, Callable[[Session, Sequence[DomainEvent]], None]] = {
    events.ENTRY_CREATED: on_entries_created,
}


def subscribe(bus: events.EventBus) -> None:
    """Subscribe every handler to the app's bus."""
    for name, handler in HANDLERS.items():
        bus.subscribe(name, handler)
    for name, batch_handler in BATCH_HANDLERS.items():
        bus.subscribe_many(name, batch_handler)
