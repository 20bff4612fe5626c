"""Standing decisions (consent.standing, PostgreSQL): a reader's repeated read of one person's
section is one statement that selects the entry and its facts and appends the read's audit
event, which runs only when the database finds the facts the decision rested on. The rules of
issue 18 hold on that path too: a revoked token is 401 on the next read with nothing appended,
an append that fails answers 5xx and no data, and whatever changes the decision (a consent, a
new family doctor, a birth date, another label) takes the read back to its two statements."""

# ruff: noqa: F811  (the tests take the imported `world` fixture as an argument)
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from consent.audit import verify_chains
from consent.models import AuditEvent
from consent.policy_types import VIETNAM_TZ
from core.db import db
from tests.ehr.conftest import world  # noqa: F401  (the record world fixture)
from tests.ehr.test_read_rules import audit_refused
from tests.support.auth import revoke_access_token
from tests.support.sql_log import statements

DOSE = {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": "2024-03-01",
        "lot_number": "STANDING-LOT-23"}
LOT = b"STANDING-LOT-23"
# What of an event a standing decision must give exactly as the policy's own append does.
DECIDED = ("citizen_id", "actor_role", "actor_account_id", "actor_citizen_id",
           "actor_practitioner_id", "actor_facility_id", "on_behalf_of", "section", "entry_id",
           "sensitivity", "action", "purpose", "decision", "rule", "consent_id",
           "break_glass_id", "client_id", "actor_label")


@pytest.fixture(autouse=True)
def _postgresql_only(app) -> None:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("standing decisions are PostgreSQL's (data-modifying CTEs)")


def _dose(client, world) -> str:
    answer = client.post(f"/api/v1/citizens/{world.patient}/immunizations", json=DOSE,
                         headers=world.headers("doctor"))
    assert answer.status_code == 201, answer.get_json()
    return f"/api/v1/citizens/{world.patient}/immunizations/{answer.get_json()['id']}"


def _events(app, world) -> list[AuditEvent]:
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).where(
            AuditEvent.citizen_id == world.patient).order_by(AuditEvent.seq)))
        assert verify_chains(db.session, citizen_id=world.patient).ok
        db.session.expunge_all()
        db.session.rollback()
    return events


def _decided(event: AuditEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in DECIDED}


def _read(client, path: str, headers: dict[str, str], app) -> tuple[object, list[str]]:
    with statements(app) as seen:
        answer = client.get(path, headers=headers)
    return answer, list(seen)


def _counted(outcome: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("phr_standing_reads_total", {"outcome": outcome}) or 0.0


def _held(client, app, path: str, headers: dict[str, str]) -> None:
    """Read `path` until this worker holds a standing decision on it: a third party's first
    read of the day writes its notice and keeps none; the second keeps one; the third is
    one statement."""
    for _ in range(2):
        assert client.get(path, headers=headers).status_code == 200
    answer, seen = _read(client, path, headers, app)
    assert answer.status_code == 200
    assert _standing(seen), seen


def _last_event(app, citizen_id: uuid.UUID) -> AuditEvent:
    """The person's latest audit event, their chain verified."""
    with app.app_context():
        last = db.session.scalars(select(AuditEvent).where(
            AuditEvent.citizen_id == citizen_id).order_by(AuditEvent.seq.desc())).first()
        assert verify_chains(db.session, citizen_id=citizen_id).ok
        db.session.expunge_all()
        db.session.rollback()
    return last


def _second_patient(app, world) -> uuid.UUID:
    """Another patient registered with the world's family doctor at her station."""
    from registry.services import assign_family_doctor
    from tests.support.auth import make_citizen

    second = make_citizen(app, full_name="Lê Thị Mai", date_of_birth=dt.date(2015, 2, 1))
    with app.app_context():
        assign_family_doctor(session=db.session, citizen_id=second,
                             practitioner_id=world.doctor_id, facility_id=world.station,
                             changed_by="test")
        db.session.commit()
    return second


def _revoked_is_401_and_nothing_appended(app, client, world, path: str,
                                         headers: dict[str, str]) -> None:
    """With the doctor's standing decision held, revoke her token: the next read is 401, its
    probe rode in the standing statement, and nothing was appended or shown."""
    before = len(_events(app, world))
    revoke_access_token(app, world.doctor_token)
    answer, seen = _read(client, path, headers, app)
    assert answer.status_code == 401
    assert LOT not in answer.get_data()
    assert _standing(seen[:1]), seen  # the probe rode in the standing statement
    assert len(_events(app, world)) == before


def _refused_append_is_5xx_and_no_data(app, client, world, path: str,
                                       headers: dict[str, str]) -> Any:
    """With a standing decision held, the database refuses the audit append: 5xx
    problem+json, nothing of the record, nothing appended. The answer, for more checks."""
    before = len(_events(app, world))
    with audit_refused(app):
        answer = client.get(path, headers=headers)
    assert 500 <= answer.status_code < 600
    assert answer.mimetype == "application/problem+json"
    assert LOT not in answer.get_data()
    assert b"audit refused" not in answer.get_data()
    assert len(_events(app, world)) == before
    return answer


def _standing(seen: list[str]) -> bool:
    """The read was the one statement that carries a standing decision's append."""
    return len(seen) == 1 and seen[0].startswith("WITH phr_facts") and (
        "INSERT INTO audit_events" in seen[0])


def test_a_repeated_read_is_one_statement_and_audited_as_the_first(app, client, world):
    path = _dose(client, world)
    headers = world.headers("doctor")
    # The day's first read tells the patient (its notice commits with its event): it leaves
    # no standing decision; the next read, decided in Python and appended after, does.
    for _ in range(2):
        first, seen_first = _read(client, path, headers, app)
        assert first.status_code == 200
        assert LOT in first.get_data()
        assert not _standing(seen_first), seen_first
    before = _events(app, world)
    appended = _counted("appended")

    second, seen = _read(client, path, headers, app)
    assert second.status_code == 200
    assert second.get_data() == first.get_data()
    assert _standing(seen), seen
    assert _counted("appended") == appended + 1  # what operations see (/metrics)
    after = _events(app, world)
    assert len(after) == len(before) + 1
    assert _decided(after[-1]) == _decided(before[-1])
    assert (after[-1].decision, after[-1].rule) == ("permit", "family-doctor")
    assert after[-1].request_id != before[-1].request_id

    # Another entry of the same section, the same label: the same standing decision.
    other = _dose(client, world)
    third, seen = _read(client, other, headers, app)
    assert third.status_code == 200
    assert _standing(seen), seen
    assert str(_events(app, world)[-1].entry_id) == other.rsplit("/", 1)[1]


def test_the_patient_reading_their_own_record_has_one_too(app, client, world):
    path = _dose(client, world)
    headers = world.headers("patient")
    assert client.get(path, headers=headers).status_code == 200
    before = _events(app, world)
    answer, seen = _read(client, path, headers, app)
    assert answer.status_code == 200
    assert LOT in answer.get_data()
    assert _standing(seen), seen
    after = _events(app, world)
    assert _decided(after[-1]) == _decided(before[-1])
    assert after[-1].rule == "self"


def test_a_token_revoked_is_401_on_the_next_read_and_nothing_is_appended(app, client, world):
    path = _dose(client, world)
    headers = world.headers("doctor")
    _held(client, app, path, headers)
    _revoked_is_401_and_nothing_appended(app, client, world, path, headers)


def test_an_append_that_fails_answers_5xx_and_no_data(app, client, world):
    path = _dose(client, world)
    headers = world.headers("doctor")
    _held(client, app, path, headers)
    _refused_append_is_5xx_and_no_data(app, client, world, path, headers)
    again, seen = _read(client, path, headers, app)
    assert again.status_code == 200
    assert _standing(seen), seen


def test_a_consent_in_view_takes_the_read_back_to_the_policy(app, client, world):
    path = _dose(client, world)
    headers = world.headers("doctor")
    _held(client, app, path, headers)
    grant = client.post(
        f"/api/v1/citizens/{world.patient}/consents", headers=world.headers("patient"),
        json={"grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
              "sections": ["immunizations"], "access": "read"})
    assert grant.status_code == 201, grant.get_json()
    before = len(_events(app, world))
    not_run = _counted("not-run")
    answer, seen = _read(client, path, headers, app)
    assert answer.status_code == 200
    assert LOT in answer.get_data()
    assert not _standing(seen), seen
    assert _counted("not-run") == not_run + 1
    # The statement carried the standing decision's append, which did not run; the policy's
    # decision was appended on its own.
    assert seen[0].startswith("WITH phr_facts"), seen
    later = [s for s in seen[1:] if "INSERT INTO audit_events" in s]
    assert len(later) == 1, seen
    assert not later[0].startswith("WITH phr_facts"), seen
    events = _events(app, world)
    assert len(events) == before + 1
    assert (events[-1].decision, events[-1].rule) == ("permit", "family-doctor")


def test_a_new_family_doctor_ends_the_old_ones_standing_decision(app, client, world):
    from registry.services import assign_family_doctor

    path = _dose(client, world)
    headers = world.headers("doctor")
    _held(client, app, path, headers)
    with app.app_context():
        assign_family_doctor(session=db.session, citizen_id=world.patient,
                             practitioner_id=world.other_doctor_id, facility_id=world.hospital,
                             changed_by="test")
        db.session.commit()
    before = len(_events(app, world))
    answer = client.get(path, headers=headers)
    assert answer.status_code in (403, 404)
    assert LOT not in answer.get_data()
    events = _events(app, world)
    assert [e.decision for e in events[before:]] == ["deny"]


def test_a_changed_birth_date_takes_the_patients_read_back_to_the_policy(app, client, world):
    """A citizen's decisions depend on the person (their age decides some): compared by the
    birth date's ciphertext."""
    from registry.models import Citizen

    path = _dose(client, world)
    headers = world.headers("patient")
    assert client.get(path, headers=headers).status_code == 200
    answer, seen = _read(client, path, headers, app)
    assert _standing(seen), seen
    with app.app_context():
        citizen = db.session.get(Citizen, world.patient)
        citizen.date_of_birth = dt.date(1961, 3, 15)
        db.session.commit()
    answer, seen = _read(client, path, headers, app)
    assert answer.status_code == 200
    assert not _standing(seen), seen
    again, seen = _read(client, path, headers, app)
    assert again.status_code == 200
    assert _standing(seen), seen  # decided anew, standing again


def test_a_doctors_decision_stands_for_every_patient_registered_with_her(app, client, world):
    """A practitioner's decision rests on her relationship alone (consent.policy): read once
    for one patient, it stands for the next patient registered with her at the same
    facility, once the day's notice to that patient is out; not for a patient of another."""
    second = _second_patient(app, world)
    headers = world.headers("doctor")
    path = _dose(client, world)
    _held(client, app, path, headers)
    dose = client.post(f"/api/v1/citizens/{second}/immunizations", json=DOSE, headers=headers)
    assert dose.status_code == 201, dose.get_json()
    other = f"/api/v1/citizens/{second}/immunizations/{dose.get_json()['id']}"
    first, seen = _read(client, other, headers, app)  # the day's first: it tells her
    assert first.status_code == 200
    assert seen[0].startswith("WITH phr_facts"), seen  # carried; did not run (no digest yet)
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).where(
            AuditEvent.citizen_id == second, AuditEvent.action == "read")))
        db.session.rollback()
    assert len(events) == 1
    answer, seen = _read(client, other, headers, app)
    assert answer.status_code == 200
    assert LOT in answer.get_data()
    assert _standing(seen), seen
    last = _last_event(app, second)
    assert (last.decision, last.rule, last.actor_facility_id) == (
        "permit", "family-doctor", world.station)
    assert str(last.entry_id) == other.rsplit("/", 1)[1]
    # The stranger is no patient of hers: the statement finds another family doctor (none).
    stranger = client.get(f"/api/v1/citizens/{world.stranger}/immunizations/{uuid.uuid4()}",
                          headers=headers)
    assert stranger.status_code == 404


def test_an_entry_of_another_label_is_decided_by_the_policy(app, client, world):
    """The family doctor's standing decision predicts the label of what she read; a
    mental-health entry of the section is hidden from her: 404, one deny event, nothing
    appended for it by the standing statement."""
    from ehr.seed_records import _entry

    with app.app_context():
        secret = _entry(db.session, citizen_id=world.patient, section="conditions",
                        content={"icd10_code": "F32.1", "clinical_status": "active",
                                 "note": "STANDING-NOTE-41"},
                        author=world.other_doctor_id, facility=world.hospital,
                        sensitivity="mental-health").id
        db.session.commit()
    plain = client.post(f"/api/v1/citizens/{world.patient}/conditions",
                        headers=world.headers("doctor"),
                        json={"icd10_code": "I10", "clinical_status": "active",
                              "onset_date": "2022-05-01"})
    assert plain.status_code == 201, plain.get_json()
    base = f"/api/v1/citizens/{world.patient}/conditions"
    headers = world.headers("doctor")
    for _ in range(3):
        answer, seen = _read(client, f"{base}/{plain.get_json()['id']}", headers, app)
        assert answer.status_code == 200
    assert _standing(seen), seen
    before = len(_events(app, world))
    answer, seen = _read(client, f"{base}/{secret}", headers, app)
    assert answer.status_code == 404
    assert b"STANDING-NOTE-41" not in answer.get_data()
    assert seen[0].startswith("WITH phr_facts"), seen  # carried, and did not run
    events = _events(app, world)[before:]
    assert [(e.decision, e.sensitivity) for e in events] == [("deny", "mental-health")]


def test_a_standing_decision_that_differs_from_the_policy_answers_500_and_no_data(
        app, client, world):
    """The tripwire: were a remembered decision ever not the policy's on the facts found
    (here forged in the worker's memory), the read answers 500 and nothing of the entry."""
    import dataclasses

    from consent import standing

    path = _dose(client, world)
    headers = world.headers("doctor")
    _held(client, app, path, headers)
    decisions = app.extensions[standing._EXTENSION]
    with decisions._lock:
        key, held = next(iter(decisions._cache.items()))
        decisions._cache[key] = dataclasses.replace(
            held, decision=dataclasses.replace(held.decision, rule="forged"))
    app.config["PROPAGATE_EXCEPTIONS"] = False
    mismatches = _counted("mismatch")
    answer = client.get(path, headers=headers)
    assert answer.status_code == 500
    assert _counted("mismatch") == mismatches + 1
    assert answer.mimetype == "application/problem+json"
    assert LOT not in answer.get_data()


def test_a_standing_decision_ends_with_the_day(app):
    from consent.standing import _day_end

    late = dt.datetime(2026, 12, 7, 23, 59, tzinfo=VIETNAM_TZ)
    assert _day_end(late) == dt.datetime(2026, 12, 8, 0, 0, tzinfo=VIETNAM_TZ)
    # 07:30 in Vietnam is 00:30 UTC: the Vietnam day ends first.
    morning = dt.datetime(2026, 12, 7, 7, 30, tzinfo=VIETNAM_TZ)
    assert _day_end(morning) == dt.datetime(2026, 12, 8, 0, 0, tzinfo=VIETNAM_TZ)
    # 06:00 in Vietnam is 23:00 UTC the day before: the UTC day ends first.
    early = dt.datetime(2026, 12, 7, 6, 0, tzinfo=VIETNAM_TZ)
    assert _day_end(early) == dt.datetime(2026, 12, 7, 0, 0, tzinfo=dt.UTC)


def test_off_when_configured_so(app, client, world):
    app.config["STANDING_DECISION_SECONDS"] = 0
    path = _dose(client, world)
    headers = world.headers("doctor")
    for _ in range(3):
        answer, seen = _read(client, path, headers, app)
        assert answer.status_code == 200
        assert not _standing(seen), seen


def test_a_station_systems_repeated_read_is_one_statement_too(app, client, world):
    """A facility system's token (client credentials, its own probe): decided per person,
    the birth date compared."""
    today = dt.datetime.now(VIETNAM_TZ).date().isoformat()
    dose = client.post(f"/api/v1/citizens/{world.child}/immunizations",
                       json={**DOSE, "occurrence_date": today}, headers=world.headers("station"))
    assert dose.status_code == 201, dose.get_json()
    path = f"/api/v1/citizens/{world.child}/immunizations/{dose.get_json()['id']}"
    headers = world.headers("station")
    _held(client, app, path, headers)
    answer, seen = _read(client, path, headers, app)
    assert answer.status_code == 200
    assert LOT in answer.get_data()
    assert _standing(seen), seen
    last = _last_event(app, world.child)
    assert (last.decision, last.actor_role, last.action) == ("permit", "station", "read")
