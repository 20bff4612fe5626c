"""The one SQLAlchemy handle, with naming conventions that keep migrations stable."""

from __future__ import annotations

import select
import time
import uuid
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from flask import current_app, g, has_app_context, has_request_context
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, MetaData, event, insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from core import sql_threads

# Before any thread shares a statement: SQLAlchemy's lazily filled column index, whole or
# not at all (core/sql_threads.py).
sql_threads.install()

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Sessions live for one request (or one CLI batch). Expiring every loaded row at commit made a
# read's closing commit (its audit event) walk the whole identity map, and any attribute read
# after a commit cost a refresh query; a request never needs another transaction's values for
# rows it already holds.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


class StatementProbe(Protocol):
    """A condition this request must find true before it may use what it reads, which a
    statement the request runs anyway can carry as one more column (the liveness of a bearer
    token whose principal a worker remembers: auth.resource). A statement built with
    `column` (shape by `shape`, values `params`) hands the column's value to `confirm`, which
    raises when the condition fails; until something confirms it, any other statement of the
    request is preceded by the probe on its own (auth installs that guard)."""

    shape: Hashable
    params: Mapping[str, Any]

    @property
    def column(self) -> Any: ...

    def confirm(self, value: Any) -> None: ...


_PROBE_KEY = "phr_statement_probe"


def set_pending_probe(probe: StatementProbe | None) -> None:
    """The probe this request still has to confirm (None: none, or confirmed)."""
    if probe is None:
        g.pop(_PROBE_KEY, None)
    else:
        setattr(g, _PROBE_KEY, probe)


def pending_probe() -> StatementProbe | None:
    """The probe a statement of this request may carry, if one is still unconfirmed."""
    if not has_app_context():
        return None
    return g.get(_PROBE_KEY)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always returned timezone-aware (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the one writer.
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def insert_unstaged(session: Any, objects: Sequence[Any]) -> None:
    """INSERT model objects without adding them to the session: one executemany per table.

    For a station batch's hundreds of new rows, the unit of work's bookkeeping cost more CPU
    than the rows. The objects are built with their model classes (so encrypted fields and
    defaults are set as usual) and stay transient afterwards: read them, do not change them.
    Every object of a class must have the same attributes set (one statement shape).
    """
    by_class: dict[type[Any], list[Any]] = {}
    for obj in objects:
        by_class.setdefault(type(obj), []).append(obj)
    for cls, group in by_class.items():
        mapper = sa_inspect(cls)
        table = mapper.local_table
        every = [(prop.key, prop.columns[0].key) for prop in mapper.column_attrs
                 if prop.columns[0].table is table]
        columns = [(key, column) for key, column in every if key in group[0].__dict__]
        rows = []
        for obj in group:
            row = {column: obj.__dict__[key] for key, column in every if key in obj.__dict__}
            if len(row) != len(columns):
                raise ValueError(f"{cls.__name__}: objects with different attributes set")
            rows.append(row)
        session.execute(insert(table), rows)


# -- Bounded waits on PostgreSQL --------------------------------------------------------------
# psycopg2 waits in libpq without a bound: a database that stops answering (a partition, a hung
# server, a pooler whose server is gone) holds a request, and its worker thread, indefinitely;
# libpq's connect_timeout counts whole seconds (a "2" waits 1 to 2 s) and covers connecting
# only. With a wait callback psycopg2 hands every wait (connect, statement, commit) to Python,
# which bounds it: connecting by DATABASE_CONNECT_TIMEOUT everywhere, one statement by
# DATABASE_STATEMENT_TIMEOUT inside a request (a CLI job or a worker may run long statements),
# every wait by less where a caller says so (`database_waits_within`: /readyz).
# When the bound passes the connection is closed (psycopg2 marks it broken, SQLAlchemy drops it
# from the pool) and the request answers 503 (core/errors.py). The cost was measured: none
# beside the round trip (72 µs per statement either way). It works behind PgBouncer, which
# refuses startup options such as `-c statement_timeout` (README "Reliability").
CONNECT_TIMEOUT = 1.0
STATEMENT_TIMEOUT = 5.0


def bounded_wait(connection: Any) -> None:
    """psycopg2's wait callback: poll the connection until done or the bound has passed."""
    import psycopg2  # only PostgreSQL processes get here; SQLite ones never load the driver
    from psycopg2 import extensions

    limit = _wait_limit(connection.status == extensions.STATUS_SETUP)
    deadline = None if limit is None else time.monotonic() + limit
    while True:
        state = connection.poll()
        if state == extensions.POLL_OK:
            return
        if state not in (extensions.POLL_READ, extensions.POLL_WRITE):
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
        timeout_ms = None
        if deadline is not None:
            timeout_ms = int((deadline - time.monotonic()) * 1000)
            if timeout_ms <= 0:
                if has_app_context():
                    setattr(g, _GAVE_UP_KEY, True)
                raise psycopg2.OperationalError(f"the database did not answer within {limit} s")
        poller = select.poll()
        poller.register(connection.fileno(),
                        select.POLLIN if state == extensions.POLL_READ else select.POLLOUT)
        poller.poll(timeout_ms)


def _wait_limit(connecting: bool) -> float | None:
    if has_app_context():
        if g.get(_GAVE_UP_KEY):
            # One bound per request: once the database let a wait run out, whatever else the
            # request tries (a probe on the error path, the closing rollback) gives up at once.
            return 0.0
        if g.get(_WITHIN_KEY) is not None:
            return float(g.get(_WITHIN_KEY))
    if connecting:
        if has_app_context():
            return float(current_app.config.get("DATABASE_CONNECT_TIMEOUT", CONNECT_TIMEOUT))
        return CONNECT_TIMEOUT
    # The request's app context outlives it a moment: the session's closing rollback and the
    # pool's reset run in teardown, bounded too.
    if has_request_context() or (has_app_context() and g.get(_BOUNDED_KEY)):
        setattr(g, _BOUNDED_KEY, True)
        return float(current_app.config.get("DATABASE_STATEMENT_TIMEOUT", STATEMENT_TIMEOUT))
    return None


_BOUNDED_KEY = "phr_bounded_database_waits"
_GAVE_UP_KEY = "phr_database_gave_up"
_WITHIN_KEY = "phr_database_waits_within"


@contextmanager
def database_waits_within(seconds: float) -> Iterator[None]:
    """Bound every wait on PostgreSQL in the block (connecting included) by `seconds`: for a
    check whose statements are trivial, where a slow answer is the answer (readiness)."""
    previous = g.get(_WITHIN_KEY)
    setattr(g, _WITHIN_KEY, seconds)
    try:
        yield
    finally:
        setattr(g, _WITHIN_KEY, previous)


@event.listens_for(Engine, "do_connect")
def _bound_psycopg2_waits(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
    # Installed with the first PostgreSQL connection (psycopg2's callback is process-wide).
    if dialect.driver != "psycopg2":
        return
    from psycopg2 import extensions

    if extensions.get_wait_callback() is not bounded_wait:
        extensions.set_wait_callback(bounded_wait)
