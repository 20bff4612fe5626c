"""Server-side prepared statements (core/prepared.py): PostgreSQL prepares a statement a
connection repeats, the answers do not change, and nothing else is touched."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, text

from auth.models import OAuthClient
from core.db import db
from tests.conftest import make_app
from tests.support.auth import token_for


@pytest.fixture
def app_with_threshold(database_url, log_stream, request):
    application = make_app(database_url, log_stream, DB_PREPARE_THRESHOLD=request.param)
    yield application
    from tests.support.database import empty_all_tables

    with application.app_context():
        db.session.remove()
        empty_all_tables(db.engine)
        db.engine.dispose()


def _prepared_here() -> list[str]:
    return list(db.session.execute(text(
        "SELECT statement FROM pg_prepared_statements WHERE name LIKE 'phr\\_%'")).scalars())


def _skip_unless_postgresql() -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("prepared statements are a PostgreSQL matter; SQLite passes through")


@pytest.mark.parametrize("app_with_threshold", [3], indirect=True)
def test_a_repeated_statement_is_prepared_on_its_third_execution(app_with_threshold):
    app = app_with_threshold
    query = select(OAuthClient.client_id, OAuthClient.name).where(
        OAuthClient.client_id == bindparam("wanted"))
    with app.app_context():
        _skip_unless_postgresql()
        db.session.connection()  # one connection for the whole test
        answers = []
        for round_ in range(5):
            answers.append(db.session.execute(query, {"wanted": "nobody"}).all())
            prepared = [s for s in _prepared_here() if "oauth_clients.client_id = $1" in s]
            assert len(prepared) == (1 if round_ >= 2 else 0), round_
        assert answers == [[]] * 5
        db.session.rollback()
        # PREPARE outlives a rollback; the statement keeps working on that connection.
        assert db.session.execute(query, {"wanted": "nobody"}).all() == []


@pytest.mark.parametrize("app_with_threshold", [1], indirect=True)
def test_answers_through_http_are_the_same_and_a_bad_statement_fails_as_before(
        app_with_threshold):
    app = app_with_threshold
    client = app.test_client()
    tokens = token_for(client, app, role="citizen")
    with app.app_context():
        _skip_unless_postgresql()
    headers = {"Authorization": f"Bearer {tokens.access_token}"}
    first = client.get("/api/v1/me", headers=headers)
    again = client.get("/api/v1/me", headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    with app.app_context():
        with pytest.raises(Exception, match="division by zero"):
            db.session.execute(text("SELECT 1 / :zero"), {"zero": 0}).all()
        db.session.rollback()
        assert db.session.execute(text("SELECT 6 / :two"), {"two": 2}).scalar() == 3


@pytest.mark.parametrize("app_with_threshold", [1], indirect=True)
def test_a_statement_postgresql_cannot_prepare_runs_plain_in_the_same_transaction(
        app_with_threshold):
    with app_with_threshold.app_context():
        _skip_unless_postgresql()
        db.session.execute(text("CREATE TEMPORARY TABLE prepared_probe (n int)"))
        db.session.execute(text("INSERT INTO prepared_probe (n) VALUES (:n)"), {"n": 7})
        # json_build_object's arguments have no type PostgreSQL can infer for $1.
        for _ in range(2):
            value = db.session.execute(text("SELECT json_build_object(:key, n) FROM "
                                            "prepared_probe"), {"key": "n"}).scalar()
            assert value == {"n": 7}
        assert db.session.execute(text("SELECT n FROM prepared_probe")).scalar() == 7
        assert not [s for s in _prepared_here() if "json_build_object" in s]
        db.session.rollback()


@pytest.mark.parametrize("app_with_threshold", [0], indirect=True)
def test_threshold_zero_prepares_nothing(app_with_threshold):
    with app_with_threshold.app_context():
        _skip_unless_postgresql()
        for _ in range(5):
            db.session.execute(text("SELECT :n"), {"n": 1}).all()
        assert _prepared_here() == []
        db.session.rollback()
