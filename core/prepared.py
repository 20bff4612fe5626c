"""Server-side prepared statements on PostgreSQL, for the statements every request repeats.

psycopg2 sends each statement as text, so PostgreSQL parses and plans it every time: for the
token, consent-facts and audit statements that is 2-4× the time spent executing them (EXPLAIN
ANALYZE on the bench database: 0.38-0.42 ms planning against 0.08-0.12 ms execution). psycopg 3
prepares repeated statements by itself; with psycopg2 this module does the same, the way psycopg 3
does it: a statement text seen `threshold` times on one connection is PREPAREd there once and
from then on sent as `EXECUTE name(arguments)`, its parameters still adapted by psycopg2.

Scope and limits, on purpose:
- PostgreSQL only; single executions of SELECT/INSERT/UPDATE/DELETE/WITH only (executemany,
  DDL, driver-level SQL, server-side cursors and SQLite pass through untouched). Statement
  events (logs, counters) still see the statement's own text.
- Per DBAPI connection (a prepared statement lives in the server session): the names live in
  the pool entry's `info`, which a reconnect replaces.
- At most `capacity` statements per connection, never evicted: the hot statements reach the
  threshold first, and statement texts that vary (IN lists of many sizes) stay plain.
- PREPARE survives a rollback, so a failed transaction does not strand a name. PREPARE runs in
  a savepoint: a statement PostgreSQL cannot prepare (a parameter of no inferable type, as in
  json_build_object(%(key)s, ...)) is remembered as such and stays plain.
- Behind a pooler in transaction mode (pgbouncer < 1.21) named statements break: set
  DB_PREPARE_THRESHOLD=0 there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import psycopg2
from sqlalchemy import event
from sqlalchemy.engine import Engine

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
_PREPARABLE = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "VALUES")
_MAX_TEXT = 16_000  # longer texts are one-off bulk statements (multi-row VALUES)
_COUNTS_KEPT = 2_000
_UNSEEN: Any = object()


class _Prepared:
    """One connection's prepared statements and the counts of statements not yet prepared."""

    __slots__ = ("counts", "statements")

    def __init__(self) -> None:
        # statement text -> (name, parameter order), or None: PostgreSQL refused to prepare it
        self.statements: dict[str, tuple[str, tuple[str, ...]] | None] = {}
        self.counts: dict[str, int] = {}


def install(engine: Engine, *, threshold: int, capacity: int = 200) -> None:
    """Prepare statements on `engine`'s PostgreSQL connections after `threshold` executions
    (0: never)."""
    if threshold <= 0 or engine.dialect.name != "postgresql":
        return

    # The dialect's do_execute hook, not before_cursor_execute: statement listeners (logging,
    # counters) still see the statement's own text.
    @event.listens_for(engine, "do_execute")
    def _execute_prepared(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        if (context is None or context.compiled is None or cursor.name is not None
                or not isinstance(parameters, Mapping)
                or len(statement) > _MAX_TEXT
                or not statement.lstrip()[:6].upper().startswith(_PREPARABLE)):
            return False
        info = context.root_connection.connection.info
        state = info.get("phr.prepared")
        if state is None:
            state = info["phr.prepared"] = _Prepared()
        known = state.statements.get(statement, _UNSEEN)
        if known is None:
            return False
        if known is _UNSEEN:
            if len(state.statements) >= capacity:
                return False
            seen = state.counts.get(statement, 0) + 1
            if seen < threshold:
                if len(state.counts) >= _COUNTS_KEPT:
                    state.counts.clear()
                state.counts[statement] = seen
                return False
            state.counts.pop(statement, None)
            known = state.statements[statement] = _prepare(
                cursor, statement, name=f"phr_{len(state.statements)}")
            if known is None:
                return False
        name, order = known
        if order:
            cursor.execute(f"EXECUTE {name}({', '.join(['%s'] * len(order))})",
                           tuple(parameters[key] for key in order))
        else:
            cursor.execute(f"EXECUTE {name}")
        return True


def _prepare(cursor: Any, statement: str, *, name: str) -> tuple[str, tuple[str, ...]] | None:
    """PREPARE inside a savepoint (one round trip, once per statement and connection): when
    PostgreSQL cannot prepare it (a parameter whose type it cannot infer), the transaction
    goes on and the statement stays plain."""
    order: list[str] = []

    def positional(match: re.Match[str]) -> str:
        key = match.group(1)
        if key is None:
            return "%"
        if key not in order:
            order.append(key)
        return f"${order.index(key) + 1}"

    prepare = f"PREPARE {name} AS {_PLACEHOLDER.sub(positional, statement)}"
    in_transaction = not cursor.connection.autocommit
    try:
        if in_transaction:
            cursor.execute(f"SAVEPOINT phr_prepare; {prepare}; RELEASE SAVEPOINT phr_prepare")
        else:
            cursor.execute(prepare)
    except psycopg2.ProgrammingError:
        if in_transaction:
            cursor.execute("ROLLBACK TO SAVEPOINT phr_prepare; RELEASE SAVEPOINT phr_prepare")
        return None
    return name, tuple(order)
