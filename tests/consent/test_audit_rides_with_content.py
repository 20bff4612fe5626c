"""A read's audit append riding with its content statement (consent.audit, PostgreSQL): it is
never lost and never overtaken. A statement that does not carry it is preceded by it; leaving
the block sends one nothing carried, after a failure too; inside a transaction nothing waits."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select, text

from consent.audit import append_event, audit_rides_with_content, verify_chains, with_pending_audit
from consent.models import AuditEvent
from core.db import db
from core.transactions import read_outside_transaction

CITIZEN = uuid.UUID(int=0xCA221ED)
NOW = dt.datetime(2026, 12, 7, 4, 0, tzinfo=dt.UTC)
APPEND = "WITH head AS (INSERT INTO audit_chain_heads"  # the append on its own


@pytest.fixture
def session(app_context):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("data-modifying CTEs and reads outside a transaction are PostgreSQL's")
    session = db.session()
    assert read_outside_transaction(session)
    return session


@contextmanager
def sent() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split())[:60])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _decide(session) -> uuid.UUID:  # a permitted read
    return append_event(session, alone=True, permitted_read=True, citizen_id=CITIZEN,
                        occurred_at=NOW, actor_role="citizen", actor_citizen_id=CITIZEN,
                        section="allergies", action="read", purpose="self", decision="permit",
                        rule="self", request_id="rides")


def _events(session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.citizen_id == CITIZEN))


def test_the_content_statement_carries_the_append(session):
    with sent() as seen, audit_rides_with_content(session):
        event_id = _decide(session)
        assert seen == []  # waiting for the content
        query, params, options = with_pending_audit(session, select(text("1 AS one")))
        assert session.execute(query, params, execution_options=options).scalar() == 1
    assert len(seen) == 1, seen
    assert seen[0].startswith("WITH phr_audit_head"), seen
    assert session.scalar(select(AuditEvent.id).where(AuditEvent.citizen_id == CITIZEN)) \
        == event_id
    session.commit()  # verifying reads with a server-side cursor, inside a transaction
    assert verify_chains(session, citizen_id=CITIZEN).ok


def test_a_statement_that_does_not_carry_it_is_preceded_by_it(session):
    with sent() as seen, audit_rides_with_content(session):
        _decide(session)
        session.execute(text("SELECT 2"))
        assert _events(session) == 1
    assert seen[0].startswith(APPEND), seen
    assert seen[1] == "SELECT 2", seen


def test_leaving_the_block_sends_what_nothing_carried(session):
    with audit_rides_with_content(session):
        _decide(session)
    assert _events(session) == 1


def test_a_failure_in_the_block_still_sends_it(session):
    def failing_read() -> None:
        with audit_rides_with_content(session):
            _decide(session)
            raise LookupError("the read failed after its decision")

    with pytest.raises(LookupError):
        failing_read()
    assert _events(session) == 1


def test_two_decisions_keep_their_order(session):
    with audit_rides_with_content(session):
        first = _decide(session)
        second = _decide(session)  # the first goes out before it
    ids = session.scalars(select(AuditEvent.id).where(AuditEvent.citizen_id == CITIZEN)
                          .order_by(AuditEvent.seq)).all()
    assert ids == [first, second]
    session.commit()  # verifying reads with a server-side cursor, inside a transaction
    assert verify_chains(session, citizen_id=CITIZEN).ok


def test_inside_a_transaction_nothing_waits(session):
    session.execute(text("SELECT 1 FOR UPDATE"))  # a locking read begins the transaction
    with sent() as seen, audit_rides_with_content(session):
        _decide(session)
        assert seen, "nothing was sent"
        assert seen[0].startswith(APPEND), seen
    session.commit()
    assert _events(session) == 1


def test_a_commit_in_the_block_sends_it_first(session):
    with audit_rides_with_content(session):
        _decide(session)
        session.commit()
        assert _events(session) == 1
    assert _events(session) == 1


def test_a_rollback_in_the_block_does_not_lose_it(session):
    with audit_rides_with_content(session):
        _decide(session)
        session.rollback()  # the session gives its connection back
    assert _events(session) == 1


def test_a_refusal_never_waits(session):
    with sent() as seen, audit_rides_with_content(session):
        append_event(session, alone=True, citizen_id=CITIZEN, occurred_at=NOW,
                     actor_role="citizen", actor_citizen_id=uuid.UUID(int=5),
                     section="allergies", action="read", purpose="treatment",
                     decision="deny", rule="no-relationship", request_id="refused")
        assert len(seen) == 1, seen
    assert _events(session) == 1


def test_no_carrier_outlives_its_block(session):
    """The carrier sits on the pooled connection: a later session on it must not find it
    (its permitted read would wait on a carrier nobody sends)."""
    with audit_rides_with_content(session):
        _decide(session)
        session.rollback()
    session.close()
    later = db.session()
    assert read_outside_transaction(later)
    assert "phr_audit_carrier" not in later.connection().info
    _decide(later)  # outside any block: sent at once
    assert _events(later) == 2
