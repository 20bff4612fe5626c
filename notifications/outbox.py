"""The transactional outbox: notifications and their deliveries, written in the caller's session.

``enqueue`` runs inside whatever transaction caused the notification (an entry created, a
break-glass opened, a reminder run): it commits with that change or not at all. Each fact
notifies each recipient once, whatever retries, re-runs or concurrent duplicates happen: the
notification's de-duplication key is unique and inserted with ON CONFLICT DO NOTHING (SQLite and
PostgreSQL), which never fails the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, bindparam, event, literal, select
from sqlalchemy.orm import Session, scoped_session

from auth.models import Account
from core.encryption import encrypt_value, keyring
from core.partitioning import PARTITIONED
from core.vault.cipher import FieldContext
from core.vault.errors import KeyDestroyedError
from notifications.channels import route_of
from notifications.models import (
    PENDING,
    RECIPIENT_CITIZEN,
    Delivery,
    Device,
    Notification,
    Preference,
)
from notifications.preferences import Preferences, effective
from notifications.recipients import Recipient
from notifications.runtime import runtime
from notifications.triggers import EMAIL, PUSH, SMS, get_trigger
from registry.models import Citizen

_PENDING_KEY = "phr.notifications.new_deliveries"
_LISTENING_KEY = "phr.notifications.listening"
_CHUNK = 500
_LOOK_FIRST_ABOVE = 50


@dataclass(frozen=True, slots=True)
class NotificationRequest:
    """One fact to tell one recipient about one subject citizen."""

    trigger: str
    subject_citizen_id: uuid.UUID
    recipient: Recipient
    # What makes the fact unique within its trigger (an entry id, a reminder's dose and date).
    natural_key: str
    params: Mapping[str, Any]


def dedup_key_for(trigger: str, recipient: Recipient, natural_key: str) -> str:
    """The notification's unique key: opaque, and stable for the same fact and recipient."""
    raw = f"n1|{trigger}|{recipient.kind}:{recipient.id}|{natural_key}"
    return hashlib.sha256(raw.encode()).hexdigest()


def delivery_key_for(notification_key: str, route: str, device_id: uuid.UUID | None) -> str:
    """The key a provider sees (idempotency key, collapse key, Message-ID)."""
    raw = f"d1|{notification_key}|{route}|{device_id or ''}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _real_session(session: Session | scoped_session[Session]) -> Session:
    return session() if isinstance(session, scoped_session) else session


def _insert_ignoring_duplicates(session: Session, table: Table, index: str, returning: str) -> Any:
    return _insert_ignoring(session.get_bind().dialect.name, table, index, returning)


@functools.cache
def _insert_ignoring(dialect: str, table: Table, index: str, returning: str) -> Any:
    # Built once per table: INSERT ... ON CONFLICT DO NOTHING RETURNING, by dialect.
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the service supports these two
        raise RuntimeError(f"unsupported database {dialect}")
    # On PostgreSQL the unique key also carries the partition column (core/partitioning), so
    # the conflict target names every column of the table's unique key.
    key = [table.c[index], *_partition_columns(dialect, table)]
    return insert(table).on_conflict_do_nothing(index_elements=key).returning(
        table.c[returning])


def _partition_columns(dialect: str, table: Table) -> list[Any]:
    if dialect != "postgresql":
        return []
    return [table.c[PARTITIONED[table.name]]] if table.name in PARTITIONED else []


def enqueue(
    session: Session | scoped_session[Session],
    requests: Sequence[NotificationRequest],
    *,
    now: dt.datetime | None = None,
    new_facts: bool = False,
) -> list[uuid.UUID]:
    """Write notifications (skipping facts already notified) and their outbox rows.

    `new_facts`: the facts were born in this transaction (an entry created now), so none can
    have been notified before and a large enqueue does not look for them first. Returns the
    ids of the notifications created now. The caller commits.
    """
    real = _real_session(session)
    state = runtime()
    now = now or state.settings.clock()
    wanted: dict[str, NotificationRequest] = {}
    for request in requests:
        get_trigger(request.trigger)  # unknown triggers are programming errors: fail loudly
        key = dedup_key_for(request.trigger, request.recipient, request.natural_key)
        wanted.setdefault(key, request)
    if not wanted:
        return []
    real.flush()  # the subject rows may still be pending in this very transaction
    # The unique key decides either way (ON CONFLICT DO NOTHING); a large run (reminders)
    # looks first so that it does not encrypt thousands of parameters it would then discard.
    # The look is by key alone, so PostgreSQL searches all 16 partitions of `notifications`
    # for each key: for a station's 500-item batch a parallel sequential scan (131-158 ms, a
    # quarter of the batch) to find nothing, every key being a new entry's.
    look = len(wanted) > _LOOK_FIRST_ABOVE and not new_facts
    known = _existing_keys(real, list(wanted)) if look else set()
    fresh = {key: req for key, req in wanted.items() if key not in known}
    if not fresh:
        return []
    created = _insert_notifications(real, fresh, now)
    if created:
        delivery_ids = _insert_deliveries(real, created, now)
        _remember_for_commit(real, delivery_ids)
    return [row_id for row_id, _ in created.values()]


def _existing_keys(session: Session, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        found.update(session.scalars(_existing_keys_query(), {"keys": chunk}))
    return found


@functools.cache
def _existing_keys_query() -> Any:
    return select(Notification.dedup_key).where(
        Notification.dedup_key.in_(bindparam("keys", expanding=True)))


def _insert_notifications(
    session: Session, fresh: Mapping[str, NotificationRequest], now: dt.datetime
) -> dict[str, tuple[uuid.UUID, NotificationRequest]]:
    ring = keyring(session)
    ring.preload({req.subject_citizen_id for req in fresh.values()})
    rows: list[dict[str, Any]] = []
    ids: dict[str, uuid.UUID] = {}
    for key, req in fresh.items():
        row_id = uuid.uuid4()
        try:
            cipher = ring.active_cipher(req.subject_citizen_id)
        except KeyDestroyedError:
            continue  # the subject was erased: there is nothing left to tell anyone about
        context = FieldContext(
            table=Notification.__tablename__, column="params",
            row_id=str(row_id), citizen_id=str(req.subject_citizen_id),
        )
        rows.append({
            "id": row_id,
            "recipient_kind": req.recipient.kind,
            "recipient_id": req.recipient.id,
            "subject_citizen_id": req.subject_citizen_id,
            "trigger": req.trigger,
            "urgent": get_trigger(req.trigger).urgent,
            "params_ct": encrypt_value(cipher, "json", dict(req.params), context),
            "dedup_key": key,
            "created_at": now,
            "read_at": None,
        })
        ids[key] = row_id
    if not rows:
        return {}
    session.flush()  # a data key created just now must exist before rows that use it
    statement = _insert_ignoring_duplicates(session, Notification.__table__, "dedup_key",
                                            returning="dedup_key")
    inserted: set[str] = set()
    for start in range(0, len(rows), _CHUNK):
        inserted.update(session.execute(statement, rows[start:start + _CHUNK]).scalars())
    return {key: (ids[key], fresh[key]) for key in inserted}


@dataclass(frozen=True, slots=True)
class _Contact:
    has_phone: bool
    has_email: bool


_NO_CONTACT = _Contact(has_phone=False, has_email=False)


@dataclass(slots=True)
class _Reach:
    """What a fan-out needs to know of one recipient: their stored preferences (None: the
    defaults), whether a phone and an e-mail address are on file, and their push devices."""

    preference: Preference | None = None
    contact: _Contact = _NO_CONTACT
    devices: list[tuple[uuid.UUID, str]] = field(default_factory=list)


def _reach(session: Session, recipients: Iterable[Recipient]) -> dict[Recipient, _Reach]:
    """Preferences, contact and devices of every recipient: one statement per kind of
    recipient (and per 500 of them), where it was three (an entry's create paid each)."""
    by_kind: dict[str, list[uuid.UUID]] = defaultdict(list)
    for recipient in set(recipients):
        by_kind[recipient.kind].append(recipient.id)
    reach: dict[Recipient, _Reach] = {}
    for kind, owner_ids in by_kind.items():
        for start in range(0, len(owner_ids), _CHUNK):
            rows = session.execute(_reach_query(kind), {"ids": owner_ids[start:start + _CHUNK]})
            for owner_id, has_phone, has_email, preference, device_id, platform in rows:
                found = reach.get(Recipient(kind, owner_id))
                if found is None:
                    found = reach[Recipient(kind, owner_id)] = _Reach(
                        preference, _Contact(bool(has_phone), bool(has_email)))
                if device_id is not None:
                    found.devices.append((device_id, platform))
    return reach


@functools.cache
def _reach_query(kind: str) -> Any:
    # The owner's own row drives the statement (a citizen's holds the contact columns); each
    # join is an index lookup by owner: the preference's primary key, the devices' owner index.
    # A person with several devices comes back once per device, oldest first.
    if kind == RECIPIENT_CITIZEN:
        owner_id = Citizen.id
        has_phone, has_email = Citizen.phone_ct.is_not(None), Citizen.email_ct.is_not(None)
    else:
        owner_id = Account.id
        has_phone = has_email = literal(False)
    return (
        select(owner_id, has_phone, has_email, Preference, Device.id, Device.platform)
        .outerjoin(Preference, and_(Preference.owner_kind == kind,
                                    Preference.owner_id == owner_id))
        .outerjoin(Device, and_(Device.owner_kind == kind, Device.owner_id == owner_id))
        .where(owner_id.in_(bindparam("ids", expanding=True)))
        .order_by(owner_id, Device.created_at, Device.id)
    )


def _release_time(prefs: Preferences, *, urgent: bool, now: dt.datetime) -> dt.datetime:
    if urgent or prefs.quiet_hours is None:
        return now
    return prefs.quiet_hours.release_at(now)


def _insert_deliveries(
    session: Session,
    created: Mapping[str, tuple[uuid.UUID, NotificationRequest]],
    now: dt.datetime,
) -> list[uuid.UUID]:
    state = runtime()
    routes = state.channels.available_routes()
    recipients = {req.recipient for _, req in created.values()}
    reach = _reach(session, recipients)
    unknown = _Reach()  # no row of theirs: the defaults, and nowhere to send but the inbox
    prefs = {
        r: effective(reach.get(r, unknown).preference,
                     service_quiet_hours=state.settings.quiet_hours)
        for r in recipients
    }

    rows: list[dict[str, Any]] = []
    for key, (notification_id, req) in created.items():
        trigger = get_trigger(req.trigger)
        person = prefs[req.recipient]
        release = _release_time(person, urgent=trigger.urgent, now=now)
        targets: list[tuple[str, str, uuid.UUID | None]] = []
        known = reach.get(req.recipient, unknown)
        if person.wants(req.trigger, PUSH):
            for device_id, platform in known.devices:
                route = route_of(PUSH, platform)
                if route in routes:
                    targets.append((PUSH, route, device_id))
        contact = known.contact
        if contact.has_phone and SMS in routes and person.wants(req.trigger, SMS):
            targets.append((SMS, SMS, None))
        if contact.has_email and EMAIL in routes and person.wants(req.trigger, EMAIL):
            targets.append((EMAIL, EMAIL, None))
        for channel, route, device_id in targets:
            rows.append({
                "id": uuid.uuid4(),
                "notification_id": notification_id,
                "citizen_id": req.subject_citizen_id,
                "channel": channel,
                "device_id": device_id,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": release,
                "dedup_key": delivery_key_for(key, route, device_id),
                "created_at": now,
                "updated_at": now,
            })
    if not rows:
        return []
    statement = _insert_ignoring_duplicates(session, Delivery.__table__, "dedup_key",
                                            returning="id")
    ids: list[uuid.UUID] = []
    for start in range(0, len(rows), _CHUNK):
        ids.extend(session.execute(statement, rows[start:start + _CHUNK]).scalars())
    return ids


# After commit: wake the worker (thread) or publish to the broker (celery) -----------------------
def _remember_for_commit(session: Session, delivery_ids: list[uuid.UUID]) -> None:
    if not delivery_ids:
        return
    session.info.setdefault(_PENDING_KEY, []).extend(delivery_ids)
    if session.info.get(_LISTENING_KEY):
        return
    session.info[_LISTENING_KEY] = True
    state = runtime()

    def after_commit(committed: Session) -> None:
        ids = committed.info.pop(_PENDING_KEY, [])
        if ids:
            state.committed(ids)

    def after_rollback(rolled_back: Session) -> None:
        rolled_back.info.pop(_PENDING_KEY, None)

    event.listen(session, "after_commit", after_commit)
    event.listen(session, "after_rollback", after_rollback)
