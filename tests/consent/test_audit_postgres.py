"""PostgreSQL guarantees of the audit log: the app role cannot rewrite it, chains do not block
each other. SQLite has a single writer and no roles, so these run on PostgreSQL only."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from consent.audit import append_event, verify_chains
from core.db import db

pytestmark = pytest.mark.postgres

NOW = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def pg(app_context):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (set TEST_DATABASE_URL): SQLite has no roles and one writer")
    return app_context


def _append(session, citizen_id: uuid.UUID) -> uuid.UUID:
    return append_event(
        session, citizen_id=citizen_id, occurred_at=NOW, actor_role="citizen",
        actor_citizen_id=citizen_id, section="allergies", action="read", purpose="self",
        decision="permit", rule="self",
    )


def test_the_app_role_may_insert_and_select_audit_rows_but_not_update_or_delete(pg):
    citizen = uuid.uuid4()
    with db.engine.connect() as connection:
        connection.execute(text("SET ROLE phr_app"))
        from sqlalchemy.orm import Session

        with Session(bind=connection) as session:
            event_id = _append(session, citizen)
            session.flush()
        count = connection.execute(
            text("SELECT count(*) FROM audit_events WHERE id = :id"), {"id": event_id}
        ).scalar_one()
        assert count == 1
        for statement in ("UPDATE audit_events SET rule = 'x' WHERE id = :id",
                          "DELETE FROM audit_events WHERE id = :id",
                          "TRUNCATE audit_events"):
            with pytest.raises(ProgrammingError) as refused, connection.begin_nested():
                connection.execute(text(statement), {"id": event_id})
            assert "permission denied" in str(refused.value)
        connection.rollback()


def test_the_trigger_refuses_updates_and_deletes_even_for_the_owner(pg):
    citizen = uuid.uuid4()
    _append(db.session, citizen)
    db.session.commit()
    for statement in ("UPDATE audit_events SET rule = 'forged'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError) as refused:
            db.session.execute(text(statement))
        assert "append-only" in str(refused.value)
        db.session.rollback()
    assert verify_chains(db.session).ok


def test_two_citizens_chains_do_not_wait_on_each_other(pg):
    """One transaction holds citizen A's chain head (an audit append not yet committed);
    another appends for citizen B at once, while a second append for A would have to wait."""
    from sqlalchemy.orm import Session

    citizen_a, citizen_b = uuid.uuid4(), uuid.uuid4()
    holder = db.engine.connect()
    other = db.engine.connect()
    try:
        with Session(bind=holder) as session_a:
            _append(session_a, citizen_a)  # row lock on A's chain head until commit
            with Session(bind=other) as session_b:
                session_b.execute(text("SET LOCAL lock_timeout = '2s'"))
                _append(session_b, citizen_b)  # completes: B's head is another row
                session_b.commit()
                session_b.execute(text("SET LOCAL lock_timeout = '200ms'"))
                with pytest.raises(OperationalError) as waited:
                    _append(session_b, citizen_a)
                assert "lock timeout" in str(waited.value)
                session_b.rollback()
            session_a.commit()
    finally:
        holder.close()
        other.close()
    report = verify_chains(db.session)
    assert report.ok
    assert report.events == 2
    assert report.chains == 2
