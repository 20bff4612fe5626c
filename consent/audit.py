"""The tamper-evident audit log: one hash chain per citizen (DESIGN.md §5).

Event n of a citizen's chain has hash H(n) = SHA-256(H(n-1) || SHA-256(canonical content)),
with H(0) = 32 zero bytes. The chain head (last seq and hash) lives in `audit_chain_heads`, one
row per citizen, advanced by a single upsert that computes the new hash in the database
(`phr_audit_chain`: a SQL function on PostgreSQL, a Python function registered on SQLite
connections). Appending therefore costs one upsert ... RETURNING and one insert, never a read of
`audit_events`, and the head's row lock serialises one citizen's requests only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import LargeBinary, bindparam, event, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert as ReturningInsert

from consent.models import AUDIT_CONTENT_FIELDS, AuditChainHead, AuditEvent
from core.kept_plans import KEEP_PLAN
from core.transactions import ALONE, reading_outside_transaction

log = logging.getLogger(__name__)

GENESIS = bytes(32)
CHAIN_FUNCTION = "phr_audit_chain"
FORMAT_VERSION = 1


def chain_step(previous: bytes, digest: bytes) -> bytes:
    """The next hash of a chain: SHA-256 over the previous hash and the event's digest."""
    return hashlib.sha256(bytes(previous) + bytes(digest)).digest()


@event.listens_for(Engine, "connect")
def _register_sqlite_chain_function(dbapi_connection: Any, connection_record: Any) -> None:
    # PostgreSQL gets the same function from the migration (sha256 over bytea).
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.create_function(CHAIN_FUNCTION, 2, chain_step, deterministic=True)


def _canonical_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("audit timestamps must be timezone-aware")
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise TypeError(f"no canonical form for {type(value).__name__}")


def content_digest(content: Mapping[str, Any]) -> bytes:
    """SHA-256 of the canonical JSON of an event's content (sorted keys, UTC microseconds)."""
    canonical = {name: _canonical_value(content.get(name)) for name in AUDIT_CONTENT_FIELDS}
    canonical["v"] = FORMAT_VERSION
    raw = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(raw.encode("ascii")).digest()


def _dialect_insert(session: Session) -> Any:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"audit chain needs PostgreSQL or SQLite, not {name}")


def _head_upsert(dialect: str) -> Any:
    """Lock (or create) a citizen's chain head and advance it by one link, RETURNING it.
    Parameters: head_citizen_id, head_digest."""
    heads = AuditChainHead.__table__
    digest = bindparam("head_digest", type_=LargeBinary)
    insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_into(heads).values(
        citizen_id=bindparam("head_citizen_id", type_=heads.c.citizen_id.type),
        seq=1,
        last_hash=func.phr_audit_chain(literal(GENESIS, LargeBinary), digest),
    )
    return stmt.on_conflict_do_update(
        index_elements=[heads.c.citizen_id],
        set_={"seq": heads.c.seq + 1, "last_hash": func.phr_audit_chain(heads.c.last_hash, digest)},
    ).returning(heads.c.seq, heads.c.last_hash)


# Statements built once per dialect (and per companion): a read's audit must not pay for
# building and coercing a 25-column statement on every request. A companion is an insert sent
# along with the append, or a read's content query that carries it (`with_pending_audit`);
# companions are built once too (module level, or per shape by the repository), and the cache
# keeps each alive, so its id cannot be reused by another statement while the entry exists.
_statements: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_MAX_STATEMENTS = 2048  # above the repository's own caches of content-query shapes


def _statement(kind: str, dialect: str, companion: Any = None) -> Any:
    key = (kind, dialect, id(companion) if companion is not None else 0)
    cached = _statements.get(key)
    if cached is not None and cached[0] is companion:
        return cached[1]
    if len(_statements) >= _MAX_STATEMENTS:
        _statements.clear()  # a caller building companions per call: stay bounded
    stmt = _build(kind, dialect, companion)
    _statements[key] = (companion, stmt)
    return stmt


def _build(kind: str, dialect: str, companion: Any) -> Any:
    if kind == "head":
        return _head_upsert(dialect)
    events = AuditEvent.__table__
    if kind == "event":  # SQLite: the event after the head, with seq and hash as parameters
        return insert(events).values(
            {events.c[name]: bindparam(f"audit_{name}", type_=events.c[name].type)
             for name in [*AUDIT_CONTENT_FIELDS, "seq", "hash"]}
        )
    if kind == "carrying":  # PostgreSQL: the content query with the append as its CTEs
        return companion.add_cte(
            _chained_event_insert(dialect, "phr_audit_head").cte("phr_audit_event"))
    # PostgreSQL: one statement, the head upsert feeding the event insert.
    stmt = _chained_event_insert(dialect, "head")
    if companion is not None:
        noted = companion.cte("along_with")
        stmt = stmt.returning(select(func.count()).select_from(noted).scalar_subquery())
    return stmt


def _chained_event_insert(dialect: str, head_name: str, head: Any = None) -> Any:
    """The event insert fed by the head upsert (a CTE named `head_name`, or `head`): its seq
    and hash."""
    events = AuditEvent.__table__
    columns = list(AUDIT_CONTENT_FIELDS)
    if head is None:
        head = _head_upsert(dialect).cte(head_name)
    values = select(
        *(bindparam(f"audit_{name}", type_=events.c[name].type) for name in columns),
        head.c.seq, head.c.last_hash,
    )
    return insert(events).from_select([*columns, "seq", "hash"], values)


def append_if(facts: Any, condition: Any) -> tuple[Any, Any]:
    """The audit append (PostgreSQL) as data-modifying CTEs that run only when `condition`
    holds on every row of the CTE `facts` (and there is one): the event's CTE, for the
    statement to carry (`add_cte`), and a column that says whether they ran. Bound values
    as `append_params` gives them. The CTEs see the snapshot the statement's SELECT sees,
    and the statement commits as it returns (autocommit), before its rows reach the caller.
    """
    heads = AuditChainHead.__table__
    digest = bindparam("head_digest", type_=LargeBinary)
    holds = select(func.bool_and(condition)).select_from(facts).scalar_subquery()
    source = select(
        bindparam("head_citizen_id", type_=heads.c.citizen_id.type), literal(1),
        func.phr_audit_chain(literal(GENESIS, LargeBinary), digest),
    ).where(holds.is_(True))
    upsert = postgresql.insert(heads).from_select(["citizen_id", "seq", "last_hash"], source)
    head = upsert.on_conflict_do_update(
        index_elements=[heads.c.citizen_id],
        set_={"seq": heads.c.seq + 1, "last_hash": func.phr_audit_chain(heads.c.last_hash, digest)},
    ).returning(heads.c.seq, heads.c.last_hash).cte("phr_audit_head_if")
    event_cte = _chained_event_insert("postgresql", "", head=head).cte("phr_audit_event_if")
    ran = select(func.count()).select_from(head).scalar_subquery() > 0
    return event_cte, ran


def _event_row(content: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(content) - set(AUDIT_CONTENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown audit fields: {sorted(unknown)}")
    row = dict.fromkeys(AUDIT_CONTENT_FIELDS)
    row.update(content)
    row["id"] = uuid.uuid4()
    occurred_at: dt.datetime = row["occurred_at"]
    # Stored timestamps keep microseconds: hash what will be read back.
    row["occurred_at"] = occurred_at.astimezone(dt.UTC)
    return row


def append_event(session: Session, *, alone: bool = False, permitted_read: bool = False,
                 **content: Any) -> uuid.UUID:
    """Write one audit event in the caller's transaction; returns its id.

    `content` holds the fields of AUDIT_CONTENT_FIELDS except `id` (missing ones are None).
    On PostgreSQL the head upsert and the event insert are one statement (a data-modifying
    CTE), so an audited read costs one round trip for its audit. `alone`: nothing else the
    request writes must commit with this event, so a read outside a transaction commits it
    as it returns (core.transactions). `permitted_read` (with `alone`): the event may ride
    with the read's content statement (`audit_rides_with_content`); a refusal never waits,
    its answer commits and raises at once.
    """
    return _append(session, content, along_with=None, alone=alone,
                   may_wait=alone and permitted_read)[0]


def append_event_with(
    session: Session, along_with: ReturningInsert, along_params: Mapping[str, Any],
    **content: Any,
) -> tuple[uuid.UUID, bool]:
    """`append_event`, sending `along_with` (another INSERT ... RETURNING of the same
    transaction, such as the access digest, built once with bind parameters `along_params`)
    in the same statement on PostgreSQL; returns the event id and whether that insert
    returned a row. Its parameter names must not start with audit_ or head_."""
    event_id, returned = _append(session, content, along_with=(along_with, along_params))
    return event_id, bool(returned)


# Alone, the append runs in autocommit, where its plan may be kept (a procedure: no rows).
_ALONE_OPTIONS = {ALONE: True, KEEP_PLAN: True}


def append_params(content: Mapping[str, Any]) -> tuple[uuid.UUID, dict[str, Any]]:
    """A new event's id and the bound values of its append (`audit_*`, `head_*`)."""
    row = _event_row(content)
    params = {f"audit_{name}": value for name, value in row.items()}
    params["head_citizen_id"] = row["citizen_id"]
    params["head_digest"] = content_digest(row)
    return row["id"], params


def _append(
    session: Session, content: Mapping[str, Any], *,
    along_with: tuple[ReturningInsert, Mapping[str, Any]] | None, alone: bool = False,
    may_wait: bool = False,
) -> tuple[uuid.UUID, bool | None]:
    event_id, params = append_params(content)
    # Core statements on the session's connection (its transaction), without the ORM's
    # per-statement work: every audited request runs this. The flush the session would have
    # done first still happens (the event may name a row created in this transaction).
    if session.autoflush:
        session.flush()
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect != "postgresql":
        # SQLite has no data-modifying CTEs: the same work in two or three statements.
        seq, chain_hash = connection.execute(_statement("head", dialect), params).one()
        connection.execute(_statement("event", dialect),
                           {**params, "audit_seq": seq, "audit_hash": chain_hash})
        if along_with is None:
            return event_id, None
        statement, extra = along_with
        return event_id, connection.execute(statement, dict(extra)).first() is not None
    options = _ALONE_OPTIONS if alone else None
    if along_with is None:
        carrier = connection.info.get(_CARRIER)
        if (may_wait and carrier is not None and carrier.params is None
                and reading_outside_transaction(connection)):
            carrier.params = params  # the read's content statement sends it (see below)
            return event_id, None
        connection.execute(_statement("append", dialect), params, execution_options=options)
        return event_id, None
    statement, extra = along_with
    result = connection.execute(_statement("append", dialect, statement), {**params, **extra},
                                execution_options=options)
    return event_id, bool(result.scalar_one())


# --- a read's audit append sent with the statement that selects its content (PostgreSQL) ----
#
# A list or summary read outside a transaction sent its audit append, then its content: two
# round trips and two plans. Within `audit_rides_with_content`, the append of a permitted read
# that commits alone waits, and the statement that selects the content (`with_pending_audit`)
# carries it as data-modifying CTEs: PostgreSQL runs them exactly once, whether or not the
# SELECT reads them, and the one autocommit statement is durable before psycopg2 returns its
# rows, so the rule holds (an append that fails fails the SELECT: 5xx, no data). Whatever else
# happens meanwhile sends the append first: another statement (`_append_first`), a commit
# (`_append_before_commit`), leaving the block, by an exception too. A refusal never waits.

_CARRIER = "phr_audit_carrier"
_CARRIES_AUDIT = "phr_carries_audit"


class _Carrier:
    __slots__ = ("connection", "params")

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.params: dict[str, Any] | None = None  # the pending append's bound values


@contextmanager
def audit_rides_with_content(session: Session) -> Iterator[None]:
    """Let the audit append of a read permitted in this block ride with the statement that
    selects the read's content (PostgreSQL, reads outside a transaction; elsewhere nothing
    changes)."""
    connection = session.connection()
    if (connection.dialect.name != "postgresql" or _CARRIER in session.info
            or not reading_outside_transaction(connection)):
        yield
        return
    carrier = _Carrier(connection)
    # The pooled connection's own dict: still there to clean when the session has given the
    # connection back, so no later request on it finds this carrier.
    info = connection.info
    info[_CARRIER] = session.info[_CARRIER] = carrier
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        info.pop(_CARRIER, None)
        session.info.pop(_CARRIER, None)
        if carrier.params is not None:
            try:
                if connection.closed or connection.invalidated:
                    # The session ended its transaction in the block (a rollback): a
                    # connection of its own for the event, committed.
                    carrier.connection = session.connection()
                    _send_alone(carrier)
                    session.commit()
                else:
                    _send_alone(carrier)
            except Exception:
                if not failed:
                    raise
                # The read failed already and answers so; its own error is the one to report.
                log.warning("audit append after a failed read could not be sent",
                            exc_info=True)


@event.listens_for(Session, "before_commit")
def _append_before_commit(session: Session) -> None:
    """A commit in the block sends the waiting append first (it commits with it)."""
    carrier = session.info.get(_CARRIER)
    if carrier is not None and carrier.params is not None:
        _send_alone(carrier)


def with_pending_audit(
    session: Session, query: Any
) -> tuple[Any, dict[str, Any], Mapping[str, Any]]:
    """`query` carrying the audit append waiting in this block, if one is: the statement to
    run, the append's bound values and the execution options."""
    carrier = session.info.get(_CARRIER)
    if carrier is None or carrier.params is None:
        return query, {}, {}
    params, carrier.params = carrier.params, None
    return _statement("carrying", "postgresql", query), params, _CARRYING_OPTIONS


_CARRYING_OPTIONS = {ALONE: True, _CARRIES_AUDIT: True}


def _send_alone(carrier: _Carrier) -> None:
    params, carrier.params = carrier.params, None
    carrier.connection.execute(_statement("append", "postgresql"), params,
                               execution_options=_ALONE_OPTIONS)


@event.listens_for(Engine, "before_execute")
def _append_first(conn: Any, clauseelement: Any, multiparams: Any, params: Any,
                  execution_options: Any) -> None:
    """A statement that does not carry the waiting append is preceded by it."""
    carrier = conn.info.get(_CARRIER)
    if carrier is None or carrier.params is None:
        return
    options = getattr(clauseelement, "_execution_options", None) or {}
    if execution_options.get(_CARRIES_AUDIT) or options.get(_CARRIES_AUDIT):
        return
    _send_alone(carrier)


def append_events(session: Session, contents: Sequence[Mapping[str, Any]]) -> list[uuid.UUID]:
    """Write many audit events (a batch upload's decisions) in a few statements, whatever
    their number: lock and read every chain head involved in one upsert (in citizen order, so
    concurrent batches cannot deadlock on each other), chain the links in Python, write the
    heads back in one upsert and the events in one insert."""
    if len(contents) <= 1:
        return [append_event(session, **content) for content in contents]
    rows = [_event_row(content) for content in contents]
    heads = AuditChainHead.__table__
    insert_into = _dialect_insert(session)
    citizen_ids = sorted({row["citizen_id"] for row in rows})
    # A no-op update locks an existing head and returns it; a new head starts at seq 0.
    # Parameter lists (not a VALUES literal): the statement compiles once, whatever the size.
    lock = insert_into(heads)
    lock = lock.on_conflict_do_update(
        index_elements=[heads.c.citizen_id], set_={"seq": heads.c.seq}
    ).returning(heads.c.citizen_id, heads.c.seq, heads.c.last_hash)
    locked = session.execute(
        lock, [{"citizen_id": cid, "seq": 0, "last_hash": GENESIS} for cid in citizen_ids]
    )
    current = {cid: (int(seq), bytes(last)) for cid, seq, last in locked}
    for row in rows:
        seq, previous = current[row["citizen_id"]]
        link = chain_step(previous, content_digest(row))
        row["seq"], row["hash"] = seq + 1, link
        current[row["citizen_id"]] = (seq + 1, link)
    advance = insert_into(heads)
    advance = advance.on_conflict_do_update(
        index_elements=[heads.c.citizen_id],
        set_={"seq": advance.excluded.seq, "last_hash": advance.excluded.last_hash},
    ).returning(heads.c.citizen_id)  # RETURNING: sent as multi-row VALUES, not row by row
    session.execute(advance, [{"citizen_id": cid, "seq": seq, "last_hash": last}
                              for cid, (seq, last) in sorted(current.items())]).all()
    session.execute(insert(AuditEvent.__table__), rows)
    return [row["id"] for row in rows]


# --- verification ---------------------------------------------------------------------------


@dataclass
class VerifyReport:
    events: int = 0
    chains: int = 0
    broken: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.broken

    def as_dict(self, *, limit: int = 20) -> dict[str, Any]:
        return {
            "events": self.events,
            "chains": self.chains,
            "ok": self.ok,
            "broken_chains": len(self.broken),
            "broken": self.broken[:limit],
        }


def _events(session: Session, citizen_id: uuid.UUID | None) -> Iterator[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.citizen_id, AuditEvent.seq)
    if citizen_id is not None:
        query = query.where(AuditEvent.citizen_id == citizen_id)
    yield from session.scalars(query.execution_options(yield_per=1000))


def _heads(session: Session, citizen_id: uuid.UUID | None) -> Iterator[AuditChainHead]:
    query = select(AuditChainHead).order_by(AuditChainHead.citizen_id)
    if citizen_id is not None:
        query = query.where(AuditChainHead.citizen_id == citizen_id)
    yield from session.scalars(query.execution_options(yield_per=1000))


class _ChainCheck:
    """Walks one citizen's events in seq order and records the first break."""

    def __init__(self, citizen_id: uuid.UUID) -> None:
        self.citizen_id = citizen_id
        self.expected_seq = 1
        self.previous = GENESIS
        self.problem: dict[str, Any] | None = None

    def _fail(self, seq: int | None, reason: str) -> None:
        if self.problem is None:
            self.problem = {"citizen_id": str(self.citizen_id), "seq": seq, "reason": reason}

    def add(self, event_row: AuditEvent) -> None:
        if self.problem is not None:
            return
        if event_row.seq != self.expected_seq:
            self._fail(self.expected_seq, "missing-event")
            return
        computed = chain_step(self.previous, content_digest(event_row.content()))
        if computed != bytes(event_row.hash):
            self._fail(event_row.seq, "hash-mismatch")
            return
        self.previous = computed
        self.expected_seq += 1

    def finish(self, head: AuditChainHead | None) -> None:
        if self.problem is not None:
            return
        last_seq = self.expected_seq - 1
        if head is None:
            self._fail(None, "missing-chain-head")
        elif head.seq != last_seq:
            self._fail(last_seq + 1, "missing-event")
        elif bytes(head.last_hash) != self.previous:
            self._fail(last_seq, "head-mismatch")


def verify_chains(session: Session, *, citizen_id: uuid.UUID | None = None) -> VerifyReport:
    """Recompute every chain (or one citizen's) and compare with the stored hashes and heads.

    Streams events and heads in citizen order and merges them, so memory stays flat.
    """
    report = VerifyReport()
    heads = _heads(session, citizen_id)
    head = next(heads, None)
    check: _ChainCheck | None = None

    def close(current: _ChainCheck) -> None:
        nonlocal head
        # Heads of citizens without any event left: every one of their events was removed.
        while head is not None and head.citizen_id < current.citizen_id:
            _orphan_head(report, head)
            head = next(heads, None)
        matching = head if head is not None and head.citizen_id == current.citizen_id else None
        current.finish(matching)
        if matching is not None:
            head = next(heads, None)
        report.chains += 1
        if current.problem is not None:
            report.broken.append(current.problem)

    for row in _events(session, citizen_id):
        report.events += 1
        if check is None or row.citizen_id != check.citizen_id:
            if check is not None:
                close(check)
            check = _ChainCheck(row.citizen_id)
        check.add(row)
    if check is not None:
        close(check)
    while head is not None:
        _orphan_head(report, head)
        head = next(heads, None)
    return report


def _orphan_head(report: VerifyReport, head: AuditChainHead) -> None:
    report.chains += 1
    if head.seq > 0:
        report.broken.append(
            {"citizen_id": str(head.citizen_id), "seq": 1, "reason": "missing-event"}
        )
