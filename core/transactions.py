"""Reads outside a transaction, writes inside one (PostgreSQL).

psycopg2 opens a transaction with a BEGIN round trip before a request's first statement, and
the request ends it with a COMMIT round trip: an audited read (its entry, then its audit append)
paid four round trips for two statements. A request started with `read_outside_transaction`
runs its plain SELECTs in autocommit instead. The first statement that writes or locks
(anything but a plain SELECT) begins a transaction before it runs, so every write of the request
still commits together at the request's commit, as before — unless that statement is executed
with the option ALONE: a write complete by itself (a read's audit append, its access digest in
the same statement), which commits as it returns, before anything the read selected leaves.

Each statement in READ COMMITTED takes its own snapshot anyway, so a request's reads see what
they saw inside a transaction; a SELECT that locks rows (FOR UPDATE, FOR SHARE) counts as a
write. Behind PgBouncer's transaction pooling each autocommit statement is a transaction of its
own, which the pooler serves like any other. SQLite keeps its transactions (they cost no round
trip there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from flask import Flask, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from core.db import db

# Execution option of a write that is complete by itself (see the module's docstring).
ALONE = "phr_alone"
# Set in the pooled connection's info while its session reads outside a transaction.
_READ_MODE = "phr_reads_outside_transaction"
# Searched in the upper-cased statement: a pattern that starts with a literal is found by a
# fast scan (with a leading \b or IGNORECASE it took 44 µs on a facts query, 1 µs without).
# A word that merely ends in FOR before UPDATE matches too: on the safe side.
_LOCKING = re.compile(r"FOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b")


def read_outside_transaction(session: Session) -> bool:
    """Run this session's next statements in autocommit until one writes (PostgreSQL, and
    only before anything has run in it); True when the mode is on."""
    if session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return False
    # psycopg2's own switch, not SQLAlchemy's AUTOCOMMIT isolation level: that one costs a
    # set and a reset of the isolation level per request through the dialect's machinery
    # (5 % of an entry read's CPU in its profile); the switch is an attribute, and the pool
    # turns it back at check-in (below).
    pooled = session.connection().connection
    pooled.info[_READ_MODE] = True
    pooled.dbapi_connection.autocommit = True
    return True


def reading_outside_transaction(connection: Any) -> bool:
    """Whether `connection` (a SQLAlchemy Connection) runs its statements in autocommit now:
    its session reads outside a transaction and nothing has written yet."""
    if not connection.info.get(_READ_MODE):
        return False
    return bool(connection.connection.dbapi_connection.autocommit)


def is_plain_read(statement: str) -> bool:
    """A SELECT that neither writes nor locks (a data-modifying CTE starts with WITH)."""
    if statement.lstrip()[:6].upper() != "SELECT":
        return False
    return _LOCKING.search(statement.upper()) is None


@event.listens_for(Engine, "before_cursor_execute")
def _begin_before_a_write(conn: Any, cursor: Any, statement: str, parameters: Any,
                          context: Any, executemany: bool) -> None:
    if not conn.info.get(_READ_MODE):
        return
    dbapi_connection = cursor.connection
    if not dbapi_connection.autocommit:
        return  # a write began the transaction already
    if context is not None and context.execution_options.get(ALONE):
        return
    if is_plain_read(statement):
        return
    # psycopg2 sends BEGIN before this statement, and the request's commit (or rollback) ends
    # the transaction; the pool gives the connection back with its default mode.
    dbapi_connection.autocommit = False


@event.listens_for(Pool, "checkin")
def _end_of_the_mode(dbapi_connection: Any, record: Any) -> None:
    # The mode lasts as long as the session holds the connection: its commit or rollback
    # gives it back (psycopg2 sends no COMMIT or ROLLBACK in autocommit, so there is nothing
    # to end), and the next checkout starts in the default mode.
    if record.info.pop(_READ_MODE, None) and dbapi_connection is not None:
        dbapi_connection.autocommit = False


def install_reads_outside_transaction(app: Flask, *, paths: Iterable[str]) -> None:
    """Requests under `paths` start with their reads outside a transaction, whatever their
    method: a write's reads before its first write (its consent facts, above all) see what
    they saw inside the transaction, each statement's own snapshot in READ COMMITTED, and may
    run through a kept plan (core.kept_plans); its writes still commit together. A CORS
    preflight (OPTIONS) reads nothing, so it takes no connection for the mode."""
    prefixes = tuple(paths)

    @app.before_request
    def _reads_outside_transaction() -> None:
        if request.method != "OPTIONS" and request.path.startswith(prefixes):
            read_outside_transaction(db.session())
