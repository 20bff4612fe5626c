"""The directory over HTTP with real tokens: accent-insensitive search, filters, pagination,
ETags, bad queries, and the two uses it exists for: a citizen grants a consent to, or chooses as
family doctor, a practitioner found there."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from core.db import db
from registry.models import Facility, Practitioner, PractitionerMembership
from registry.services import create_facility, create_practitioner
from tests.support.auth import bearer, make_citizen, token_for

JSON = {"Content-Type": "application/json"}


def _facility(app, *, name, kind="commune-health-station", province="24", commune="09334"):
    with app.app_context():
        facility = create_facility(session=db.session, code="D-" + uuid.uuid4().hex[:10],
                                   kind=kind, name=name, province_code=province,
                                   commune_code=commune)
        db.session.commit()
        return facility.id


def _practitioner(app, facility, *, name, profession="doctor", title=None):
    with app.app_context():
        practitioner = create_practitioner(
            session=db.session, full_name=name, profession=profession, title=title,
            practising_certificate=f"{uuid.uuid4().hex[:8]}/BN-CCHN",
            facility=db.session.get(Facility, facility), started_on=dt.date(2020, 1, 1))
        db.session.commit()
        return practitioner.id


@pytest.fixture
def world(app, client):
    station = _facility(app, name="Trạm Y tế xã Liên Bão")
    hospital = _facility(app, name="Bệnh viện đa khoa Tiên Du", kind="hospital",
                         commune="09319")
    hanoi = _facility(app, name="Trạm Y tế phường Yên Hòa", province="01", commune="00175")
    people = {
        "huong": _practitioner(app, station, name="Nguyễn Thị Hương", title="Trưởng trạm"),
        "huong2": _practitioner(app, hospital, name="Lê Thị Hường", profession="midwife"),
        "huong3": _practitioner(app, hanoi, name="TRẦN HƯƠNG GIANG", profession="nurse"),
        "duc": _practitioner(app, hospital, name="Trần Văn Đức"),
        "mai": _practitioner(app, station, name="Lê Thị Mai", profession="nurse"),
    }
    citizen = make_citizen(app, full_name="Phạm Văn Thắng", date_of_birth=dt.date(1961, 3, 14))
    tokens = token_for(client, app, citizen=citizen)
    return {"station": station, "hospital": hospital, "hanoi": hanoi, "citizen": citizen,
            "token": tokens, "headers": bearer(tokens), **people}


def _names(response):
    assert response.status_code == 200, response.get_json()
    return [item["full_name"] for item in response.get_json()["items"]]


@pytest.mark.parametrize("q", ["huong", "HƯƠNG", "hương", "Huong", "  huong  "])
def test_a_search_ignores_accents_and_case(client, world, q):
    found = _names(client.get("/api/v1/practitioners", query_string={"q": q},
                              headers=world["headers"]))
    # Ordered by folded name: "le thi huong", "nguyen thi huong", "tran huong giang".
    assert found == ["Lê Thị Hường", "Nguyễn Thị Hương", "TRẦN HƯƠNG GIANG"]


def test_every_word_must_match_and_wildcards_are_literal(client, world):
    headers = world["headers"]
    assert _names(client.get("/api/v1/practitioners?q=nguyen%20huong", headers=headers)) == [
        "Nguyễn Thị Hương"]
    assert _names(client.get("/api/v1/practitioners?q=duc", headers=headers)) == ["Trần Văn Đức"]
    assert _names(client.get("/api/v1/practitioners?q=%25", headers=headers)) == []
    assert _names(client.get("/api/v1/practitioners?q=h_ong", headers=headers)) == []


def test_an_entry_shows_the_public_register_only(client, world):
    response = client.get(f"/api/v1/practitioners/{world['huong']}", headers=world["headers"])
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"id", "full_name", "profession", "practising_certificate",
                         "memberships"}
    [membership] = body["memberships"]
    assert membership["title"] == "Trưởng trạm"
    assert membership["facility"] == {
        "id": str(world["station"]), "code": membership["facility"]["code"],
        "kind": "commune-health-station", "name": "Trạm Y tế xã Liên Bão",
        "province_code": "24", "province_name": "Bắc Ninh", "commune_code": "09334",
        "commune_name": "Xã Liên Bão"}
    again = client.get(f"/api/v1/practitioners/{world['huong']}",
                       headers={**world["headers"], "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    facility = client.get(f"/api/v1/facilities/{world['hospital']}", headers=world["headers"])
    assert facility.get_json()["commune_name"] == "Xã Tiên Du"
    assert client.get(f"/api/v1/practitioners/{uuid.uuid4()}",
                      headers=world["headers"]).status_code == 404
    assert client.get(f"/api/v1/facilities/{uuid.uuid4()}",
                      headers=world["headers"]).status_code == 404


def test_filters(client, world):
    headers = world["headers"]
    url = "/api/v1/practitioners"
    assert _names(client.get(url, query_string={"commune_code": "09334"}, headers=headers)) == [
        "Lê Thị Mai", "Nguyễn Thị Hương"]
    assert _names(client.get(url, query_string={"facility_id": str(world["hospital"])},
                             headers=headers)) == ["Lê Thị Hường", "Trần Văn Đức"]
    assert _names(client.get(url, query_string={"profession": "nurse"}, headers=headers)) == [
        "Lê Thị Mai", "TRẦN HƯƠNG GIANG"]
    assert _names(client.get(url, query_string={"kind": "hospital", "q": "huong"},
                             headers=headers)) == ["Lê Thị Hường"]
    assert _names(client.get(url, query_string={"province_code": "01"}, headers=headers)) == [
        "TRẦN HƯƠNG GIANG"]
    # An old province code (27, Bắc Ninh before 2025) is read as the current one (24).
    assert len(_names(client.get(url, query_string={"province_code": "27"},
                                 headers=headers))) == 4
    facilities = client.get("/api/v1/facilities", query_string={"q": "tram y te"},
                            headers=headers).get_json()["items"]
    assert [f["name"] for f in facilities] == ["Trạm Y tế phường Yên Hòa",
                                               "Trạm Y tế xã Liên Bão"]
    hospitals = client.get("/api/v1/facilities?kind=hospital&commune_code=09319",
                           headers=headers).get_json()["items"]
    assert [f["id"] for f in hospitals] == [str(world["hospital"])]


def test_inactive_practitioners_and_ended_memberships_are_not_listed(app, client, world):
    with app.app_context():
        db.session.get(Practitioner, world["duc"]).active = False
        membership = db.session.query(PractitionerMembership).filter_by(
            practitioner_id=world["mai"]).one()
        membership.ended_on = dt.date(2024, 12, 31)
        db.session.commit()
    headers = world["headers"]
    assert "Trần Văn Đức" not in _names(client.get("/api/v1/practitioners", headers=headers))
    assert client.get(f"/api/v1/practitioners/{world['duc']}",
                      headers=headers).status_code == 404
    assert _names(client.get("/api/v1/practitioners?commune_code=09334", headers=headers)) == [
        "Nguyễn Thị Hương"]
    mai = client.get(f"/api/v1/practitioners/{world['mai']}", headers=headers).get_json()
    assert mai["memberships"] == []


def test_pages_are_stable_and_complete(client, world):
    headers = world["headers"]
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/practitioners", query_string=query, headers=headers).get_json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    everyone = client.get("/api/v1/practitioners", headers=headers).get_json()["items"]
    assert seen == [item["id"] for item in everyone]
    assert len(seen) == len(set(seen)) == 5
    assert pages == 3
    listed = client.get("/api/v1/practitioners", headers=headers)
    assert client.get("/api/v1/practitioners", headers={
        **headers, "If-None-Match": listed.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize(("query", "field", "status"), [
    ({"commune_code": "9334"}, "commune_code", 422),
    ({"commune_code": "99999"}, "commune_code", 422),
    ({"commune_code": "00163"}, "commune_code", 422),  # old Mai Dịch: split in 2025
    ({"province_code": "99"}, "province_code", 422),
    ({"facility_id": "not-a-uuid"}, "facility_id", 422),
    ({"profession": "surgeon"}, "profession", 422),
    ({"kind": "spa"}, "kind", 422),
    ({"q": "x" * 101}, "q", 422),
    ({"q": "a\u202eb"}, "q", 422),
    ({"limit": "0"}, None, 400),
    ({"cursor": "forged"}, None, 400),
])
def test_bad_query_values_are_problems(client, world, query, field, status):
    response = client.get("/api/v1/practitioners", query_string=query,
                          headers={**world["headers"], "Accept-Language": "en"})
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    if field is not None:
        assert field in response.get_json()["errors"]
    vi = client.get("/api/v1/practitioners", query_string=query, headers=world["headers"])
    assert vi.get_json()["detail"] != response.get_json()["detail"] or field is None


def test_a_split_commune_names_the_current_candidates(client, world):
    response = client.get("/api/v1/facilities?commune_code=00163",
                          headers={**world["headers"], "Accept-Language": "en"})
    [message] = response.get_json()["errors"]["commune_code"]
    assert "00160 (Phường Nghĩa Đô)" in message


def test_any_token_reads_it_and_none_does_not(app, client, world):
    assert client.get("/api/v1/practitioners").status_code == 401
    narrow = token_for(client, app, citizen=make_citizen(app), scopes="openid")
    assert client.get("/api/v1/facilities", headers=bearer(narrow)).status_code == 200


def test_a_citizen_grants_a_consent_to_a_practitioner_found_in_the_directory(app, client, world):
    found = client.get("/api/v1/practitioners", query_string={"q": "tran van duc"},
                       headers=world["headers"]).get_json()["items"]
    [duc] = found
    doctor = token_for(client, app, role="practitioner", practitioner=uuid.UUID(duc["id"]))
    url = f"/api/v1/citizens/{world['citizen']}"
    entry = client.post(url + "/allergies", headers={**world["headers"], **JSON},
                        json={"substance": "Penicillin", "category": "medication",
                              "criticality": "high"})
    assert entry.status_code == 201, entry.get_json()
    assert client.get(url + "/allergies", headers=bearer(doctor)).status_code == 404

    granted = client.post(url + "/consents", headers={**world["headers"], **JSON}, json={
        "grantee": {"type": "practitioner", "id": duc["id"]}, "sections": ["allergies"]})
    assert granted.status_code == 201, granted.get_json()
    read = client.get(url + "/allergies", headers=bearer(doctor))
    assert read.status_code == 200
    assert [e["id"] for e in read.get_json()["items"]] == [entry.get_json()["id"]]


def test_a_citizen_chooses_a_family_doctor_found_in_the_directory(client, world):
    [huong] = client.get("/api/v1/practitioners",
                         query_string={"q": "huong", "commune_code": "09334",
                                       "profession": "doctor"},
                         headers=world["headers"]).get_json()["items"]
    [membership] = huong["memberships"]
    url = f"/api/v1/citizens/{world['citizen']}/family-doctor"
    put = client.put(url, headers={**world["headers"], **JSON}, json={
        "practitioner_id": huong["id"], "facility_id": membership["facility"]["id"]})
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["current"]["name"] == "Nguyễn Thị Hương"
