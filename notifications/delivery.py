"""The delivery engine: claim due outbox rows, send them, record what happened.

Any number of workers (threads, processes, Celery tasks) may run this at once. A row is claimed
with a conditional UPDATE that sets a lease (plus ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
claimers do not queue behind each other); the attempt is counted at claim time, so a worker that
crashes mid-send still uses up an attempt. Sending happens outside any transaction. The result is
recorded only if the lease is still ours. A worker that dies between sending and recording leaves
the row to be claimed again when the lease expires; the retry carries the same de-duplication key,
so the provider (or the device) drops the second copy.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, case, delete, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement

from core.db import db
from core.encryption import ERASED, keyring
from core.vault.errors import VaultError
from notifications.account_notices import account_sms
from notifications.channels import (
    ROUTE_WEBPUSH,
    ChannelSet,
    OutboundMessage,
    Outcome,
    Senders,
    SendResult,
    route_of,
)
from notifications.content import VisitNotice, channel_texts
from notifications.models import (
    CANCELLED,
    DEAD,
    PENDING,
    RECIPIENT_CITIZEN,
    SENT,
    Delivery,
    Device,
    Notification,
)
from notifications.preferences import LANGUAGES, Preferences, effective, load_rows
from notifications.recipients import Recipient
from notifications.runtime import runtime
from notifications.settings import NotificationSettings
from notifications.stations import facility_names
from notifications.triggers import EMAIL, PUSH, SMS, VACCINATION_DUE, VACCINATION_OVERDUE
from registry.models import Citizen

log = logging.getLogger("phr.notifications")
_random = secrets.SystemRandom()
# A deferral does not use up an attempt: the claim counted one, give it back.
_GIVE_BACK_ATTEMPT = Delivery.__table__.c.attempts - 1


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: uuid.UUID
    lease_token: str
    lease_until: dt.datetime
    attempts: int


@dataclass
class BatchResult:
    """What one pass did; ``claimed == 0`` means there was nothing due."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    cancelled: int = 0
    # Quiet hours began, or its provider was timing out: waits, attempt not counted.
    deferred: int = 0
    skipped: int = 0  # lease nearly over before sending: left for the next claim

    def add(self, other: BatchResult) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def backoff_seconds(
    attempts: int, *, base: float, cap: float, retry_after: float | None = None
) -> float:
    """Exponential backoff with jitter: half fixed, half random, never below Retry-After."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    jittered = delay / 2 + _random.uniform(0, delay / 2)
    if retry_after is not None:
        jittered = max(jittered, min(retry_after, cap))
    return jittered


# Claiming ---------------------------------------------------------------------------------------
def _due(now: dt.datetime) -> list[object]:
    table = Delivery.__table__
    return [
        table.c.status == PENDING,
        table.c.next_attempt_at <= now,
        or_(table.c.lease_until.is_(None), table.c.lease_until <= now),
    ]


def claim_due(
    session: Session,
    *,
    limit: int,
    now: dt.datetime,
    lease_seconds: float,
    ids: Sequence[uuid.UUID] | None = None,
) -> list[Claim]:
    """Lease up to ``limit`` due rows (only among ``ids`` when given) and commit the claim."""
    table = Delivery.__table__
    conditions = _due(now)
    if ids is not None:
        if not ids:
            return []
        conditions.append(table.c.id.in_(list(ids)))
    candidates = (
        select(table.c.id).where(and_(*conditions)).order_by(table.c.next_attempt_at).limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    token = secrets.token_hex(16)
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    # The WHERE repeats the due conditions: whatever the isolation level, a row another worker
    # leased in the meantime no longer matches and is not taken twice.
    statement = (
        update(table)
        .where(table.c.id.in_(candidates.scalar_subquery()), and_(*_due(now)))
        .values(
            lease_until=lease_until, lease_token=token,
            attempts=table.c.attempts + 1, updated_at=now,
        )
        .returning(table.c.id, table.c.attempts)
    )
    rows = session.execute(statement).all()
    session.commit()
    return [Claim(row_id, token, lease_until, attempts) for row_id, attempts in rows]


# Preparing --------------------------------------------------------------------------------------
@dataclass
class _Prepared:
    claim: Claim
    message: OutboundMessage | None = None
    route: str = ""
    device_id: uuid.UUID | None = None
    # Decided without sending: ("cancel", code) or ("defer", release time).
    cancel_code: str | None = None
    defer_until: dt.datetime | None = None
    result: SendResult | None = field(default=None)


def _language(prefs: Preferences, registry_language: str | None) -> str:
    for candidate in (prefs.language, registry_language):
        if candidate in LANGUAGES:
            return str(candidate)
    return "vi"


def _prepare(
    session: Session, claims: Sequence[Claim], now: dt.datetime, settings: NotificationSettings
) -> list[_Prepared]:
    by_id = {claim.delivery_id: claim for claim in claims}
    rows = session.execute(
        select(Delivery, Notification)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(Delivery.id.in_(list(by_id)))
    ).all()
    recipients = {Recipient(n.recipient_kind, n.recipient_id) for _, n in rows}
    stored = load_rows(session, recipients)
    prefs = {
        r: effective(stored.get(r), service_quiet_hours=settings.quiet_hours) for r in recipients
    }
    device_ids = [d.device_id for d, _ in rows if d.device_id is not None]
    devices = {
        device.id: device
        for device in session.scalars(select(Device).where(Device.id.in_(device_ids)))
    } if device_ids else {}
    citizen_ids = [r.id for r in recipients if r.kind == RECIPIENT_CITIZEN]
    citizens = {
        citizen.id: citizen
        for citizen in session.scalars(select(Citizen).where(Citizen.id.in_(citizen_ids)))
    } if citizen_ids else {}
    visits = _visits(session, [n for d, n in rows if d.channel == SMS])
    account_texts = account_sms(session, [n for d, n in rows if d.channel == SMS])
    keyring(session).preload(set(citizen_ids) | {d.owner_id for d in devices.values()})

    prepared: list[_Prepared] = []
    for delivery, notification in rows:
        item = _Prepared(claim=by_id[delivery.id], device_id=delivery.device_id)
        prepared.append(item)
        recipient = Recipient(notification.recipient_kind, notification.recipient_id)
        person = prefs[recipient]
        if not person.wants(notification.trigger, delivery.channel):
            item.cancel_code = "preference-off"
            continue
        if not notification.urgent and person.quiet_hours is not None:
            release = person.quiet_hours.release_at(now)
            if release > now:
                item.defer_until = release
                continue
        citizen = citizens.get(recipient.id) if recipient.kind == RECIPIENT_CITIZEN else None
        address, platform = _address(delivery, devices, citizen)
        if not address:
            item.cancel_code = "no-address" if delivery.channel != PUSH else "device-removed"
            continue
        language = _language(person, citizen.preferred_language if citizen else None)
        account_text = account_texts.get(notification.id) if delivery.channel == SMS else None
        if account_text is not None and account_text.ended:
            item.cancel_code = "code-ended"  # used, superseded or expired before it left
            continue
        title, body = ("", account_text.text(language)) if account_text else channel_texts(
            delivery.channel, language=language, urgent=notification.urgent,
            link=settings.app_url,
            visit=visits.get(notification.id) if delivery.channel == SMS else None,
        )
        item.route = route_of(delivery.channel, platform)
        item.message = OutboundMessage(
            delivery_id=delivery.id, notification_id=notification.id,
            dedup_key=delivery.dedup_key, channel=delivery.channel, platform=platform,
            address=address, language=language, urgent=notification.urgent,
            title=title, body=body, link=settings.app_url,
        )
    return prepared


_VISIT_TRIGGERS = frozenset({VACCINATION_DUE, VACCINATION_OVERDUE})


def _visits(
    session: Session, notifications: Sequence[Notification]
) -> dict[uuid.UUID, VisitNotice]:
    """What the vaccination SMS of these notifications may say: the date, the stage and the
    station's public name, read from the notification's (encrypted) parameters."""
    wanted = [n for n in notifications if n.trigger in _VISIT_TRIGGERS]
    if not wanted:
        return {}
    keyring(session).preload({n.subject_citizen_id for n in wanted})
    found: dict[uuid.UUID, tuple[dt.date, str, uuid.UUID | None]] = {}
    for notification in wanted:
        try:
            params = notification.params
            day = dt.date.fromisoformat(str(params["due_date"])[:10])
        except (VaultError, KeyError, TypeError, ValueError):
            continue  # unreadable (erased subject) or malformed: the generic text goes out
        try:
            station = uuid.UUID(str(params.get("facility_id")))
        except ValueError:
            station = None
        found[notification.id] = (day, str(params.get("stage") or ""), station)
    names = facility_names(session, {s for _, _, s in found.values() if s is not None})
    return {nid: VisitNotice(due_date=day, stage=stage,
                             station=names.get(station) if station else None)
            for nid, (day, stage, station) in found.items()}


def _address(
    delivery: Delivery, devices: dict[uuid.UUID, Device], citizen: Citizen | None
) -> tuple[str | None, str | None]:
    if delivery.channel == PUSH:
        device = devices.get(delivery.device_id) if delivery.device_id else None
        if device is None:
            return None, None
        token = device.token
        return (token if token and token is not ERASED else None), device.platform
    if citizen is None:
        return None, None
    value = citizen.phone if delivery.channel == SMS else citizen.email
    if delivery.channel not in (SMS, EMAIL) or not value or value is ERASED:
        return None, None
    return str(value), None


# Sending ----------------------------------------------------------------------------------------
_TIMEOUT_CODES = frozenset({"timeout"})


def lane_of(item: _Prepared) -> str:
    """The provider a message goes to: a slow one holds up its own lane only. Web Push
    subscriptions name their push service (Mozilla, Apple, Google...) in the endpoint."""
    if item.route == ROUTE_WEBPUSH and item.message is not None:
        try:
            endpoint = json.loads(item.message.address).get("endpoint", "")
            return f"{item.route}:{urlsplit(str(endpoint)).netloc.lower()}"
        except (ValueError, AttributeError):
            return item.route  # the sender refuses it without a network call
    return item.route


class LaneBreaker:
    """Which providers timed out lately, shared by the batches of one process: a provider that
    timed out is left alone for a backoff period (its messages wait, attempts not counted), so
    later batches do not each wait out a timeout on it before recording the others. When the
    period ends the next batch tries it again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, dt.datetime] = {}

    def open_until(self, lane: str, now: dt.datetime) -> dt.datetime | None:
        with self._lock:
            until = self._until.get(lane)
            if until is not None and until <= now:
                del self._until[lane]
                return None
            return until

    def trip(self, lane: str, until: dt.datetime) -> None:
        with self._lock:
            self._until[lane] = max(until, self._until.get(lane, until))


def lane_breaker(state: Any) -> LaneBreaker:
    with state.worker_lock:
        if state.lanes is None:
            state.lanes = LaneBreaker()
        return state.lanes


class _Sending:
    """Sends a batch's messages on a few threads (providers answer in tens of milliseconds, so
    one message at a time would leave a worker idle on the network). No provider ("lane") may
    take every thread (_LaneScheduler): a provider that stops answering holds its own messages
    up to the HTTP timeout, never another provider's. Once a send in a lane has timed
    out, the lane's messages not yet started are given back with a backoff instead of each
    waiting out the timeout in turn, and later batches leave it alone for a while (LaneBreaker).
    Each thread has its own senders (HTTP sessions, SMTP connection); all are closed when the
    batch is done."""

    def __init__(self, channels: ChannelSet, settings: NotificationSettings,
                 breaker: LaneBreaker | None = None) -> None:
        self._channels = channels
        self._settings = settings
        self._breaker = breaker or LaneBreaker()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[Senders] = []
        self._gone: set[uuid.UUID] = set()
        self._timed_out: set[str] = set()  # lanes whose provider did not answer in time

    def _senders(self) -> Senders:
        senders = getattr(self._local, "senders", None)
        if senders is None:
            senders = Senders(self._channels)
            self._local.senders = senders
            with self._lock:
                self._opened.append(senders)
        return senders

    def send(self, item: _Prepared, lane: str = "") -> None:
        assert item.message is not None  # noqa: S101 - only messages are handed over
        with self._lock:
            if item.device_id is not None and item.device_id in self._gone:
                item.cancel_code = "device-removed"  # the provider just said it is gone
                return
            now = self._settings.clock()
            if lane in self._timed_out or self._breaker.open_until(lane, now) is not None:
                # Not tried: its provider is timing out. It waits as a retry would, without
                # using up an attempt.
                item.defer_until = now + dt.timedelta(seconds=self._backoff(item.claim.attempts))
                return
        # Never start a send that could outlive our lease: another worker may take the row then.
        deadline = item.claim.lease_until - dt.timedelta(seconds=self._settings.http_timeout)
        if self._settings.clock() >= deadline:
            return
        sender = self._senders().get(item.route)
        if sender is None:
            item.result = SendResult(Outcome.RETRY, "channel-unavailable")
            return
        try:
            item.result = sender.send(item.message)
        except Exception:  # noqa: BLE001 - one broken message must not stop the batch
            log.error("channel raised while sending", exc_info=True,
                      extra={"delivery_id": str(item.claim.delivery_id), "route": item.route})
            item.result = SendResult(Outcome.RETRY, "channel-error")
        if item.result.outcome is Outcome.GONE and item.device_id is not None:
            with self._lock:
                self._gone.add(item.device_id)
        if item.result.code in _TIMEOUT_CODES:
            with self._lock:
                self._timed_out.add(lane)
            now = self._settings.clock()
            # As long as the shortest first retry waits (half the base): a row retried after
            # its backoff always finds the provider being tried again.
            pause = min(self._settings.backoff_seconds / 2, self._settings.backoff_max_seconds)
            self._breaker.trip(lane, now + dt.timedelta(seconds=pause))

    def _backoff(self, attempts: int) -> float:
        return backoff_seconds(attempts, base=self._settings.backoff_seconds,
                               cap=self._settings.backoff_max_seconds)

    def send_in_order(self, lane: str, items: Sequence[_Prepared]) -> None:
        for item in items:
            self.send(item, lane)

    def run(self, prepared: Sequence[_Prepared]) -> None:
        # Messages for one device go one after another on one thread: in order, and once the
        # provider says the device is gone the rest for it are not tried.
        lanes: dict[str, dict[object, list[_Prepared]]] = defaultdict(lambda: defaultdict(list))
        for item in prepared:
            if item.message is not None:
                lanes[lane_of(item)][item.device_id or item.claim.delivery_id].append(item)
        units = sum(len(queues) for queues in lanes.values())
        workers = min(self._settings.send_concurrency, units)
        try:
            if workers <= 1:
                for lane, queues in lanes.items():
                    for items in queues.values():
                        self.send_in_order(lane, items)
                return
            scheduler = _LaneScheduler(
                {lane: list(queues.values()) for lane, queues in lanes.items()}, workers)

            def work() -> None:
                while (unit := scheduler.take()) is not None:
                    lane, items = unit
                    try:
                        self.send_in_order(lane, items)
                    finally:
                        scheduler.release(lane)

            with ThreadPoolExecutor(workers, thread_name_prefix="phr-notify-send") as pool:
                for future in [pool.submit(work) for _ in range(workers)]:
                    future.result()
        finally:
            for senders in self._opened:
                senders.close()


class _LaneScheduler:
    """Hands a batch's work to its threads, providers in turn, and never lets one provider
    occupy the threads the others need: with N providers in the batch, one of them holds at most
    ``workers - (N - 1)`` threads at once, so a provider that stops answering leaves a thread to
    each of the others."""

    def __init__(self, lanes: dict[str, list[list[_Prepared]]], workers: int) -> None:
        self._work = {lane: deque(units) for lane, units in lanes.items()}
        self._order = list(lanes)
        self._next = 0
        self._cap = max(1, workers - (len(lanes) - 1))
        self._busy: dict[str, int] = defaultdict(int)
        self._changed = threading.Condition()

    def take(self) -> tuple[str, list[_Prepared]] | None:
        """The next unit of work (a lane and one device's messages); None when all is taken."""
        with self._changed:
            while any(self._work.values()):
                for offset in range(len(self._order)):
                    lane = self._order[(self._next + offset) % len(self._order)]
                    if self._work[lane] and self._busy[lane] < self._cap:
                        self._next = (self._next + offset + 1) % len(self._order)
                        self._busy[lane] += 1
                        return lane, self._work[lane].popleft()
                self._changed.wait()
            return None

    def release(self, lane: str) -> None:
        with self._changed:
            self._busy[lane] -= 1
            self._changed.notify_all()


# Recording --------------------------------------------------------------------------------------
def _record(
    session: Session, prepared: Iterable[_Prepared], now: dt.datetime,
    settings: NotificationSettings,
) -> BatchResult:
    result = BatchResult()
    gone_devices: set[uuid.UUID] = set()
    changes: dict[uuid.UUID, dict[str, Any]] = {}
    token = ""
    for item in prepared:
        claim = item.claim
        token = claim.lease_token
        release = {"lease_until": None, "lease_token": None, "updated_at": now}
        if item.defer_until is not None:
            values = {**release, "next_attempt_at": item.defer_until,
                      "attempts": _GIVE_BACK_ATTEMPT}
            result.deferred += 1
        elif item.cancel_code is not None:
            values = {**release, "status": CANCELLED, "last_error": item.cancel_code}
            result.cancelled += 1
        elif item.result is None:
            result.skipped += 1
            continue
        else:
            values = _values_for(item.result, claim, now, settings, release)
            outcome = item.result.outcome
            if outcome is Outcome.SENT:
                result.sent += 1
            elif outcome is Outcome.GONE:
                result.cancelled += 1
                if item.device_id is not None:
                    gone_devices.add(item.device_id)
            elif values.get("status") == DEAD:
                result.dead += 1
            else:
                result.retried += 1
        changes[claim.delivery_id] = values
    _apply_changes(session, changes, lease_token=token)
    if gone_devices:
        _forget_devices(session, gone_devices, now)
    session.commit()
    return result


def _apply_changes(
    session: Session, changes: dict[uuid.UUID, dict[str, Any]], *, lease_token: str
) -> None:
    """Write a batch's outcomes in one UPDATE per set of columns (values that differ between
    rows become a CASE on the id), and only where the lease is still ours."""
    table = Delivery.__table__
    groups: dict[frozenset[str], dict[uuid.UUID, dict[str, Any]]] = defaultdict(dict)
    for row_id, values in changes.items():
        groups[frozenset(values)][row_id] = values
    for columns, rows in groups.items():
        assignments: dict[str, Any] = {}
        for name in columns:
            distinct = {repr(values[name]) for values in rows.values()}
            if len(distinct) == 1:
                assignments[name] = next(iter(rows.values()))[name]
                continue
            column = table.c[name]
            assignments[name] = case(
                *[(table.c.id == row_id, _as_sql(values[name], column))
                  for row_id, values in rows.items()],
                else_=column,
            )
        session.execute(
            update(table)
            .where(table.c.id.in_(list(rows)), table.c.lease_token == lease_token)
            .values(**assignments)
        )


def _as_sql(value: Any, column: Any) -> Any:
    return value if isinstance(value, ClauseElement) else literal(value, type_=column.type)


def _values_for(
    outcome: SendResult, claim: Claim, now: dt.datetime, settings: NotificationSettings,
    release: dict[str, Any],
) -> dict[str, Any]:
    if outcome.outcome is Outcome.SENT:
        return {**release, "status": SENT, "sent_at": now, "last_error": None,
                "provider_message_id": (outcome.provider_id or "")[:255] or None}
    if outcome.outcome is Outcome.GONE:
        return {**release, "status": CANCELLED, "last_error": outcome.code[:64]}
    if outcome.outcome is Outcome.FAILED or claim.attempts >= settings.max_attempts:
        return {**release, "status": DEAD, "last_error": outcome.code[:64]}
    delay = backoff_seconds(
        claim.attempts, base=settings.backoff_seconds, cap=settings.backoff_max_seconds,
        retry_after=outcome.retry_after,
    )
    return {**release, "last_error": outcome.code[:64],
            "next_attempt_at": now + dt.timedelta(seconds=delay)}


def _forget_devices(session: Session, device_ids: set[uuid.UUID], now: dt.datetime) -> None:
    """A provider said the token is dead for good: remove the device and its waiting messages."""
    table = Delivery.__table__
    session.execute(
        update(table)
        .where(table.c.device_id.in_(device_ids), table.c.status == PENDING)
        .values(status=CANCELLED, last_error="device-removed", updated_at=now,
                lease_until=None, lease_token=None)
    )
    session.execute(delete(Device).where(Device.id.in_(device_ids)))
    log.info("removed devices rejected by their push provider",
             extra={"devices": len(device_ids)})


# Entry points -----------------------------------------------------------------------------------
def process_batch(
    *, limit: int | None = None, ids: Sequence[uuid.UUID] | None = None
) -> BatchResult:
    """Claim, send and record one batch in the current app context (``db.session``)."""
    state = runtime()
    settings = state.settings
    session = db.session()
    now = settings.clock()
    claims = claim_due(
        session, limit=limit or settings.batch_size, now=now,
        lease_seconds=settings.lease_seconds, ids=ids,
    )
    if not claims:
        return BatchResult()
    try:
        prepared = _prepare(session, claims, now, settings)
        session.commit()  # no transaction stays open while we talk to providers
        _Sending(state.channels, settings, lane_breaker(state)).run(prepared)
        result = _record(session, prepared, settings.clock(), settings)
    except BaseException:
        session.rollback()
        raise
    result.claimed = len(claims)
    return result


def process_until_idle(*, max_batches: int | None = None) -> BatchResult:
    """Process batches until nothing is due (or ``max_batches`` ran)."""
    total = BatchResult()
    batches = 0
    while max_batches is None or batches < max_batches:
        result = process_batch()
        batches += 1
        if result.claimed == 0:
            break
        total.add(result)
        if result.claimed == result.skipped + result.deferred and result.sent == 0:
            break  # everything claimed was put back: nothing more can happen right now
    return total


def retry_now(session: Session, *, now: dt.datetime) -> int:
    """Make every waiting row due now (after a provider outage); returns how many."""
    table = Delivery.__table__
    count = session.execute(
        update(table)
        .where(table.c.status == PENDING, table.c.next_attempt_at > now)
        .values(next_attempt_at=now, updated_at=now)
    ).rowcount
    session.commit()
    return int(count or 0)


def requeue_dead(session: Session, *, now: dt.datetime) -> int:
    """Give dead-lettered rows a fresh set of attempts (after fixing the cause)."""
    table = Delivery.__table__
    count = session.execute(
        update(table)
        .where(table.c.status == DEAD)
        .values(status=PENDING, attempts=0, next_attempt_at=now, updated_at=now,
                lease_until=None, lease_token=None)
    ).rowcount
    session.commit()
    return int(count or 0)
