"""Standing decisions on section lists and summaries (consent.standing, PostgreSQL): a
reader's repeated list of one person's section (or summary) is one statement that loads the
facts, appends the read's audit event and selects the content within the scopes predicted from
those facts, the content joined only when the append ran. The same rules as for single reads
(tests/consent/test_standing_decisions.py): a revoked token is 401 with nothing appended, a
failed append is 5xx and no data, anything that changes the scope takes the read back to the
policy, a forged prediction answers 500, and a doctor's decision that stands for another
patient shows that patient's entries only."""

# ruff: noqa: F811  (the tests take the imported `world` fixture as an argument)
from __future__ import annotations

import dataclasses
import datetime as dt
from urllib.parse import quote

import pytest

from core.db import db
from tests.consent.test_standing_decisions import (
    DOSE,
    LOT,
    _counted,
    _decided,
    _events,
    _held,
    _last_event,
    _read,
    _refused_append_is_5xx_and_no_data,
    _revoked_is_401_and_nothing_appended,
    _second_patient,
    _standing,
)
from tests.ehr.conftest import world  # noqa: F401  (the record world fixture)


@pytest.fixture(autouse=True)
def _postgresql_only(app) -> None:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("standing decisions are PostgreSQL's (data-modifying CTEs)")


def _doses(client, world, citizen=None, count: int = 3) -> list[str]:
    citizen = citizen or world.patient
    ids = []
    for number in range(1, count + 1):
        answer = client.post(
            f"/api/v1/citizens/{citizen}/immunizations", headers=world.headers("doctor"),
            json={**DOSE, "dose_number": number, "occurrence_date": f"2024-0{number}-01"})
        assert answer.status_code == 201, answer.get_json()
        ids.append(answer.get_json()["id"])
    return ids


def _list(world, citizen=None) -> str:
    return f"/api/v1/citizens/{citizen or world.patient}/immunizations"


def _ids(answer) -> list[str]:
    return [item["id"] for item in answer.get_json()["items"]]


def test_a_repeated_list_is_one_statement_and_audited_as_the_policy_does(app, client, world):
    doses = _doses(client, world)
    path, headers = _list(world), world.headers("doctor")
    # The day's first read tells the patient and keeps no standing decision; the second
    # keeps one.
    for _ in range(2):
        first, seen = _read(client, path, headers, app)
        assert first.status_code == 200
        assert not _standing(seen), seen
    assert _ids(first) == doses[::-1]  # newest first
    before = _events(app, world)
    appended = _counted("appended")

    again, seen = _read(client, path, headers, app)
    assert again.status_code == 200
    assert _standing(seen), seen
    assert again.get_data() == first.get_data()
    assert _counted("appended") == appended + 1
    after = _events(app, world)
    assert len(after) == len(before) + 1
    assert _decided(after[-1]) == _decided(before[-1])
    assert (after[-1].decision, after[-1].rule, after[-1].entry_id) == (
        "permit", "family-doctor", None)


def test_pages_and_delta_sync_stand_too_and_give_what_the_policy_gives(app, client, world):
    doses = _doses(client, world)
    path, headers = _list(world), world.headers("doctor")
    since = quote((dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat())
    views = (f"{path}?limit=2", f"{path}?updated_since={since}",
             f"{path}?include_entered_in_error=true", f"{path}?limit=1&updated_since={since}")
    expected = {}
    for view in views:
        for _ in range(2):
            answer = client.get(view, headers=headers)
        expected[view] = answer.get_json()
    _held(client, app, path, headers)
    for view in views:
        answer, seen = _read(client, view, headers, app)
        assert answer.status_code == 200
        assert _standing(seen), (view, seen)
        assert answer.get_json() == expected[view], view
    # The next page, by its cursor: standing, and the rest of the list.
    first = client.get(f"{path}?limit=2", headers=headers).get_json()
    answer, seen = _read(client, f"{path}?limit=2&cursor={first['next_cursor']}", headers, app)
    assert _standing(seen), seen
    assert _ids(answer) == doses[:1]
    assert [item["id"] for item in first["items"]] == doses[:0:-1]


def test_a_token_revoked_is_401_on_the_next_list_and_nothing_is_appended(app, client, world):
    _doses(client, world, count=1)
    path, headers = _list(world), world.headers("doctor")
    _held(client, app, path, headers)
    _revoked_is_401_and_nothing_appended(app, client, world, path, headers)


def test_an_append_that_fails_answers_5xx_and_no_list(app, client, world):
    _doses(client, world, count=1)
    path, headers = _list(world), world.headers("doctor")
    _held(client, app, path, headers)
    _refused_append_is_5xx_and_no_data(app, client, world, path, headers)
    again, seen = _read(client, path, headers, app)
    assert again.status_code == 200
    assert _standing(seen), seen


def test_a_consent_in_view_takes_the_list_back_to_the_policy(app, client, world):
    doses = _doses(client, world, count=2)
    path, headers = _list(world), world.headers("doctor")
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
    assert _ids(answer) == doses[::-1]
    assert not _standing(seen), seen
    assert _counted("not-run") == not_run + 1
    # The standing statement selected no page (its append did not run); the grants were
    # loaded, and the page came with the policy's append, in the last statement.
    assert seen[0].startswith("WITH phr_facts"), seen
    appends = [s for s in seen[1:] if "INSERT INTO audit_events" in s]
    assert appends == [seen[-1]], seen
    assert "FROM record_entries" in seen[-1], seen
    events = _events(app, world)
    assert len(events) == before + 1
    assert (events[-1].decision, events[-1].rule) == ("permit", "family-doctor")


def test_a_new_family_doctor_ends_the_old_ones_standing_list(app, client, world):
    from registry.services import assign_family_doctor

    _doses(client, world, count=1)
    path, headers = _list(world), world.headers("doctor")
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
    assert [e.decision for e in _events(app, world)[before:]] == ["deny"]


def test_a_restricted_entry_never_joins_a_standing_list(app, client, world):
    """The scope predicted is the policy's: a mental-health diagnosis stays out of the family
    doctor's list of conditions, on the standing path as on the policy's."""
    from ehr.seed_records import _entry

    with app.app_context():
        _entry(db.session, citizen_id=world.patient, section="conditions",
               content={"icd10_code": "F32.1", "clinical_status": "active",
                        "note": "STANDING-NOTE-52"},
               author=world.other_doctor_id, facility=world.hospital,
               sensitivity="mental-health")
        db.session.commit()
    plain = client.post(f"/api/v1/citizens/{world.patient}/conditions",
                        headers=world.headers("doctor"),
                        json={"icd10_code": "I10", "clinical_status": "active",
                              "onset_date": "2022-05-01"})
    assert plain.status_code == 201, plain.get_json()
    path = f"/api/v1/citizens/{world.patient}/conditions"
    headers = world.headers("doctor")
    _held(client, app, path, headers)
    for view in (path, f"{path}?include_entered_in_error=true"):
        for _ in range(2):
            answer, seen = _read(client, view, headers, app)
        assert _standing(seen), seen
        assert _ids(answer) == [plain.get_json()["id"]]
        assert b"STANDING-NOTE-52" not in answer.get_data()


def test_a_doctors_list_decision_stands_for_her_other_patient_with_their_entries_only(
        app, client, world):
    """One decision, two people: the page the standing statement selects is the person's the
    request names, never the one the decision was first taken on."""
    second = _second_patient(app, world)
    headers = world.headers("doctor")
    mine = _doses(client, world, count=2)
    theirs = _doses(client, world, citizen=second, count=1)
    _held(client, app, _list(world), headers)
    assert client.get(_list(world, second), headers=headers).status_code == 200  # the notice
    answer, seen = _read(client, _list(world, second), headers, app)
    assert answer.status_code == 200
    assert _standing(seen), seen
    assert _ids(answer) == theirs
    assert not set(mine) & set(_ids(answer))
    last = _last_event(app, second)
    assert (last.decision, last.rule, last.section, last.actor_facility_id) == (
        "permit", "family-doctor", "immunizations", world.station)


def test_a_forged_list_decision_answers_500_and_no_data(app, client, world):
    """The tripwire: a remembered scope that is not the policy's on the facts found (here
    forged to show every label) answers 500, and nothing of the page leaves."""
    from consent import standing

    _doses(client, world, count=1)
    path, headers = _list(world), world.headers("doctor")
    _held(client, app, path, headers)
    decisions = app.extensions[standing._EXTENSION]
    with decisions._lock:
        key, held = next((k, v) for k, v in decisions._cache.items() if v.scopes is not None)
        (section, scope), = held.scopes
        wider = dataclasses.replace(scope, clauses=tuple(
            dataclasses.replace(c, labels=frozenset({*c.labels, "mental-health"}))
            for c in scope.clauses))
        decisions._cache[key] = dataclasses.replace(held, scopes=((section, wider),))
    app.config["PROPAGATE_EXCEPTIONS"] = False
    mismatches = _counted("mismatch")
    answer = client.get(path, headers=headers)
    assert answer.status_code == 500
    assert _counted("mismatch") == mismatches + 1
    assert answer.mimetype == "application/problem+json"
    assert LOT not in answer.get_data()


# --- summaries ------------------------------------------------------------------------------


def _summary(world, citizen=None) -> str:
    return f"/api/v1/citizens/{citizen or world.patient}/summary"


def test_a_repeated_summary_is_one_statement_and_audited_as_the_policy_does(app, client, world):
    condition = client.post(f"/api/v1/citizens/{world.patient}/conditions",
                            headers=world.headers("doctor"),
                            json={"icd10_code": "I10", "clinical_status": "active",
                                  "onset_date": "2022-05-01"})
    assert condition.status_code == 201, condition.get_json()
    _doses(client, world, count=2)
    path, headers = _summary(world), world.headers("doctor")
    for _ in range(2):
        first, seen = _read(client, path, headers, app)
        assert first.status_code == 200
        assert not _standing(seen), seen
    before = _events(app, world)
    again, seen = _read(client, path, headers, app)
    assert again.status_code == 200
    assert _standing(seen), seen
    assert again.get_json() == first.get_json()
    assert [c["id"] for c in again.get_json()["active_conditions"]] == [
        condition.get_json()["id"]]
    assert again.get_json()["vaccination"]["counts"]
    after = _events(app, world)
    assert len(after) == len(before) + 1
    assert _decided(after[-1]) == _decided(before[-1])
    assert (after[-1].section, after[-1].decision, after[-1].rule) == (
        "summary", "permit", "family-doctor")
    # The IPS document: a summary of other sections, its own standing decision.
    ips = f"/fhir/R4/Patient/{world.patient}/$summary"
    for _ in range(2):
        document = client.get(ips, headers=headers)
    answer, seen = _read(client, ips, headers, app)
    assert answer.status_code == 200
    assert _standing(seen[-1:]), seen  # after the FHIR route's own token lookup
    assert len(answer.get_json()["entry"]) == len(document.get_json()["entry"])


def test_a_summary_decision_stands_for_her_other_patient_with_their_entries_only(
        app, client, world):
    second = _second_patient(app, world)
    headers = world.headers("doctor")
    mine = client.post(f"/api/v1/citizens/{world.patient}/conditions", headers=headers,
                       json={"icd10_code": "I10", "clinical_status": "active",
                             "onset_date": "2022-05-01"}).get_json()["id"]
    _held(client, app, _summary(world), headers)
    assert client.get(_summary(world, second), headers=headers).status_code == 200
    answer, seen = _read(client, _summary(world, second), headers, app)
    assert answer.status_code == 200
    assert _standing(seen), seen
    body = answer.get_json()
    assert body["citizen"]["id"] == str(second)
    assert body["active_conditions"] == []
    assert mine not in answer.get_data(as_text=True)


def test_a_revoked_token_and_a_refused_append_leave_no_summary(app, client, world):
    _doses(client, world, count=1)
    path, headers = _summary(world), world.headers("doctor")
    _held(client, app, path, headers)
    refused = _refused_append_is_5xx_and_no_data(app, client, world, path, headers)
    assert not {"citizen", "vaccination"} & set(refused.get_json())
    _revoked_is_401_and_nothing_appended(app, client, world, path, headers)


def test_a_forged_summary_decision_answers_500_and_no_data(app, client, world):
    from consent import standing

    _doses(client, world, count=1)
    path, headers = _summary(world), world.headers("doctor")
    _held(client, app, path, headers)
    decisions = app.extensions[standing._EXTENSION]
    with decisions._lock:
        key, held = next((k, v) for k, v in decisions._cache.items()
                         if v.scopes is not None and len(v.scopes) > 1)
        decisions._cache[key] = dataclasses.replace(
            held, decision=dataclasses.replace(held.decision, rule="forged"))
    app.config["PROPAGATE_EXCEPTIONS"] = False
    mismatches = _counted("mismatch")
    answer = client.get(path, headers=headers)
    assert answer.status_code == 500
    assert _counted("mismatch") == mismatches + 1
    assert answer.mimetype == "application/problem+json"
    assert set(answer.get_json()) >= {"type", "title", "status"}
    assert not {"citizen", "vaccination", "active_conditions"} & set(answer.get_json())


def test_a_view_statement_that_returns_another_persons_entries_answers_500_and_no_data(
        app, client, world, monkeypatch, caplog):
    """The last guard: whatever goes wrong in a standing view's statement (a statement built
    wrong, as a thread race once did: core/sql_threads.py), rows of anyone but the person the
    request names are never shown. Here the statement is forged to select another patient's
    entries: 500, and neither person's entries leave."""
    from sqlalchemy import select

    from consent import pdp
    from ehr.record_models import RecordEntry

    second = _second_patient(app, world)
    headers = world.headers("doctor")
    mine = _doses(client, world, count=1)
    theirs = _doses(client, world, citizen=second, count=1)
    _held(client, app, _list(world), headers)

    build = pdp._carrying_standing_content

    def forged(query, probe, content, digest, entities):
        other = select(RecordEntry).where(RecordEntry.citizen_id == second,
                                          RecordEntry.section == "immunizations")
        return build(query, probe, dataclasses.replace(content, query=other), digest, entities)

    monkeypatch.setattr(pdp, "_FACTS_STATEMENTS", {})
    monkeypatch.setattr(pdp, "_carrying_standing_content", forged)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    answer = client.get(_list(world), headers=headers)
    assert answer.status_code == 500
    assert answer.mimetype == "application/problem+json"
    body = answer.get_data(as_text=True)
    assert not any(entry in body for entry in (*mine, *theirs))
    assert LOT not in answer.get_data()
    assert [record for record in caplog.records if record.getMessage() == "unhandled exception"
            and "WrongPersonRows" in str(record.error)]
