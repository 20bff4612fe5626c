"""The statements an engine runs while a test runs a block, each on one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from core.db import db


@contextmanager
def recorded(engine: Any, *, sent: bool = False) -> Iterator[list[str]]:
    """Each statement `engine` runs inside the block: as SQLAlchemy hands it to the driver,
    or with `sent`, what psycopg2 actually sent (after any `do_execute` hook, such as
    core.kept_plans, with its values in place)."""
    seen: list[str] = []
    if sent:
        hook = "after_cursor_execute"

        def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            seen.append(" ".join(cursor.query.decode().split()))
    else:
        hook = "before_cursor_execute"

        def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            seen.append(" ".join(statement.split()))

    event.listen(engine, hook, record)
    try:
        yield seen
    finally:
        event.remove(engine, hook, record)


@contextmanager
def statements(app: Any, *, sent: bool = False) -> Iterator[list[str]]:
    """`recorded` on `app`'s engine."""
    with app.app_context():
        engine = db.engine
    with recorded(engine, sent=sent) as seen:
        yield seen
