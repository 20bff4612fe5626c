"""What psycopg2 says of a connection before each statement: whether it runs in autocommit
and whether a transaction is open (core.transactions' tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


@contextmanager
def seen_by_driver(engine: Any) -> Iterator[list[tuple[str, bool, bool]]]:
    """(statement's first word, autocommit, inside a transaction) before each statement. It
    listens after core.transactions' own listener (registered at import), so it sees the
    mode's decision: autocommit False with no transaction open means a BEGIN goes first."""
    from psycopg2 import extensions

    seen: list[tuple[str, bool, bool]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        dbapi = cursor.connection
        seen.append((statement.split()[0].upper(), bool(dbapi.autocommit),
                     dbapi.get_transaction_status() != extensions.TRANSACTION_STATUS_IDLE))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
