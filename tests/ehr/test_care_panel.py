"""The family doctor's panel (`GET /api/v1/me/patients`): the people whose current registration
names her, paged, each with flags and their reasons; nobody else; each person one audit event;
a new registration appears there and in her inbox."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from consent.models import AuditEvent
from core.db import db
from registry.services import assign_family_doctor
from tests.ehr.samples import NOW_UTC, TODAY
from tests.support.auth import make_citizen

JSON = {"Content-Type": "application/json"}


def _register(app, citizen_id, world) -> None:
    with app.app_context():
        assign_family_doctor(session=db.session, citizen_id=citizen_id,
                             practitioner_id=world.doctor_id, facility_id=world.station,
                             changed_by="test")
        db.session.commit()


def _create(client, world, citizen_id, section, body) -> None:
    answer = client.post(f"/api/v1/citizens/{citizen_id}/{section}",
                         headers=world.headers("doctor", **JSON), json=body)
    assert answer.status_code == 201, answer.get_json()


def _panel_events(app) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.section == "care-panel")))


@pytest.fixture
def panel(app, client, world):
    """The world's doctor looks after: the patient (hypertension, recent blood pressure), an
    infant with no dose (overdue), a diabetic without a glucose, and an adult whose periodic
    examination has passed. The stranger and another doctor's patient are not hers."""
    infant = make_citizen(app, full_name="Lê Gia Bảo", date_of_birth=TODAY - dt.timedelta(days=120))
    diabetic = make_citizen(app, full_name="Đỗ Thị Hồng", sex="female",
                            date_of_birth=dt.date(1970, 2, 3))
    examined = make_citizen(app, full_name="Vũ Văn Hải", date_of_birth=dt.date(1980, 8, 9))
    theirs = make_citizen(app, full_name="Trịnh Văn Lâm", date_of_birth=dt.date(1975, 1, 1))
    for person in (infant, diabetic, examined):
        _register(app, person, world)
    with app.app_context():
        assign_family_doctor(session=db.session, citizen_id=theirs,
                             practitioner_id=world.other_doctor_id, facility_id=world.hospital,
                             changed_by="test")
        db.session.commit()
    _create(client, world, world.patient, "conditions",
            {"icd10_code": "I10", "clinical_status": "active", "onset_date": "2015-04-02"})
    _create(client, world, world.patient, "observations",
            {"kind": "blood-pressure", "systolic": 138, "diastolic": 85, "unit": "mm[Hg]",
             "effective_at": NOW_UTC})
    _create(client, world, diabetic, "conditions",
            {"icd10_code": "E11.9", "clinical_status": "active", "onset_date": "2019-04-02"})
    last_year = (TODAY - dt.timedelta(days=400)).isoformat()
    _create(client, world, examined, "examinations",
            {"exam_type": "periodic", "examined_on": last_year, "conclusion": "Loại II",
             "next_exam_due": (TODAY - dt.timedelta(days=35)).isoformat()})
    return {"infant": infant, "diabetic": diabetic, "examined": examined, "theirs": theirs}


def _page(client, world, **params):
    answer = client.get("/api/v1/me/patients", headers=world.headers("doctor"),
                        query_string=params)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_the_panel_lists_her_people_with_the_right_flags_and_nobody_else(app, client, world,
                                                                         panel):
    before = _panel_events(app)
    body = _page(client, world)
    people = {uuid.UUID(item["citizen_id"]): item for item in body["items"]}
    assert set(people) == {world.patient, panel["infant"], panel["diabetic"], panel["examined"]}
    assert body["next_cursor"] is None
    flags = {who: [f["code"] for f in people[who]["flags"]] for who in people}
    assert flags[world.patient] == []  # hypertension measured today
    assert flags[panel["infant"]] == ["vaccination-overdue"]
    assert flags[panel["diabetic"]] == ["measurement-missing"]
    assert flags[panel["examined"]] == ["periodic-exam-due"]
    assert people[panel["diabetic"]]["full_name"] == "Đỗ Thị Hồng"
    reason = people[panel["diabetic"]]["flags"][0]["reason"]
    assert "Đái tháo đường" in reason
    assert "HbA1c" in reason
    assert people[panel["infant"]]["flags"][0]["rule"].startswith("schedule:")
    # Each person shown is one audited decision.
    assert _panel_events(app) - before == 4
    # The rules cite their sources.
    assert all(rule["source"] and rule["confidence"] for rule in body["rules"])


def test_the_reasons_follow_the_language(app, client, world, panel):
    answer = client.get("/api/v1/me/patients", headers=world.headers("doctor",
                                                                      **{"Accept-Language": "en"}),
                        query_string={"flag": "measurement-missing"})
    assert answer.status_code == 200
    (item,) = answer.get_json()["items"]
    assert item["flags"][0]["reason"].startswith("Diabetes mellitus: no blood glucose or HbA1c")


def test_filter_by_flag_and_pages(app, client, world, panel):
    overdue = _page(client, world, flag="vaccination-overdue")["items"]
    assert [uuid.UUID(i["citizen_id"]) for i in overdue] == [panel["infant"]]
    seen, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        body = _page(client, world, **params)
        seen.extend(uuid.UUID(i["citizen_id"]) for i in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted({world.patient, *(panel[k] for k in ("infant", "diabetic",
                                                                 "examined"))})


def test_a_new_registration_appears_on_the_panel_and_in_her_inbox(app, client, world):
    assert {i["citizen_id"] for i in _page(client, world)["items"]} == {str(world.patient)}
    registered = client.put(f"/api/v1/citizens/{world.stranger}/family-doctor",
                            headers=world.headers("stranger", **JSON),
                            json={"practitioner_id": str(world.doctor_id),
                                  "facility_id": str(world.station)})
    assert registered.status_code == 200, registered.get_json()
    assert str(world.stranger) in {i["citizen_id"] for i in _page(client, world)["items"]}
    inbox = client.get("/api/v1/me/notifications", headers=world.headers("doctor"))
    assert inbox.status_code == 200
    assert "family-doctor-changed" in {n["trigger"] for n in inbox.get_json()["items"]}


def test_a_restricted_entry_flags_nothing(app, client, world):
    """A restricted entry stays out of the panel's selection, as out of every other view: a
    hypertension recorded under a restricted label would otherwise flag a missing blood
    pressure and tell the doctor that the entry exists."""
    from ehr.seed_records import _entry

    with app.app_context():
        _entry(db.session, citizen_id=world.patient, section="conditions",
               content={"icd10_code": "I10", "clinical_status": "active"},
               author=world.other_doctor_id, facility=world.hospital,
               sensitivity="mental-health")
        db.session.commit()
    (item,) = _page(client, world)["items"]
    assert item["flags"] == []


@pytest.mark.parametrize("who", ["patient", "station", "other_doctor"])
def test_only_a_practitioner_has_a_panel(app, client, world, who):
    answer = client.get("/api/v1/me/patients", headers=world.headers(who))
    if who == "other_doctor":
        assert answer.status_code == 200
        assert answer.get_json()["items"] == []
    else:
        assert answer.status_code == 403
        assert answer.headers["Content-Type"].startswith("application/problem+json")


def test_bad_parameters_are_problems(app, client, world):
    for params in ({"flag": "nope"}, {"colour": "red"}, {"limit": "x"}, {"cursor": "garbage"}):
        answer = client.get("/api/v1/me/patients", headers=world.headers("doctor"),
                            query_string=params)
        assert answer.status_code in (400, 422), params
        assert answer.headers["Content-Type"].startswith("application/problem+json")


def test_an_ended_membership_empties_the_panel(app, client, world):
    """The registration is with a doctor at a facility: it lapses with her membership."""
    from registry.models import PractitionerMembership

    with app.app_context():
        for membership in db.session.scalars(select(PractitionerMembership).where(
                PractitionerMembership.practitioner_id == world.doctor_id)):
            membership.ended_on = TODAY - dt.timedelta(days=1)
        db.session.commit()
    answer = client.get("/api/v1/me/patients", headers=world.headers("doctor"))
    assert answer.status_code == 200
    assert answer.get_json()["items"] == []


@pytest.mark.parametrize(("days_ago", "flagged"), [(10, False), (85, False), (120, True)])
def test_a_measurement_counts_within_its_interval(app, client, world, days_ago, flagged):
    """Diabetes: a glucose within the rule's three months satisfies it; an older one does not,
    and the reason says what is missing for how long."""
    _create(client, world, world.patient, "conditions",
            {"icd10_code": "E11.9", "clinical_status": "active", "onset_date": "2019-04-02"})
    measured = dt.datetime.combine(TODAY - dt.timedelta(days=days_ago), dt.time(2, 0),
                                   tzinfo=dt.UTC).isoformat()
    _create(client, world, world.patient, "observations",
            {"kind": "blood-glucose", "value": 7.1, "unit": "mmol/L", "effective_at": measured})
    (item,) = _page(client, world)["items"]
    codes = [flag["code"] for flag in item["flags"]]
    assert codes == (["measurement-missing"] if flagged else [])
    if flagged:
        assert "3 tháng" in item["flags"][0]["reason"]
