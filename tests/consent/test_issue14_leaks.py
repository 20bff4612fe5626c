"""Issue 14: the leaks found, over HTTP with real tokens, each one closed.

1. Knowing an infant's health ID and birth date made a stranger the infant's guardian.
2. Station staff of any facility acted on the registry of people of another commune.
4. A parent saw and revoked their teen's consent naming a restricted category.
8. A teen's access log called an unrelated citizen who was refused "người giám hộ".
9. A caller with no relationship told an existing person from a missing one (403 vs 404).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

import pytest

from consent.models import Guardianship
from core.db import db, utcnow
from registry.models import Facility
from registry.reference.health_id import make_health_id
from registry.services import assign_family_doctor, create_facility, register_citizen
from tests.support.auth import (
    bearer,
    facility_code,
    health_id_of,
    make_citizen,
    make_facility,
    make_practitioner,
    token_for,
)

JSON = {"Content-Type": "application/json"}
TODAY = dt.date.today()  # noqa: DTZ011


def commune_station(app, commune: str) -> uuid.UUID:
    with app.app_context():
        facility = create_facility(
            session=db.session, code=facility_code(),
            kind="commune-health-station", name=f"Trạm Y tế xã {commune}",
            province_code="27", district_code="260", commune_code=commune)
        db.session.commit()
        return facility.id


def resident(app, *, born: dt.date, commune: str = "09334", name: str = "Nguyễn Minh Khôi",
             sex: str = "male", registered_by: uuid.UUID | None = None) -> uuid.UUID:
    """A citizen whose address is in `commune` (Bắc Ninh province 27)."""
    with app.app_context():
        health_id = make_health_id(province_code="027", date_of_birth=born, sex=sex,
                                   serial=secrets.randbelow(1_000_000))
        person = register_citizen(
            session=db.session, health_id=health_id, full_name=name, date_of_birth=born,
            sex=sex, address={"province_code": "27", "commune_code": commune,
                              "line": "Thôn Duệ Đông"},
            registered_by_facility_id=registered_by)
        db.session.commit()
        return person.id


def guardian_of(app, guardian: uuid.UUID, child: uuid.UUID) -> uuid.UUID:
    with app.app_context():
        row = Guardianship(
            id=uuid.uuid4(), guardian_citizen_id=guardian, dependant_citizen_id=child,
            kind="minor", relationship="mother", categories=[],
            valid_from=utcnow() - dt.timedelta(days=30), created_via="station")
        db.session.add(row)
        db.session.commit()
        return row.id


def years_ago(years: int, days: int = 30) -> dt.date:
    return TODAY.replace(year=TODAY.year - years) - dt.timedelta(days=days)


@pytest.fixture
def family(app, client):
    """An infant and a 13-year-old of commune 09334, their mother (a guardian in force)."""
    station = commune_station(app, "09334")
    infant = resident(app, born=TODAY - dt.timedelta(days=150), registered_by=station)
    teen = resident(app, born=years_ago(13), name="Nguyễn Thu Hà", sex="female")
    mother = make_citizen(app, full_name="Đỗ Thị Lan Anh", sex="female",
                          date_of_birth=dt.date(1985, 11, 2))
    guardianships = {who: guardian_of(app, mother, child)
                     for who, child in (("infant", infant), ("teen", teen))}
    return {
        "station": station, "infant": infant, "teen": teen, "mother": mother,
        "guardianships": guardianships,
        "mother_token": token_for(client, app, citizen=mother),
        "teen_token": token_for(client, app, citizen=teen),
        "stranger_token": token_for(client, app),
    }


# 1 -----------------------------------------------------------------------------------------


def test_a_health_id_and_birth_date_alone_open_nothing_and_the_mother_is_told(app, client,
                                                                             family):
    infant, stranger = family["infant"], bearer(family["stranger_token"])
    claim = client.post("/api/v1/me/dependants", headers={**stranger, **JSON}, json={
        "health_id": health_id_of(app, infant),
        "date_of_birth": (TODAY - dt.timedelta(days=150)).isoformat(),
        "relationship": "mother"})
    assert claim.status_code == 202, claim.get_json()
    assert claim.get_json()["status"] == "pending"
    for path in ("/summary", "", "/immunizations", "/guardians"):
        assert client.get(f"/api/v1/citizens/{infant}{path}",
                          headers=stranger).status_code == 404, path
    assert client.get("/api/v1/me", headers=stranger).get_json()["dependants"] == []
    inbox = client.get("/api/v1/me/notifications", headers=bearer(family["mother_token"]))
    told = [n for n in inbox.get_json()["items"] if n["trigger"] == "guardian-claimed"]
    assert [n["subject_citizen_id"] for n in told] == [str(infant)]


# 2 -----------------------------------------------------------------------------------------


def test_station_staff_of_another_commune_cannot_touch_the_registry(app, client, family):
    elsewhere = commune_station(app, "09340")
    staff = bearer(token_for(client, app, role="station", facility=elsewhere))
    teen, base = family["teen"], f"/api/v1/citizens/{family['teen']}"
    doctor = make_practitioner(app, facility=elsewhere, full_name="Lê Văn Bình")
    doctor_headers = bearer(token_for(client, app, role="practitioner", practitioner=doctor))
    adult = make_citizen(app, full_name="Trịnh Văn Tâm")
    changed = client.put(base + "/family-doctor", headers={**staff, **JSON},
                         json={"practitioner_id": str(doctor), "facility_id": str(elsewhere)})
    assert changed.status_code == 404, changed.get_json()
    assert client.get(base + "/summary", headers=doctor_headers).status_code == 404
    added = client.post(base + "/guardians", headers={**staff, **JSON}, json={
        "guardian": {"citizen_id": str(adult)}, "relationship": "relative"})
    assert added.status_code == 404, added.get_json()
    ended = client.delete(f"{base}/guardians/{family['guardianships']['teen']}",
                          headers=staff)
    assert ended.status_code == 404, ended.get_json()
    corrected = client.patch(base, headers={**staff, **JSON, "If-Match": '"x"'},
                             json={"full_name": "Tên Khác"})
    assert corrected.status_code == 404, corrected.get_json()
    with app.app_context():
        assert db.session.get(Guardianship, family["guardianships"]["teen"]).revoked_at is None
    # Looking the teen up and reading immunizations stay every station's right.
    looked = client.post("/api/v1/citizens/lookup", headers={**staff, **JSON},
                         json={"health_id": health_id_of(app, teen)})
    assert looked.status_code == 200
    assert client.get(base + "/immunizations", headers=staff).status_code == 200


# 4 -----------------------------------------------------------------------------------------


def test_a_teens_consent_naming_a_restricted_category_is_theirs_alone(app, client, family):
    teen, base = family["teen"], f"/api/v1/citizens/{family['teen']}"
    hospital = make_facility(app, kind="hospital")
    granted = client.post(base + "/consents", headers={**bearer(family["teen_token"]), **JSON},
                          json={"grantee": {"type": "facility", "id": str(hospital)},
                                "sections": ["conditions"], "categories": ["mental-health"]})
    assert granted.status_code == 201, granted.get_json()
    consent_id = granted.get_json()["id"]
    mother = bearer(family["mother_token"])
    listed = client.get(base + "/consents", headers=mother)
    assert listed.status_code == 200
    assert [c["id"] for c in listed.get_json()["items"]] == []
    revoked = client.delete(f"{base}/consents/{consent_id}", headers=mother)
    assert revoked.status_code == 404
    mine = client.get(base + "/consents", headers=bearer(family["teen_token"]))
    assert [(c["id"], c["status"]) for c in mine.get_json()["items"]] == [(consent_id, "active")]
    assert teen


# 8 -----------------------------------------------------------------------------------------


def test_the_access_log_never_calls_an_unrelated_citizen_a_guardian(app, client, family):
    teen, stranger = family["teen"], bearer(family["stranger_token"])
    client.get(f"/api/v1/citizens/{teen}/summary", headers=stranger)
    client.post("/api/v1/me/dependants", headers={**stranger, **JSON}, json={
        "health_id": health_id_of(app, teen), "date_of_birth": "2000-01-01",
        "relationship": "mother"})
    log = client.get(f"/api/v1/citizens/{teen}/access-log",
                     headers=bearer(family["teen_token"])).get_json()["items"]
    theirs = [e for e in log if e["actor"]["name"] != "Đỗ Thị Lan Anh"
              and e["actor"]["kind"] in ("citizen", "guardian")]
    assert len(theirs) == 2
    for entry in theirs:
        assert entry["decision"] == "deny"
        assert entry["actor"]["kind"] == "citizen", entry
        assert "(người giám hộ)" not in entry["text"], entry["text"]


# 9 -----------------------------------------------------------------------------------------

CITIZEN_READS = ("", "/summary", "/immunization-schedule", "/export", "/family-doctor",
                 "/allergies", f"/allergies/{uuid.uuid4()}", "/consents", "/access-requests",
                 "/access-log", "/guardians")


def test_no_relationship_answers_as_for_a_missing_person(app, client, family):
    station = family["station"]
    hospital = make_facility(app, kind="hospital")
    family_doctor = make_practitioner(app, facility=station, full_name="Nguyễn Thị Hương")
    other_doctor = make_practitioner(app, facility=hospital, full_name="Trần Văn Đức")
    adult = resident(app, born=dt.date(1961, 3, 14), name="Phạm Văn Thắng", commune="09340")
    with app.app_context():
        assign_family_doctor(session=db.session, citizen_id=adult,
                             practitioner_id=family_doctor, facility_id=station,
                             changed_by="test")
        db.session.commit()
        assert db.session.get(Facility, station).commune_code == "09334"
    callers = {
        "stranger": bearer(family["stranger_token"]),
        "other-doctor": bearer(token_for(client, app, role="practitioner",
                                         practitioner=other_doctor)),
        "station-of-another-commune": bearer(token_for(client, app, role="station",
                                                       facility=station)),
    }
    missing = uuid.uuid4()
    for who, headers in callers.items():
        for path in CITIZEN_READS:
            if who.startswith("station") and path == "/immunization-schedule":
                continue  # a station's public-health right, for everyone
            there = client.get(f"/api/v1/citizens/{adult}{path}", headers=headers)
            gone = client.get(f"/api/v1/citizens/{missing}{path}", headers=headers)
            assert (there.status_code, gone.status_code) == (404, 404), (who, path)
            assert there.get_json()["type"] == gone.get_json()["type"]
            assert there.get_json()["title"] == gone.get_json()["title"]
    # Routes that exist to ask for access keep working for a practitioner without one.
    doctor = callers["other-doctor"]
    asked = client.post(f"/api/v1/citizens/{adult}/access-requests", headers={**doctor, **JSON},
                        json={"sections": ["allergies"], "reason": "Khám chuyên khoa"})
    assert asked.status_code == 201, asked.get_json()
    opened = client.post(f"/api/v1/citizens/{adult}/break-glass", headers={**doctor, **JSON},
                         json={"reason": "Bệnh nhân bất tỉnh tại cấp cứu"})
    assert opened.status_code == 201, opened.get_json()
    # A caller with a relationship who is denied one part still hears 403 for it.
    family_headers = bearer(token_for(client, app, role="practitioner",
                                      practitioner=family_doctor))
    for path in ("/consents", "/access-log", "/export"):
        assert client.get(f"/api/v1/citizens/{adult}{path}",
                          headers=family_headers).status_code == 403, path
    assert client.get(f"/api/v1/citizens/{adult}/allergies",
                      headers=family_headers).status_code == 200
