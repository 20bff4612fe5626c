"""Registry, summary, immunization schedule, family doctor, export and the vaccine catalogue."""

from __future__ import annotations

import datetime as dt
import uuid

from core.db import db
from core.i18n import translate
from registry.reference.health_id import make_health_id
from tests.ehr.conftest import STATION, count_entries
from tests.ehr.samples import SAMPLES, STATION_ONLY_FIELDS, TODAY
from tests.support.auth import health_id_of, station_client, station_token


def _dose(child_birth: dt.date, days: int, code: str, n: int = 1) -> dict:
    return {"vaccine_code": code, "dose_number": n,
            "occurrence_date": (child_birth + dt.timedelta(days=days)).isoformat(),
            "lot_number": f"LOT-{code}-{days}"}


def test_schedule_counts_on_time_late_missing_and_too_early(client, world):
    birth = TODAY - dt.timedelta(days=150)
    url = f"/api/v1/citizens/{world.child}/immunizations"
    station = world.headers("station")
    for body in (
        _dose(birth, 0, "HEPB"),           # on time (within 24 h)
        _dose(birth, 45, "BCG"),           # late: after the first month, still counts
        _dose(birth, 30, "DTP-HEPB-HIB"),  # too early: before 6 weeks, does not count
        _dose(birth, 62, "ROTAVIN-M1"),    # on time at 2 months
    ):
        assert client.post(url, json=body, headers=station).status_code == 201
    response = client.get(f"/api/v1/citizens/{world.child}/immunization-schedule",
                          headers=world.headers("station", **{"Accept-Language": "en"}))
    assert response.status_code == 200, response.get_json()
    doses = {d["item_id"]: d for d in response.get_json()["doses"]}
    assert doses["hepb-birth"]["status"] == "completed"
    assert doses["bcg"]["status"] == "completed"
    assert doses["bcg"]["completed_date"] == (birth + dt.timedelta(days=45)).isoformat()
    assert doses["dtp-1"]["status"] == "overdue"  # the early dose did not count
    assert [n["reason"] for n in doses["dtp-1"]["not_counted"]] == ["before-minimum-age"]
    assert doses["opv-1"]["status"] == "overdue"  # missing
    assert doses["rota-1"]["status"] == "completed"
    assert doses["measles-1"]["status"] == "upcoming"
    next_due = response.get_json()["next_due"]
    assert next_due["status"] == "overdue"
    assert doses["dtp-1"]["status_label"] == "Overdue"


def test_schedule_ignores_entered_in_error_doses(client, world):
    birth = TODAY - dt.timedelta(days=150)
    url = f"/api/v1/citizens/{world.child}/immunizations"
    created = client.post(url, json=_dose(birth, 0, "HEPB"), headers=world.headers("station"))
    before = client.get(f"/api/v1/citizens/{world.child}/immunization-schedule",
                        headers=world.headers("station")).get_json()
    assert {d["item_id"]: d["status"] for d in before["doses"]}["hepb-birth"] == "completed"
    retracted = client.post(f"{url}/{created.get_json()['id']}/entered-in-error",
                            json={"reason": "Nhập nhầm trẻ"}, headers=world.headers("station"))
    assert retracted.status_code == 200  # a station retracts what its facility recorded
    after = client.get(f"/api/v1/citizens/{world.child}/immunization-schedule",
                       headers=world.headers("station")).get_json()
    assert {d["item_id"]: d["status"] for d in after["doses"]}["hepb-birth"] != "completed"
    other_station = station_token(
        client, client.application,
        oauth_client=station_client(client.application, scopes=STATION)[0])
    foreign = client.post(f"{url}/{created.get_json()['id']}/entered-in-error",
                          json={"reason": "x"}, headers=other_station.headers)
    assert foreign.status_code == 404


def test_station_registers_a_newborn_and_finds_them(app, client, world):
    birth = TODAY - dt.timedelta(days=1)
    health_id = make_health_id(province_code="027", date_of_birth=birth, sex="female",
                               serial=31337)
    body = {"health_id": health_id, "full_name": "Lê Ngọc Hân",
            "date_of_birth": birth.isoformat(), "sex": "female",
            "address": {"province_code": "27", "district_code": "260",
                        "commune_code": "09334", "line": "Thôn Đông"}}
    created = client.post("/api/v1/citizens", json=body, headers=world.headers("station"))
    assert created.status_code == 201, created.get_json()
    citizen_id = created.get_json()["id"]
    again = client.post("/api/v1/citizens", json=body, headers=world.headers("station"))
    assert again.status_code == 409
    found = client.post("/api/v1/citizens/lookup", json={"health_id": health_id},
                        headers=world.headers("station"))
    assert found.status_code == 200
    assert found.get_json()["id"] == citizen_id
    assert found.get_json()["full_name"] == "Lê Ngọc Hân"
    assert "phone" not in found.get_json()
    missing = client.post("/api/v1/citizens/lookup", json={"health_id": "001190000000"},
                          headers=world.headers("station"))
    assert missing.status_code == 404
    dose = client.post(f"/api/v1/citizens/{citizen_id}/immunizations",
                       json=_dose(birth, 0, "HEPB"), headers=world.headers("station"))
    assert dose.status_code == 201, dose.get_json()


def test_registration_validates_the_health_id(client, world):
    body = {"health_id": "099190012345", "full_name": "Lê Văn A", "date_of_birth": "1990-01-01",
            "sex": "male"}
    response = client.post("/api/v1/citizens", json=body,
                           headers=world.headers("station", **{"Accept-Language": "en"}))
    assert response.status_code == 422
    assert "health_id" in response.get_json()["errors"]


def test_health_id_never_travels_in_a_url(client, world):
    health_id = health_id_of(client.application, world.patient)
    assert client.get(f"/api/v1/citizens/{health_id}",
                      headers=world.headers("station")).status_code == 404
    assert client.get("/api/v1/citizens/lookup?health_id=" + health_id,
                      headers=world.headers("station")).status_code in (404, 405)


def test_citizen_reads_and_corrects_contact_details(client, world):
    me = client.get(f"/api/v1/citizens/{world.patient}", headers=world.headers("patient"))
    assert me.status_code == 200
    assert me.get_json()["full_name"] == "Phạm Văn Thắng"
    etag = me.headers["ETag"]
    no_match = client.patch(f"/api/v1/citizens/{world.patient}", json={"phone": "0912345678"},
                            headers=world.headers("patient"))
    assert no_match.status_code == 428
    changed = client.patch(f"/api/v1/citizens/{world.patient}", json={"phone": "0912 345 678"},
                           headers=world.headers("patient", **{"If-Match": etag}))
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["phone"] == "+84912345678"
    _identity_fields_are_refused(client, world, changed)


def _identity_fields_are_refused(client, world, current) -> None:
    """Each identity field (alone or beside a contact detail) is 422 field-station-only for
    the citizen, in vi and en, and nothing of the request is applied."""
    url = f"/api/v1/citizens/{world.patient}"
    if_match = {"If-Match": current.headers["ETag"]}
    for name, value in STATION_ONLY_FIELDS.items():
        for body in ({name: value}, {name: value, "email": "thang@example.vn"}):
            refused = client.patch(url, json=body, headers=world.headers("patient", **if_match))
            assert refused.status_code == 422, (name, refused.get_json())
            assert refused.get_json()["errors"] == {
                name: [translate("record.field-station-only", "vi")]}
            english = client.patch(url, json=body, headers=world.headers(
                "patient", **if_match, **{"Accept-Language": "en"}))
            assert english.get_json()["errors"] == {
                name: [translate("record.field-station-only", "en")]}
    after = client.get(url, headers=world.headers("patient"))
    assert after.headers["ETag"] == current.headers["ETag"]
    assert after.get_json() == current.get_json()


def test_no_citizen_reaches_another(client, world):
    # Not even whether the other exists: the answer is the one a missing person gets.
    for path in ("", "/summary", "/allergies", "/immunization-schedule", "/export",
                 "/family-doctor"):
        response = client.get(f"/api/v1/citizens/{world.patient}{path}",
                              headers=world.headers("stranger"))
        assert response.status_code == 404, (path, response.get_json())
        assert "Thắng" not in response.get_data(as_text=True)


def test_summary_in_one_call(client, world):
    doctor = world.headers("doctor")
    base = f"/api/v1/citizens/{world.patient}"
    client.post(base + "/allergies", json=SAMPLES["allergies"][0], headers=doctor)
    client.post(base + "/conditions", json=SAMPLES["conditions"][0], headers=doctor)
    client.post(base + "/medications", json=SAMPLES["medications"][0], headers=doctor)
    client.post(base + "/observations", json=SAMPLES["observations"][0], headers=doctor)
    resolved = dict(SAMPLES["conditions"][0], icd10_code="J45.9", clinical_status="resolved")
    client.post(base + "/conditions", json=resolved, headers=doctor)
    response = client.get(base + "/summary", headers=world.headers("patient"))
    assert response.status_code == 200, response.get_json()
    summary = response.get_json()
    assert summary["citizen"]["full_name"] == "Phạm Văn Thắng"
    assert summary["family_doctor"]["name"] == "Nguyễn Thị Hương"
    assert [a["data"]["substance"] for a in summary["allergies"]] == ["Penicillin"]
    assert [c["data"]["icd10_code"] for c in summary["active_conditions"]] == ["I10"]
    assert len(summary["current_medications"]) == 1
    assert summary["latest_vitals"][0]["data"]["systolic"] == 142
    assert summary["vaccination"] is not None
    badge = client.get("/api/v1/me/notifications/unread-count", headers=world.headers("patient"))
    assert summary["unread_notifications"] == badge.get_json()["unread_count"]
    revalidate = {"If-None-Match": response.headers["ETag"]}
    cached = client.get(base + "/summary", headers=world.headers("patient", **revalidate))
    assert cached.status_code == 304
    # The family doctor sees the same record, but not the patient's inbox.
    seen_by_doctor = client.get(base + "/summary", headers=doctor).get_json()
    assert seen_by_doctor["unread_notifications"] is None
    for part in ("allergies", "active_conditions", "current_medications", "latest_vitals"):
        assert seen_by_doctor[part] == summary[part], part


def test_family_doctor_registration_keeps_history(client, world):
    url = f"/api/v1/citizens/{world.stranger}/family-doctor"
    assert client.get(url, headers=world.headers("stranger")).get_json()["current"] is None
    put = client.put(url, json={"practitioner_id": str(world.doctor_id),
                                "facility_id": str(world.station)},
                     headers=world.headers("stranger"))
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["current"]["name"] == "Nguyễn Thị Hương"
    wrong = client.put(url, json={"practitioner_id": str(world.doctor_id),
                                  "facility_id": str(world.hospital)},
                       headers=world.headers("stranger"))
    assert wrong.status_code == 422
    moved = client.put(url, json={"practitioner_id": str(world.other_doctor_id),
                                  "facility_id": str(world.hospital)},
                       headers=world.headers("stranger"))
    assert moved.status_code == 200
    history = moved.get_json()["history"]
    assert len(history) == 2
    assert history[1]["ended_at"] is not None
    # The new family doctor can now read the record; the old one is no one to them any more.
    assert client.get(f"/api/v1/citizens/{world.stranger}/allergies",
                      headers=world.headers("other_doctor")).status_code == 200
    assert client.get(f"/api/v1/citizens/{world.stranger}/allergies",
                      headers=world.headers("doctor")).status_code == 404


def test_export_holds_everything_about_the_person(app, client, world):
    doctor = world.headers("doctor")
    url = f"/api/v1/citizens/{world.patient}/allergies"
    created = client.post(url, json=SAMPLES["allergies"][0], headers=doctor)
    client.patch(f"{url}/{created.get_json()['id']}", json={"severity": "mild"},
                 headers={**doctor, "If-Match": created.headers["ETag"]})
    export = client.get(f"/api/v1/citizens/{world.patient}/export",
                        headers=world.headers("patient"))
    assert export.status_code == 200
    body = export.get_json()
    assert body["citizen"]["health_id"] == health_id_of(app, world.patient)
    allergies = body["sections"]["allergies"]
    assert allergies[0]["data"]["severity"] == "mild"
    assert allergies[0]["earlier_versions"][0]["data"]["severity"] == "severe"
    assert count_entries(app, world.patient) == 1
    assert client.get(f"/api/v1/citizens/{world.patient}/export",
                      headers=world.headers("doctor")).status_code == 403


def test_vaccine_catalogue(client, world):
    response = client.get("/api/v1/vaccines", headers=world.headers("stranger",
                                                                     **{"Accept-Language": "en"}))
    assert response.status_code == 200
    items = {v["code"]: v for v in response.get_json()["items"]}
    assert set(items["DTP-HEPB-HIB"]["antigens"]) >= {"diphtheria", "pertussis", "tetanus",
                                                       "hepb", "hib"}
    assert items["BCG"]["in_national_programme"] is True
    assert response.get_json()["source"]


def test_unknown_citizen_is_404(client, world):
    response = client.get(f"/api/v1/citizens/{uuid.uuid4()}/allergies",
                          headers=world.headers("doctor"))
    assert response.status_code == 404


def test_lookup_does_not_reveal_which_numbers_exist_to_those_who_may_not_look(client, world):
    known = health_id_of(client.application, world.patient)
    answers = []
    for health_id in (known, "001190000000"):
        response = client.post("/api/v1/citizens/lookup", json={"health_id": health_id},
                               headers=world.headers("stranger"))
        assert response.status_code in (403, 404)
        answers.append((response.status_code, response.get_json()["type"]))
    assert answers[0] == answers[1]  # a refusal, the same whether the number exists or not


def test_a_retried_registration_replays_its_first_answer(client, world):
    birth = TODAY - dt.timedelta(days=2)
    body = {"health_id": make_health_id(province_code="027", date_of_birth=birth, sex="male",
                                        serial=424242),
            "full_name": "Trịnh Gia Bảo", "date_of_birth": birth.isoformat(), "sex": "male"}
    headers = world.headers("station", **{"Idempotency-Key": "newborn-reg-000001"})
    first = client.post("/api/v1/citizens", json=body, headers=headers)
    again = client.post("/api/v1/citizens", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]


def test_an_adult_is_not_nagged_with_childhood_doses(client, world):
    response = client.get(f"/api/v1/citizens/{world.patient}/immunization-schedule",
                          headers=world.headers("patient"))
    assert response.status_code == 200
    assert response.get_json()["next_due"] is None
    assert response.get_json()["counts"].get("overdue", 0) == 0


def test_date_of_birth_change_must_agree_with_the_health_id(client, world, vaccinator):
    """Only the citizen (and a guardian, who acts as the citizen) and station staff hold
    `demographics` update in consent/policy.py; the citizen may change contact details only,
    so a date of birth from them is refused before the health-ID check, agreeing or not."""
    url = f"/api/v1/citizens/{world.patient}"
    before = client.get(url, headers=world.headers("patient"))
    if_match = {"If-Match": before.headers["ETag"]}
    for date_of_birth in ("1999-01-01", "1961-03-15"):  # another year; the same year
        refused = client.patch(url, json={"date_of_birth": date_of_birth},
                               headers=world.headers("patient", **if_match))
        assert refused.status_code == 422
        assert refused.get_json()["errors"] == {
            "date_of_birth": [translate("record.field-station-only", "vi")]}
    # The family doctor reads demographics but may not change them; the station's system
    # token holds no Patient update scope at all.
    for who, problem in (("doctor", "section-forbidden"), ("station", "insufficient-scope")):
        response = client.patch(url, json={"date_of_birth": "1961-03-15"},
                                headers=world.headers(who, **if_match))
        assert response.status_code == 403, (who, response.get_json())
        assert response.get_json()["type"].endswith(problem), who
    after = client.get(url, headers=world.headers("patient"))
    assert after.get_json()["date_of_birth"] == "1961-03-14"
    assert after.headers["ETag"] == before.headers["ETag"]


def _lives_in_the_stations_commune(app, citizen_id) -> None:
    """Registry acts of station staff are for people of their station's catchment."""
    from registry.models import Citizen

    with app.app_context():
        db.session.get(Citizen, citizen_id).address = {
            "province_code": "27", "commune_code": "09334", "line": "Thôn Duệ Đông"}
        db.session.commit()


def test_a_station_corrects_the_date_of_birth_only_in_agreement_with_the_health_id(
        client, world, vaccinator):
    url = f"/api/v1/citizens/{world.patient}"
    _lives_in_the_stations_commune(client.application, world.patient)
    before = client.get(url, headers=world.headers("patient"))
    if_match = {"If-Match": before.headers["ETag"]}
    mismatch = client.patch(url, json={"date_of_birth": "1999-01-01"},
                            headers=world.headers("vaccinator", **if_match))
    assert mismatch.status_code == 422, mismatch.get_json()
    assert "date_of_birth" in mismatch.get_json()["errors"]
    unchanged = client.get(url, headers=world.headers("patient")).get_json()
    assert unchanged["date_of_birth"] == "1961-03-14"
    agreeing = client.patch(url, json={"date_of_birth": "1961-03-15"},
                            headers=world.headers("vaccinator", **if_match))
    assert agreeing.status_code == 200, agreeing.get_json()
    assert agreeing.get_json()["date_of_birth"] == "1961-03-15"
    assert "phone" not in agreeing.get_json()  # a station sees the minimal identity
    assert agreeing.headers["ETag"] != before.headers["ETag"]
    assert client.get(url, headers=world.headers("patient")).get_json()[
        "date_of_birth"] == "1961-03-15"
    # How the person is reached is theirs to change, not the station's.
    current = {"If-Match": agreeing.headers["ETag"]}
    for lang in ("vi", "en"):
        contact = client.patch(url, json={"full_name": "Nguyễn Văn Sửa", "phone": "0912345678"},
                               headers=world.headers("vaccinator", **current,
                                                     **{"Accept-Language": lang}))
        assert contact.status_code == 422
        assert contact.get_json()["errors"] == {
            "phone": [translate("record.field-citizen-only", lang)]}
    assert client.get(url, headers=world.headers("patient")).get_json()["full_name"] != \
        "Nguyễn Văn Sửa"
