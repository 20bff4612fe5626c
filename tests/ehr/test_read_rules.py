"""The rules the read path keeps however few its statements (issue 18): a read's audit event is
durable before its data leaves (an append that fails answers 5xx and no data), the permission
stays in the SQL of every list, and a single entry is shown only within its section's scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select, text

from consent.models import AuditEvent
from core.db import db

DOSE = {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": "2024-03-01",
        "lot_number": "RULES-LOT-31"}
SECRET_CONDITION = {"icd10_code": "F32.1", "clinical_status": "active",
                    "onset_date": "2023-02-01", "note": "RULES-NOTE-57"}


@contextmanager
def statements(app) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def audit_refused(app) -> Iterator[None]:
    """Every insert into audit_events fails in the database itself (a trigger)."""
    with app.app_context():
        dialect = db.engine.dialect.name
        if dialect == "postgresql":
            db.session.execute(text(
                "CREATE FUNCTION phr_test_refuse_audit() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$"))
            db.session.execute(text(
                "CREATE TRIGGER phr_test_refuse_audit BEFORE INSERT ON audit_events "
                "FOR EACH ROW EXECUTE FUNCTION phr_test_refuse_audit()"))
        else:
            db.session.execute(text(
                "CREATE TRIGGER phr_test_refuse_audit BEFORE INSERT ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"))
        db.session.commit()
    propagate = app.config.get("PROPAGATE_EXCEPTIONS")
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as production does
    try:
        yield
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = propagate
        with app.app_context():
            db.session.rollback()
            if dialect == "postgresql":
                db.session.execute(text(
                    "DROP TRIGGER phr_test_refuse_audit ON audit_events"))
                db.session.execute(text("DROP FUNCTION phr_test_refuse_audit()"))
            else:
                db.session.execute(text("DROP TRIGGER phr_test_refuse_audit"))
            db.session.commit()


def _events(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEvent))


def _secret_condition(client, world) -> str:
    """A mental-health diagnosis, written by the clinician the patient named for it."""
    grant = client.post(
        f"/api/v1/citizens/{world.patient}/consents", headers=world.headers("patient"),
        json={"grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
              "sections": ["conditions"], "categories": ["mental-health"],
              "access": "read-write"})
    assert grant.status_code == 201, grant.get_json()
    return _create(client, world, "conditions", SECRET_CONDITION, who="other_doctor")


def _create(client, world, section, body, who="doctor") -> str:
    answer = client.post(f"/api/v1/citizens/{world.patient}/{section}", json=body,
                         headers=world.headers(who))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


@pytest.mark.parametrize("route", ["entry", "versions", "list", "summary"])
@pytest.mark.parametrize("reader", ["doctor", "patient"])
def test_a_read_whose_audit_fails_answers_5xx_and_no_data(app, client, world, route, reader):
    entry = _create(client, world, "immunizations", DOSE)
    base = f"/api/v1/citizens/{world.patient}"
    path = {"entry": f"{base}/immunizations/{entry}",
            "versions": f"{base}/immunizations/{entry}/versions",
            "list": f"{base}/immunizations", "summary": f"{base}/summary"}[route]
    headers = world.headers(reader)
    first = client.get(path, headers=headers)  # warm: the principal is remembered
    assert first.status_code == 200
    assert b"RULES-LOT-31" in first.get_data() or route == "summary"
    before = _events(app)
    with audit_refused(app):
        answer = client.get(path, headers=headers)
    assert 500 <= answer.status_code < 600
    assert answer.mimetype == "application/problem+json"
    body = answer.get_data()
    assert b"RULES-LOT-31" not in body
    assert b"Traceback" not in body
    assert b"audit refused" not in body
    assert _events(app) == before
    assert client.get(path, headers=headers).status_code == 200  # and back once it works


def test_a_denied_read_whose_audit_fails_answers_5xx(app, client, world):
    entry = _create(client, world, "immunizations", DOSE)
    path = f"/api/v1/citizens/{world.patient}/immunizations/{entry}"
    with audit_refused(app):
        answer = client.get(path, headers=world.headers("other_doctor"))
    assert 500 <= answer.status_code < 600
    assert b"RULES-LOT-31" not in answer.get_data()


def test_a_restricted_entry_is_hidden_from_a_single_read_and_its_refusal_audited(
        app, client, world):
    """The family doctor reads the section but not its mental-health entry: the entry read
    is a 404 whose audit event names the entry and the label that hid it; the clinician the
    patient named for it reads it."""
    entry = _secret_condition(client, world)
    answer = client.get(f"/api/v1/citizens/{world.patient}/conditions/{entry}",
                        headers=world.headers("doctor"))
    assert answer.status_code == 404
    assert b"RULES-NOTE-57" not in answer.get_data()
    with app.app_context():
        last = db.session.scalars(select(AuditEvent).order_by(
            AuditEvent.occurred_at.desc(), AuditEvent.seq.desc())).first()
        assert (last.decision, str(last.entry_id), last.sensitivity) == (
            "deny", entry, "mental-health")
    # The clinician the patient named for it reads it.
    named = client.get(f"/api/v1/citizens/{world.patient}/conditions/{entry}",
                       headers=world.headers("other_doctor"))
    assert named.status_code == 200
    assert b"RULES-NOTE-57" in named.get_data()


def test_a_list_carries_the_permission_in_its_sql(app, client, world):
    _secret_condition(client, world)
    _create(client, world, "conditions", {"icd10_code": "I10", "clinical_status": "active",
                                          "onset_date": "2020-01-01"})
    path = f"/api/v1/citizens/{world.patient}/conditions"
    client.get(path, headers=world.headers("doctor"))
    with statements(app) as seen:
        answer = client.get(path, headers=world.headers("doctor"))
    items = answer.get_json()["items"]
    assert [item["data"]["icd10_code"] for item in items] == ["I10"]
    (listing,) = [s for s in seen if "FROM record_entries" in s and "LIMIT" in s]
    assert "record_entries.sensitivity" in listing.split("WHERE", 1)[1]


def test_a_single_read_is_two_statements_on_postgresql(app, client, world):
    """The entry with its facts and the token's liveness, then the audit append; nothing
    else but the commit (SQLite appends a third party's audit in three statements)."""
    entry = _create(client, world, "immunizations", DOSE)
    path = f"/api/v1/citizens/{world.patient}/immunizations/{entry}"
    client.get(path, headers=world.headers("doctor"))
    with statements(app) as seen:
        assert client.get(path, headers=world.headers("doctor")).status_code == 200
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    assert len(seen) == (2 if postgres else 4), seen
