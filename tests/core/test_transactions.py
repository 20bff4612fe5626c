"""Reads outside a transaction, writes inside one (core.transactions, PostgreSQL).

A session in the mode runs plain SELECTs in autocommit; the first statement that writes or locks
begins a transaction that the session's commit or rollback ends (so a rolled-back request
leaves nothing); a statement marked ALONE commits as it returns. What psycopg2 says of the
connection before each statement (autocommit, transaction status) tells whether a BEGIN went
before it. The connections and the database are real.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from core.config import normalize_database_url
from core.db import db
from core.transactions import ALONE, is_plain_read, read_outside_transaction
from tests.support.driver import seen_by_driver

pytestmark = pytest.mark.postgres

TABLE = "phr_test_transactions"


@pytest.fixture
def pg_app(app: Any, database_url: str) -> Iterator[Any]:
    if not database_url.startswith(("postgresql", "postgres:")):
        pytest.skip("the mode is PostgreSQL's (SQLite keeps its transactions)")
    with app.app_context():
        db.session.execute(text(f"CREATE TABLE {TABLE} (id uuid PRIMARY KEY, note text)"))
        db.session.commit()
    yield app
    with app.app_context():
        db.session.rollback()
        db.session.execute(text(f"DROP TABLE {TABLE}"))
        db.session.commit()


@pytest.fixture
def elsewhere(database_url: str) -> Iterator[Any]:
    """Another connection: what it sees is what was committed."""
    engine = create_engine(normalize_database_url(database_url))

    def committed() -> set[str]:
        with engine.connect() as connection:
            return set(connection.execute(text(f"SELECT note FROM {TABLE}")).scalars())

    yield committed
    engine.dispose()


def _insert(note: str, **options: Any) -> None:
    db.session.execute(text(f"INSERT INTO {TABLE} (id, note) VALUES (:id, :note)"),
                       {"id": uuid.uuid4(), "note": note}, execution_options=options)


def test_reads_run_outside_a_transaction_and_the_first_write_begins_one(pg_app, elsewhere):
    with pg_app.app_context(), seen_by_driver(db.engine) as seen:
        assert read_outside_transaction(db.session())
        db.session.execute(text("SELECT 1")).all()
        db.session.execute(text(f"SELECT count(*) FROM {TABLE}")).all()
        _insert("first")
        _insert("second")
        db.session.execute(text(f"SELECT count(*) FROM {TABLE}")).all()
        assert elsewhere() == set()  # nothing committed yet: one transaction
        db.session.commit()
    assert seen == [("SELECT", True, False), ("SELECT", True, False),
                    ("INSERT", False, False),  # BEGIN is sent with it
                    ("INSERT", False, True), ("SELECT", False, True)]
    assert elsewhere() == {"first", "second"}


def test_a_rolled_back_request_leaves_none_of_its_writes(pg_app, elsewhere):
    with pg_app.app_context():
        read_outside_transaction(db.session())
        db.session.execute(text("SELECT 1")).all()
        _insert("first")
        _insert("second")
        db.session.rollback()
    assert elsewhere() == set()


def test_a_write_alone_commits_as_it_returns_and_the_next_write_begins_a_transaction(
        pg_app, elsewhere):
    with pg_app.app_context(), seen_by_driver(db.engine) as seen:
        read_outside_transaction(db.session())
        _insert("audit", **{ALONE: True})
        assert elsewhere() == {"audit"}  # durable before anything else happens
        _insert("later")
        db.session.rollback()
    assert [autocommit for _, autocommit, _ in seen] == [True, False]
    assert elsewhere() == {"audit"}


def test_a_locking_select_begins_a_transaction(pg_app, elsewhere):
    with pg_app.app_context(), seen_by_driver(db.engine) as seen:
        read_outside_transaction(db.session())
        db.session.execute(text(f"SELECT * FROM {TABLE} FOR UPDATE")).all()
        db.session.execute(text("SELECT 1")).all()
        db.session.commit()
    assert seen == [("SELECT", False, False), ("SELECT", False, True)]


def test_the_mode_is_off_once_a_transaction_began_and_ends_with_the_connection(pg_app):
    with pg_app.app_context(), seen_by_driver(db.engine) as seen:
        db.session.execute(text("SELECT 1")).all()
        assert not read_outside_transaction(db.session())  # too late: stays in its transaction
        db.session.commit()
        assert read_outside_transaction(db.session())
        db.session.execute(text("SELECT 1")).all()
        db.session.commit()
        db.session.execute(text("SELECT 1")).all()  # a new transaction: the default mode
        db.session.rollback()
    assert [autocommit for _, autocommit, _ in seen] == [False, True, False]


@pytest.mark.parametrize(("statement", "plain"), [
    ("SELECT 1", True),
    ("  select id FROM t WHERE note = :note", True),
    ("SELECT id FROM t WHERE note = 'for update'", False),  # looks like a lock: on the safe side
    ("SELECT id FROM t FOR UPDATE", False),
    ("select id from t for update of t", False),
    ("SELECT performer, platform FROM t", True),
    ("SELECT id FROM t FOR NO KEY UPDATE SKIP LOCKED", False),
    ("SELECT id FROM t\nFOR SHARE", False),
    ("SELECT id FROM t FOR KEY SHARE", False),
    ("WITH x AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM x", False),
    ("INSERT INTO t VALUES (1)", False),
    ("UPDATE t SET a = 1", False),
    ("DELETE FROM t", False),
    ("SET LOCAL statement_timeout = 1", False),
])
def test_what_counts_as_a_plain_read(statement, plain):
    assert is_plain_read(statement) is plain


def test_a_preflight_takes_no_connection(pg_app):
    """A browser's CORS preflight (OPTIONS) reads nothing: the mode, set for every other
    method under /api/, does not check a connection out of the pool for it."""
    from sqlalchemy.pool import Pool

    taken: list[object] = []

    def checkout(dbapi_connection, record, proxy):  # noqa: ANN001
        taken.append(dbapi_connection)

    event.listen(Pool, "checkout", checkout)
    try:
        answer = pg_app.test_client().options(
            "/api/v1/me", headers={"Origin": "https://portal.example.vn",
                                   "Access-Control-Request-Method": "GET"})
    finally:
        event.remove(Pool, "checkout", checkout)
    assert answer.status_code < 400
    assert taken == []
