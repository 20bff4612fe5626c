"""Relationships are the perimeter (DESIGN.md §5), over HTTP with real tokens: how a
guardianship comes into force (the child's station, a guardian's approval, the newborn's
registration), how a station ends one (with a reason the guardians read), family-doctor
registration by the consent service, a teen's restricted consents and requests, and who is
told of each change."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

import pytest
from sqlalchemy import select

from consent.models import AuditEvent, Guardianship
from core.db import db
from registry.reference.health_id import make_health_id
from tests.consent.test_issue14_leaks import (
    JSON,
    TODAY,
    commune_station,
    guardian_of,
    resident,
    years_ago,
)
from tests.support.auth import (
    bearer,
    health_id_of,
    make_citizen,
    make_facility,
    make_practitioner,
    token_for,
)


def inbox(client, token) -> list[dict]:
    response = client.get("/api/v1/me/notifications", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def told(client, token, trigger: str) -> list[dict]:
    return [n for n in inbox(client, token) if n["trigger"] == trigger]


@pytest.fixture
def commune(app, client):
    """Commune 09334: its station (staff token), a 7-year-old and a 13-year-old living there,
    their mother (guardian in force), and an unrelated adult who knows their papers."""
    station = commune_station(app, "09334")
    child = resident(app, born=years_ago(7), name="Nguyễn Minh Khôi")
    teen = resident(app, born=years_ago(13), name="Nguyễn Thu Hà", sex="female")
    mother = make_citizen(app, full_name="Đỗ Thị Lan Anh", sex="female",
                          date_of_birth=dt.date(1985, 11, 2))
    for dependant in (child, teen):
        guardian_of(app, mother, dependant)
    return {
        "station": station, "child": child, "teen": teen, "mother": mother,
        "staff": token_for(client, app, role="station", facility=station),
        "mother_token": token_for(client, app, citizen=mother),
        "teen_token": token_for(client, app, citizen=teen),
        "neighbour_token": token_for(client, app),
    }


def _claim(app, client, token, child, born) -> dict:
    response = client.post("/api/v1/me/dependants", headers={**bearer(token), **JSON}, json={
        "health_id": health_id_of(app, child), "date_of_birth": born.isoformat(),
        "relationship": "father"})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


# Claims ----------------------------------------------------------------------------------------


def test_a_guardian_in_force_approves_a_claim_from_their_phone(app, client, commune):
    child, neighbour = commune["child"], commune["neighbour_token"]
    claim = _claim(app, client, neighbour, child, years_ago(7))
    # A child under 12 is not told (their guardians are); the mother is.
    assert told(client, commune["mother_token"], "guardian-claimed")
    mother = bearer(commune["mother_token"])
    listed = client.get(f"/api/v1/citizens/{child}/guardian-claims", headers=mother)
    assert [(c["id"], c["claimant"]["full_name"], c["status"])
            for c in listed.get_json()["items"]] == [(claim["id"], "Nguyễn Văn An", "pending")]
    approved = client.post(f"/api/v1/citizens/{child}/guardian-claims/{claim['id']}/approve",
                           headers=mother)
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "approved"
    assert client.get(f"/api/v1/citizens/{child}/summary",
                      headers=bearer(neighbour)).status_code == 200
    [answer] = told(client, neighbour, "guardian-claim-answered")
    assert answer["data"]["decision"] == "approved"
    again = client.post(f"/api/v1/citizens/{child}/guardian-claims/{claim['id']}/deny",
                        headers=mother)
    assert again.status_code == 409
    with app.app_context():
        rules = set(db.session.scalars(select(AuditEvent.rule).where(
            AuditEvent.citizen_id == child, AuditEvent.section == "guardians")))
    assert {"guardian-claim", "guardian"} <= rules


def test_a_denied_claim_opens_nothing_and_tells_the_claimant_no_name(app, client, commune):
    teen, neighbour = commune["teen"], commune["neighbour_token"]
    claim = _claim(app, client, neighbour, teen, years_ago(13))
    # From 12 the teen hears of it too, in their own words.
    [to_teen] = told(client, commune["teen_token"], "guardian-claimed")
    assert to_teen["subject_citizen_id"] == str(teen)
    # The teen may see the claim but not answer it: their guardians or station do.
    teen_headers = bearer(commune["teen_token"])
    assert client.get(f"/api/v1/citizens/{teen}/guardian-claims",
                      headers=teen_headers).status_code == 200
    assert client.post(f"/api/v1/citizens/{teen}/guardian-claims/{claim['id']}/approve",
                       headers=teen_headers).status_code == 403
    denied = client.post(f"/api/v1/citizens/{teen}/guardian-claims/{claim['id']}/deny",
                         headers=bearer(commune["mother_token"]))
    assert denied.get_json()["status"] == "denied"
    assert client.get(f"/api/v1/citizens/{teen}/summary",
                      headers=bearer(neighbour)).status_code == 404
    [answer] = told(client, neighbour, "guardian-claim-answered")
    assert "Thu Hà" not in answer["body"]
    own = client.get(f"/api/v1/citizens/{teen}/guardian-claims/{claim['id']}",
                     headers=bearer(neighbour))
    assert own.get_json()["status"] == "denied"
    mine = client.get("/api/v1/me/guardian-claims", headers=bearer(neighbour)).get_json()
    assert [c["status"] for c in mine["items"]] == ["denied"]


def test_the_teens_access_log_names_a_claim_for_what_it_is(app, client, commune):
    teen = commune["teen"]
    _claim(app, client, commune["neighbour_token"], teen, years_ago(13))
    log = client.get(f"/api/v1/citizens/{teen}/access-log",
                     headers={**bearer(commune["teen_token"]), "Accept-Language": "en"})
    [entry] = [e for e in log.get_json()["items"] if e["actor"]["name"] == "Nguyễn Văn An"]
    assert entry["text"] == "Nguyễn Văn An asked to become your guardian"
    assert entry["actor"]["kind"] == "citizen"


# Newborn registration -------------------------------------------------------------------------


def _newborn(parent_health_id: str, parent_born: dt.date, **extra) -> dict:
    born = TODAY - dt.timedelta(days=2)
    return {"health_id": make_health_id(province_code="027", date_of_birth=born, sex="female",
                                        serial=secrets.randbelow(1_000_000)),
            "full_name": "Lê Ngọc Hân", "date_of_birth": born.isoformat(), "sex": "female",
            "guardians": [{"health_id": parent_health_id,
                           "date_of_birth": parent_born.isoformat(),
                           "relationship": "mother"}], **extra}


def test_the_newborns_registration_names_the_mother(app, client, commune):
    mother_born = dt.date(1985, 11, 2)
    body = _newborn(health_id_of(app, commune["mother"]), mother_born)
    staff = bearer(commune["staff"])
    registered = client.post("/api/v1/citizens", headers={**staff, **JSON}, json=body)
    assert registered.status_code == 201, registered.get_json()
    baby = registered.get_json()["id"]
    mother = bearer(commune["mother_token"])
    assert client.get(f"/api/v1/citizens/{baby}/summary", headers=mother).status_code == 200
    guardians = client.get(f"/api/v1/citizens/{baby}/guardians", headers=mother).get_json()
    assert [(g["guardian"]["citizen_id"], g["created_via"]) for g in guardians["items"]] == [
        (str(commune["mother"]), "station")]
    assert [n["subject_citizen_id"] for n in told(client, commune["mother_token"],
                                                  "guardians-changed")] == [baby]


def test_only_a_station_names_parents_and_a_wrong_parent_registers_nobody(app, client, commune):
    mother_id = health_id_of(app, commune["mother"])
    doctor = bearer(token_for(client, app, role="practitioner"))
    refused = client.post("/api/v1/citizens", headers={**doctor, **JSON},
                          json=_newborn(mother_id, dt.date(1985, 11, 2)))
    assert refused.status_code == 422
    assert set(refused.get_json()["errors"]) == {"guardians"}
    wrong = client.post("/api/v1/citizens", headers={**bearer(commune["staff"]), **JSON},
                        json=_newborn(mother_id, dt.date(1985, 11, 3)))
    assert wrong.status_code == 422
    assert set(wrong.get_json()["errors"]) == {"guardians.0"}
    with client.unchecked():
        shape = client.post("/api/v1/citizens", headers={**bearer(commune["staff"]), **JSON},
                            json=_newborn(mother_id, dt.date(1985, 11, 2),
                                          guardians=[{"health_id": mother_id}]))
    assert shape.status_code == 422
    assert set(shape.get_json()["errors"]) == {"guardians.0.date_of_birth",
                                               "guardians.0.relationship"}
    with app.app_context():  # the mother guards her two children, no third
        assert len(db.session.scalars(select(Guardianship).where(
            Guardianship.guardian_citizen_id == commune["mother"])).all()) == 2


# Ending a guardianship ---------------------------------------------------------------------------


def test_a_station_ends_a_guardianship_only_with_a_reason_the_guardians_read(app, client,
                                                                            commune):
    child = commune["child"]
    father = make_citizen(app, full_name="Nguyễn Văn Hùng", date_of_birth=dt.date(1983, 4, 9))
    gid = guardian_of(app, father, child)
    father_token = token_for(client, app, citizen=father)
    staff = bearer(commune["staff"])
    no_reason = client.delete(f"/api/v1/citizens/{child}/guardians/{gid}", headers=staff)
    assert no_reason.status_code == 422
    assert set(no_reason.get_json()["errors"]) == {"reason"}
    reason = "Quyết định của Tòa án nhân dân huyện Tiên Du về quyền nuôi con"
    ended = client.post(f"/api/v1/citizens/{child}/guardians/{gid}/end",
                        headers={**staff, **JSON}, json={"reason": reason})
    assert ended.status_code == 200, ended.get_json()
    assert (ended.get_json()["status"], ended.get_json()["end_reason"]) == (
        "guardian-revoked", reason)
    # The father no longer acts for the child, but reads why his guardianship ended.
    father_headers = bearer(father_token)
    assert client.get(f"/api/v1/citizens/{child}/summary",
                      headers=father_headers).status_code == 403
    own = client.get(f"/api/v1/citizens/{child}/guardians/{gid}", headers=father_headers)
    assert own.status_code == 200
    assert own.get_json()["end_reason"] == reason
    assert told(client, father_token, "guardians-changed")
    assert told(client, commune["mother_token"], "guardians-changed")
    listed = client.get(f"/api/v1/citizens/{child}/guardians?include_ended=true",
                        headers=bearer(commune["mother_token"])).get_json()["items"]
    assert [g["end_reason"] for g in listed if g["id"] == str(gid)] == [reason]


# Family doctor ----------------------------------------------------------------------------------


def test_family_doctor_registration_tells_the_person_the_guardians_and_both_doctors(
        app, client, commune):
    teen, station = commune["teen"], commune["station"]
    first = make_practitioner(app, facility=station, full_name="Nguyễn Thị Hương")
    second = make_practitioner(app, facility=station, full_name="Trần Quốc Bảo",
                               profession="physician-assistant")
    nurse = make_practitioner(app, facility=station, profession="nurse")
    first_token = token_for(client, app, role="practitioner", practitioner=first)
    second_token = token_for(client, app, role="practitioner", practitioner=second)
    staff = {**bearer(commune["staff"]), **JSON}
    url = f"/api/v1/citizens/{teen}/family-doctor"
    not_a_doctor = client.put(url, headers=staff, json={"practitioner_id": str(nurse),
                                                         "facility_id": str(station)})
    assert not_a_doctor.status_code == 422
    registered = client.put(url, headers=staff, json={"practitioner_id": str(first),
                                                      "facility_id": str(station)})
    assert registered.status_code == 200, registered.get_json()
    assert registered.get_json()["current"]["name"] == "Nguyễn Thị Hương"
    assert told(client, first_token, "family-doctor-changed")
    assert told(client, commune["teen_token"], "family-doctor-changed")
    assert told(client, commune["mother_token"], "family-doctor-changed")
    # The mother changes it from her phone: she is not told of her own act; both doctors are.
    changed = client.put(url, headers={**bearer(commune["mother_token"]), **JSON},
                         json={"practitioner_id": str(second), "facility_id": str(station)})
    assert [h["name"] for h in changed.get_json()["history"]] == [
        "Trần Quốc Bảo", "Nguyễn Thị Hương"]
    assert len(told(client, commune["mother_token"], "family-doctor-changed")) == 1
    assert len(told(client, first_token, "family-doctor-changed")) == 2
    assert told(client, second_token, "family-doctor-changed")
    assert client.get(f"/api/v1/citizens/{teen}/allergies",
                      headers=bearer(second_token)).status_code == 200
    with app.app_context():
        audited = db.session.scalars(select(AuditEvent.rule).where(
            AuditEvent.citizen_id == teen, AuditEvent.section == "family-doctor",
            AuditEvent.action == "manage", AuditEvent.decision == "permit")).all()
    # The nurse's refusal (422) rolled back with its request; the two changes are audited.
    assert sorted(audited) == ["guardian", "station-registry"]


def test_a_person_of_the_commune_by_address_is_in_the_stations_catchment(app, client, commune):
    elsewhere_born = resident(app, born=dt.date(1970, 1, 1), commune="09340",
                              name="Vũ Văn Long")
    staff = bearer(commune["staff"])
    assert client.get(f"/api/v1/citizens/{commune['teen']}/guardians",
                      headers=staff).status_code == 200
    assert client.get(f"/api/v1/citizens/{elsewhere_born}/guardians",
                      headers=staff).status_code == 404


# A teen's restricted consents and requests --------------------------------------------------------


def test_a_teens_restricted_consent_is_told_to_the_teen_and_grantee_only(app, client, commune):
    teen, station = commune["teen"], commune["station"]
    counsellor = make_practitioner(app, facility=station, full_name="Phan Thị Mai")
    counsellor_token = token_for(client, app, role="practitioner", practitioner=counsellor)
    base = f"/api/v1/citizens/{teen}/consents"
    teen_headers = {**bearer(commune["teen_token"]), **JSON}
    private = client.post(base, headers=teen_headers, json={
        "grantee": {"type": "practitioner", "id": str(counsellor)},
        "sections": ["conditions"], "categories": ["mental-health"]})
    assert private.status_code == 201
    assert told(client, counsellor_token, "consent-granted")
    assert told(client, commune["mother_token"], "consent-granted") == []
    ordinary = client.post(base, headers=teen_headers, json={
        "grantee": {"type": "practitioner", "id": str(counsellor)},
        "sections": ["immunizations"]})
    assert ordinary.status_code == 201
    assert len(told(client, commune["mother_token"], "consent-granted")) == 1
    # The mother may not open the teen's restricted categories to anyone.
    mother = {**bearer(commune["mother_token"]), **JSON}
    refused = client.post(base, headers=mother, json={
        "grantee": {"type": "practitioner", "id": str(counsellor)},
        "sections": ["conditions"], "categories": ["reproductive"]})
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("teen-privacy")
    revoked = client.delete(f"{base}/{private.get_json()['id']}", headers=teen_headers)
    assert revoked.get_json()["status"] == "revoked"
    assert told(client, counsellor_token, "consent-revoked")
    assert told(client, commune["mother_token"], "consent-revoked") == []

    def consent_changes(token) -> int:
        log = client.get(f"/api/v1/citizens/{teen}/access-log?include_own=true",
                         headers=bearer(token)).get_json()["items"]
        return sum(1 for e in log if e["section"] == "consents" and e["action"] == "manage"
                   and e["actor"]["name"] == "Nguyễn Thu Hà")

    # The access log keeps the teen's restricted grant and its revocation from the mother.
    assert consent_changes(commune["teen_token"]) == 3
    assert consent_changes(commune["mother_token"]) == 1


def test_a_request_naming_a_teens_restricted_category_is_the_teens_alone(app, client, commune):
    teen = commune["teen"]
    doctor = token_for(client, app, role="practitioner",
                       practitioner=make_practitioner(app, facility=make_facility(app)))
    asked = client.post(f"/api/v1/citizens/{teen}/access-requests",
                        headers={**bearer(doctor), **JSON},
                        json={"sections": ["conditions"], "categories": ["hiv-sti"],
                              "reason": "Tư vấn theo yêu cầu của bệnh nhân"})
    assert asked.status_code == 201
    request_id = asked.get_json()["id"]
    assert told(client, commune["teen_token"], "access-requested")
    assert told(client, commune["mother_token"], "access-requested") == []
    mother = bearer(commune["mother_token"])
    listed = client.get(f"/api/v1/citizens/{teen}/access-requests", headers=mother)
    assert listed.get_json()["items"] == []
    log = client.get(f"/api/v1/citizens/{teen}/access-log", headers=mother).get_json()["items"]
    assert [e for e in log if e["section"] == "access-requests"] == []
    assert client.post(f"/api/v1/citizens/{teen}/access-requests/{request_id}/approve",
                       headers=mother).status_code == 404
    approved = client.post(f"/api/v1/citizens/{teen}/access-requests/{request_id}/approve",
                           headers=bearer(commune["teen_token"]))
    assert approved.get_json()["status"] == "approved"
    assert uuid.UUID(approved.get_json()["consent_id"])
