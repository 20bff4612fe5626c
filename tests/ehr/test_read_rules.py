"""The rules the read path keeps however few its statements (issue 18): a read's audit event is
durable before its data leaves (an append that fails answers 5xx and no data), the permission
stays in the SQL of every list, and a single entry is shown only within its section's scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select, text

from consent.models import AuditEvent
from core.db import db
from tests.support.sql_log import statements

DOSE = {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": "2024-03-01",
        "lot_number": "RULES-LOT-31"}
SECRET_CONDITION = {"icd10_code": "F32.1", "clinical_status": "active",
                    "onset_date": "2023-02-01", "note": "RULES-NOTE-57"}


@contextmanager
def inserts_refused(app, table: str, message: str) -> Iterator[None]:
    """Every insert into `table` fails in the database itself (a trigger raising `message`)."""
    name = f"phr_test_refuse_{table}"
    with app.app_context():
        dialect = db.engine.dialect.name
        if dialect == "postgresql":
            db.session.execute(text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
                f"AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$"))
            db.session.execute(text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"))
        else:
            db.session.execute(text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"))
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
                db.session.execute(text(f"DROP TRIGGER {name} ON {table}"))
                db.session.execute(text(f"DROP FUNCTION {name}()"))
            else:
                db.session.execute(text(f"DROP TRIGGER {name}"))
            db.session.commit()


def audit_refused(app) -> Any:
    """Every insert into audit_events fails in the database itself (a trigger)."""
    return inserts_refused(app, "audit_events", "audit refused")


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


@pytest.mark.parametrize("route", ["entry", "versions", "list", "summary", "schedule"])
@pytest.mark.parametrize("reader", ["doctor", "patient"])
def test_a_read_whose_audit_fails_answers_5xx_and_no_data(app, client, world, route, reader):
    entry = _create(client, world, "immunizations", DOSE)
    base = f"/api/v1/citizens/{world.patient}"
    path = {"entry": f"{base}/immunizations/{entry}",
            "versions": f"{base}/immunizations/{entry}/versions",
            "list": f"{base}/immunizations", "summary": f"{base}/summary",
            "schedule": f"{base}/immunization-schedule"}[route]
    headers = world.headers(reader)
    first = client.get(path, headers=headers)  # warm: the principal is remembered
    assert first.status_code == 200
    assert b"RULES-LOT-31" in first.get_data() or route in ("summary", "schedule")
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
    else but the commit (SQLite appends in two statements, the chain head and the event; a
    repeat read sends no access-digest upsert, the facts said it shows today)."""
    entry = _create(client, world, "immunizations", DOSE)
    path = f"/api/v1/citizens/{world.patient}/immunizations/{entry}"
    client.get(path, headers=world.headers("doctor"))
    with statements(app) as seen:
        assert client.get(path, headers=world.headers("doctor")).status_code == 200
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    assert len(seen) == (2 if postgres else 3), seen


def test_a_summary_selects_its_entries_and_vitals_in_one_statement(app, client, world):
    """The summary's record content is one statement carrying each section's scope: a hidden
    diagnosis stays out, and the latest vitals are the newest observation of each kind."""
    _secret_condition(client, world)
    _create(client, world, "conditions", {"icd10_code": "I10", "clinical_status": "active",
                                          "onset_date": "2020-01-01"})
    for day, systolic in (("2025-01-10", 150), ("2025-06-10", 128)):
        _create(client, world, "observations", {
            "kind": "blood-pressure", "systolic": systolic, "diastolic": 80,
            "unit": "mm[Hg]", "effective_at": f"{day}T02:00:00Z"})
    _create(client, world, "observations", {"kind": "body-weight", "value": 61, "unit": "kg",
                                            "effective_at": "2025-03-01T02:00:00Z"})
    path = f"/api/v1/citizens/{world.patient}/summary"
    client.get(path, headers=world.headers("doctor"))
    with statements(app) as seen:
        answer = client.get(path, headers=world.headers("doctor"))
    assert answer.status_code == 200
    summary = answer.get_json()
    assert [c["data"]["icd10_code"] for c in summary["active_conditions"]] == ["I10"]
    assert sorted((v["data"]["kind"], v["data"].get("systolic")) for v in
                  summary["latest_vitals"]) == [("blood-pressure", 128), ("body-weight", None)]
    (content,) = [s for s in seen if "FROM record_entries" in s and "ORDER BY" in s]
    assert "record_entries.sensitivity" in content.split("WHERE", 1)[1]


# --- reads outside a transaction (core.transactions; PostgreSQL) ------------------------------


def _postgres_only(app) -> None:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("reads outside a transaction are PostgreSQL's")


@pytest.mark.parametrize("route", ["entry", "list", "summary"])
def test_a_repeat_read_sends_no_begin_and_no_commit(app, client, world, route):
    """The doctor's second read of the day: the facts query says her digest shows today, so
    the read's statements, its audit append included, each run and commit alone."""
    from tests.support.driver import seen_by_driver

    _postgres_only(app)
    entry = _create(client, world, "immunizations", DOSE)
    base = f"/api/v1/citizens/{world.patient}"
    path = {"entry": f"{base}/immunizations/{entry}", "list": f"{base}/immunizations",
            "summary": f"{base}/summary"}[route]
    headers = world.headers("doctor")
    assert client.get(path, headers=headers).status_code == 200  # the day's first read
    before = _events(app)
    with app.app_context():
        engine = db.engine
    with seen_by_driver(engine) as seen:
        answer = client.get(path, headers=headers)
    assert answer.status_code == 200
    assert seen, "the read ran no statement"
    assert [(word, autocommit, in_transaction) for word, autocommit, in_transaction in seen
            if not autocommit or in_transaction] == []
    assert _events(app) == before + 1


@pytest.mark.parametrize("route", ["list", "summary", "versions", "schedule", "ips"])
@pytest.mark.parametrize("reader", ["doctor", "patient"])
def test_a_read_sends_its_audit_with_its_content(app, client, world, route, reader):
    """Outside a transaction the audit append rides in the statement that selects the
    content (data-modifying CTEs): no append on its own, the facts and that one statement
    (and the patient's unread badge on the summary), and the event is in the person's chain
    like any other."""
    _postgres_only(app)
    entry = _create(client, world, "immunizations", DOSE)
    base = f"/api/v1/citizens/{world.patient}"
    path = {"list": f"{base}/immunizations", "summary": f"{base}/summary",
            "versions": f"{base}/immunizations/{entry}/versions",
            "schedule": f"{base}/immunization-schedule",
            "ips": f"/fhir/R4/Patient/{world.patient}/$summary"}[route]
    headers = world.headers(reader)
    assert client.get(path, headers=headers).status_code == 200  # the day's first read
    before = _events(app)
    with statements(app) as seen:
        answer = client.get(path, headers=headers)
    assert answer.status_code == 200
    assert route not in ("list", "versions") or b"RULES-LOT-31" in answer.get_data()
    carrying = [s for s in seen if "INSERT INTO audit_events" in s]
    assert len(carrying) == 1, seen
    if (route in ("versions", "list", "summary", "ips")
            and carrying[0].startswith("WITH phr_facts")):
        # The second read: the worker's standing decision's append rides with the facts and
        # the entry (versions: they follow alone), the page or the summary's entries
        # (consent.standing).
        assert "phr_audit_head_if" in carrying[0]
        assert "record_entries" in carrying[0]
    else:
        assert carrying[0].startswith("WITH phr_audit_head")
        assert "FROM record_entr" in carrying[0]
    assert not [s for s in seen if s.startswith("WITH head AS")], seen  # no append alone
    if route != "ips":
        # The patient's unread badge on the summary.
        extra = int(route == "summary" and reader == "patient")
        # A standing list or summary is the one statement (consent.standing).
        standing = int(route in ("list", "summary") and carrying[0].startswith("WITH phr_facts"))
        assert len(seen) == 2 + extra - standing, seen
    assert _events(app) == before + 1
    with app.app_context():
        from consent.audit import verify_chains

        assert verify_chains(db.session, citizen_id=world.patient).ok


def test_the_first_read_of_the_day_writes_its_notice_with_its_audit(app, client, world):
    """The digest that says "told today" commits with the notice that tells, or neither
    does: with notifications refused, the read answers 5xx with no data, and neither its
    audit event nor the digest stays; the next read tells the citizen once."""
    from notifications.models import Notification
    from tests.support.driver import seen_by_driver

    _postgres_only(app)
    entry = _create(client, world, "immunizations", DOSE)
    path = f"/api/v1/citizens/{world.patient}/immunizations/{entry}"
    headers = world.headers("doctor")

    def told() -> int:
        with app.app_context():
            return db.session.scalar(select(func.count()).select_from(Notification).where(
                Notification.subject_citizen_id == world.patient,
                Notification.trigger == "record-accessed"))

    def digests() -> int:
        with app.app_context():
            return db.session.scalar(text(
                "SELECT count(*) FROM access_digests WHERE citizen_id = :c"),
                {"c": world.patient})

    assert (told(), digests()) == (0, 0)
    before = _events(app)
    with inserts_refused(app, "notifications", "notice refused"):
        refused = client.get(path, headers=headers)
    assert 500 <= refused.status_code < 600
    assert b"RULES-LOT-31" not in refused.get_data()
    assert (told(), digests(), _events(app)) == (0, 0, before)

    with app.app_context():
        engine = db.engine
    with seen_by_driver(engine) as seen:
        answer = client.get(path, headers=headers)
    assert answer.status_code == 200
    assert (told(), digests(), _events(app)) == (1, 1, before + 1)
    # The facts query ran alone; the audit append began the transaction the notice joined.
    assert seen[0][:2] == ("SELECT", True)
    assert seen[1] == ("WITH", False, False)
    assert all(in_transaction for _, _, in_transaction in seen[2:])
