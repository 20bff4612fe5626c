"""Audit rows are append-only in both databases: a trigger refuses UPDATE and DELETE (migration
0004 on PostgreSQL, 0014 on SQLite). A test that must remove or rewrite them (the suite's
emptying between tests, a tamper that `audit verify` must catch) does it as whoever owns the
database file or server could: with those triggers off for one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection

# Named by migration 0014 (SQLite); PostgreSQL's is `audit_events_append_only`.
_SQLITE_TRIGGERS = "audit_events_append_only_%"


@contextmanager
def audit_triggers_off(connection: Connection) -> Iterator[None]:
    """Run the block with the append-only triggers of `audit_events` off, for the current
    transaction only; the caller commits or rolls back.

    PostgreSQL: `session_replication_role = replica` (superuser), local to the transaction.
    SQLite has no such switch, and its DDL is transactional: the triggers are dropped and
    created again from their own SQL inside the transaction, so a rollback (the block raised)
    puts them back too, and no other connection ever sees the table without them.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        yield
        return
    if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        # pysqlite opens its transaction only before DML: the DROP below must be inside it.
        connection.exec_driver_sql("BEGIN")
    triggers = connection.execute(text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
        "AND tbl_name = 'audit_events' AND name LIKE :pattern ORDER BY name"),
        {"pattern": _SQLITE_TRIGGERS}).all()
    for name, _ in triggers:
        connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
    yield
    for _, sql in triggers:
        connection.exec_driver_sql(sql)
