"""The one SQLAlchemy handle, with naming conventions that keep migrations stable."""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from flask import g, has_app_context
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, MetaData, event, insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

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
