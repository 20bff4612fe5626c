"""The consent routes over HTTP with real tokens, every exchange checked against openapi.yaml:
access requests, consents, break-glass, guardians, the access log, and who may do what."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from core.db import db
from registry.services import assign_family_doctor
from tests.support.auth import (
    bearer,
    health_id_of,
    make_citizen,
    make_facility,
    make_practitioner,
    token_for,
)
from tests.support.contract import ContractClient

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def http(app):
    app.test_client_class = ContractClient
    return app.test_client()


@pytest.fixture
def people(app, http):
    """A citizen with a family doctor, a hospital doctor, their tokens."""
    station = make_facility(app)
    hospital = make_facility(app, kind="hospital")
    family_doctor = make_practitioner(app, facility=station, full_name="Nguyễn Thị Hương")
    other_doctor = make_practitioner(app, facility=hospital, full_name="Trần Văn Đức")
    citizen = make_citizen(app, full_name="Phạm Văn Thắng", date_of_birth=dt.date(1961, 3, 14))
    with app.app_context():
        assign_family_doctor(session=db.session, citizen_id=citizen, practitioner_id=family_doctor,
                             facility_id=station, changed_by="test")
        db.session.commit()
    return {
        "citizen": citizen, "station": station, "hospital": hospital,
        "family_doctor": family_doctor, "other_doctor": other_doctor,
        "citizen_token": token_for(http, app, citizen=citizen),
        "doctor_token": token_for(http, app, role="practitioner", practitioner=other_doctor),
    }


def _url(people, tail=""):
    return f"/api/v1/citizens/{people['citizen']}{tail}"


def test_ask_approve_see_the_answer_then_revoke(http, people):
    doctor, citizen = bearer(people["doctor_token"]), bearer(people["citizen_token"])
    asked = http.post(_url(people, "/access-requests"), headers={**doctor, **JSON}, json={
        "sections": ["conditions", "medications"], "reason": "Khám lại sau chuyển viện"})
    assert asked.status_code == 201, asked.get_json()
    request_id = asked.get_json()["id"]
    assert asked.get_json()["practitioner"]["name"] == "Trần Văn Đức"

    pending = http.get(_url(people, "/access-requests?status=pending"), headers=citizen)
    assert [r["id"] for r in pending.get_json()["items"]] == [request_id]
    approved = http.post(_url(people, f"/access-requests/{request_id}/approve"),
                         headers=citizen)
    assert approved.status_code == 200
    consent_id = approved.get_json()["consent_id"]
    assert approved.get_json()["status"] == "approved"

    mine = http.get("/api/v1/me/access-requests", headers=doctor).get_json()
    assert [(r["id"], r["status"]) for r in mine["items"]] == [(request_id, "approved")]
    consents = http.get(_url(people, "/consents"), headers=citizen).get_json()["items"]
    assert [(c["id"], c["grantee"]["name"], c["status"]) for c in consents] == [
        (consent_id, "Trần Văn Đức", "active")]

    again = http.post(_url(people, f"/access-requests/{request_id}/deny"), headers=citizen)
    assert again.status_code == 409
    revoked = http.delete(_url(people, f"/consents/{consent_id}"), headers=citizen)
    assert revoked.get_json()["status"] == "revoked"
    assert http.get(_url(people, "/consents"), headers=citizen).get_json()["items"] == []


def test_a_grant_is_idempotent_and_validated_in_both_languages(http, people):
    citizen = {**bearer(people["citizen_token"]), **JSON, "Idempotency-Key": "grant-0001"}
    body = {"grantee": {"type": "facility", "id": str(people["hospital"])},
            "sections": ["allergies"], "categories": ["mental-health"]}
    first = http.post(_url(people, "/consents"), headers=citizen, json=body)
    replay = http.post(_url(people, "/consents"), headers=citizen, json=body)
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    listed = http.get(_url(people, "/consents"), headers=bearer(people["citizen_token"]))
    assert len(listed.get_json()["items"]) == 1

    plain = {**bearer(people["citizen_token"]), **JSON}
    with http.unchecked():  # deliberately invalid bodies
        bad = http.post(_url(people, "/consents"), headers={**plain, "Accept-Language": "en"},
                        json={"grantee": {"type": "facility", "id": str(uuid.uuid4())},
                              "sections": ["allergies"], "expires_at": "2020-01-01T00:00:00Z"})
        unknown = http.post(_url(people, "/consents"), headers=plain,
                            json={"grantee": {"type": "practitioner"}, "sections": [],
                                  "colour": "blue"})
    assert bad.status_code == 422
    assert bad.get_json()["errors"] == {"grantee.id": ["No such practitioner or facility."]}
    assert unknown.status_code == 422
    assert set(unknown.get_json()["errors"]) == {"grantee.id", "sections", "colour"}


def test_break_glass_over_http_shows_in_the_log_and_the_facility_reviews_it(app, http, people):
    doctor, citizen = bearer(people["doctor_token"]), bearer(people["citizen_token"])
    reason = "Bệnh nhân bất tỉnh, cần biết dị ứng"
    opened = http.post(_url(people, "/break-glass"), headers={**doctor, **JSON},
                       json={"reason": reason})
    assert opened.status_code == 201
    session_id = opened.get_json()["id"]
    log = http.get(_url(people, "/access-log"), headers={**citizen, "Accept-Language": "en"})
    first = log.get_json()["items"][0]
    assert first["text"] == ("Dr. Trần Văn Đức at Cơ sở thử nghiệm opened emergency access to "
                             f"your record. Reason: {reason}")
    assert first["break_glass"] == {"id": session_id, "reason": reason}

    reviewer = bearer(token_for(http, app, role="station", facility=people["hospital"]))
    listed = http.get(f"/api/v1/facilities/{people['hospital']}/break-glass?unreviewed=true",
                      headers=reviewer).get_json()
    assert [(i["id"], i["reason"]) for i in listed["items"]] == [(session_id, reason)]
    reviewed = http.post(
        f"/api/v1/facilities/{people['hospital']}/break-glass/{session_id}/review",
        headers=reviewer)
    assert reviewed.get_json()["reviewed_at"] is not None
    assert http.get(f"/api/v1/facilities/{people['hospital']}/break-glass?unreviewed=true",
                    headers=reviewer).get_json()["items"] == []
    other = http.get(f"/api/v1/facilities/{people['station']}/break-glass", headers=reviewer)
    assert other.status_code == 403


def test_access_log_pages_and_flags(http, people):
    doctor, citizen = bearer(people["doctor_token"]), bearer(people["citizen_token"])
    for _ in range(3):  # refused: no relationship with the citizen, answered as for nobody
        assert http.get(_url(people, "/consents"), headers=doctor).status_code == 404
    page = http.get(_url(people, "/access-log?limit=2"), headers=citizen).get_json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = http.get(_url(people, f"/access-log?limit=2&cursor={page['next_cursor']}"),
                    headers=citizen).get_json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    assert page["items"][0]["text"] == (
        "Bác sĩ Trần Văn Đức tại Cơ sở thử nghiệm đã bị từ chối khi muốn xem các quyền truy cập "
        "đã cấp của bạn")
    event_id = page["items"][0]["id"]
    flagged = http.post(_url(people, f"/access-log/{event_id}/flag"),
                        headers={**citizen, **JSON}, json={"note": "Tôi không biết bác sĩ này"})
    assert flagged.status_code == 201
    assert http.post(_url(people, f"/access-log/{event_id}/flag"),
                     headers=citizen).status_code == 200
    log = http.get(_url(people, "/access-log?limit=1"), headers=citizen).get_json()
    assert log["items"][0]["flag"]["id"] == flagged.get_json()["id"]


def _registered_by(app, citizen_id, facility_id):
    from registry.models import Citizen

    with app.app_context():
        db.session.get(Citizen, citizen_id).registered_by_facility_id = facility_id
        db.session.commit()


def test_a_parent_claims_a_child_and_acts_for_them(app, http):
    station = make_facility(app)
    infant = make_citizen(app, full_name="Nguyễn Minh Khôi",
                          date_of_birth=dt.date.today() - dt.timedelta(days=150))  # noqa: DTZ011
    _registered_by(app, infant, station)
    parent_token = token_for(http, app)
    parent = bearer(parent_token)
    claim = http.post("/api/v1/me/dependants", headers={**parent, **JSON}, json={
        "health_id": health_id_of(app, infant),
        "date_of_birth": (dt.date.today() - dt.timedelta(days=150)).isoformat(),  # noqa: DTZ011
        "relationship": "mother"})
    assert claim.status_code == 202, claim.get_json()
    assert claim.get_json()["status"] == "pending"
    assert http.get(claim.headers["Location"], headers=parent).get_json()["status"] == "pending"
    assert http.get(f"/api/v1/citizens/{infant}/guardians", headers=parent).status_code == 404
    # The station that registered the child sees the papers and approves.
    staff = bearer(token_for(http, app, role="station", facility=station))
    pending = http.get(f"/api/v1/citizens/{infant}/guardian-claims?status=pending",
                       headers=staff).get_json()["items"]
    assert [c["id"] for c in pending] == [claim.get_json()["id"]]
    approved = http.post(f"/api/v1/citizens/{infant}/guardian-claims/{pending[0]['id']}/approve",
                         headers=staff)
    assert approved.status_code == 200, approved.get_json()
    mine = http.get("/api/v1/me/guardian-claims", headers=parent).get_json()
    assert [(c["status"], c["guardianship_id"]) for c in mine["items"]] == [
        ("approved", approved.get_json()["guardianship_id"])]
    guardianship = http.get(
        f"/api/v1/citizens/{infant}/guardians/{approved.get_json()['guardianship_id']}",
        headers=parent).get_json()
    assert guardianship["status"] == "active"
    assert guardianship["dependant_citizen_id"] == str(infant)
    me = http.get("/api/v1/me", headers=parent).get_json()
    assert [d["citizen_id"] for d in me["dependants"]] == [str(infant)]
    guardians = http.get(f"/api/v1/citizens/{infant}/guardians", headers=parent)
    assert [g["id"] for g in guardians.get_json()["items"]] == [guardianship["id"]]
    log = http.get(f"/api/v1/citizens/{infant}/access-log", headers=parent)
    assert log.status_code == 200
    ended = http.delete(f"/api/v1/citizens/{infant}/guardians/{guardianship['id']}",
                        headers=parent)
    assert ended.get_json()["status"] == "guardian-revoked"
    assert http.get(f"/api/v1/citizens/{infant}/guardians", headers=parent).status_code == 403


def test_a_station_registers_a_guardian_by_health_id(app, http):
    facility = make_facility(app)
    infant = make_citizen(app, date_of_birth=dt.date.today() - dt.timedelta(days=30))  # noqa: DTZ011
    _registered_by(app, infant, facility)  # the child of this station's catchment
    mother = make_citizen(app, full_name="Đỗ Thị Lan Anh", sex="female")
    staff = bearer(token_for(http, app, role="station", facility=facility))
    added = http.post(f"/api/v1/citizens/{infant}/guardians", headers={**staff, **JSON}, json={
        "guardian": {"health_id": health_id_of(app, mother)}, "relationship": "mother"})
    assert added.status_code == 201, added.get_json()
    assert added.get_json()["guardian"] == {"citizen_id": str(mother),
                                            "full_name": "Đỗ Thị Lan Anh"}
    assert added.get_json()["created_via"] == "station"
    duplicate = http.post(f"/api/v1/citizens/{infant}/guardians", headers={**staff, **JSON},
                          json={"guardian": {"citizen_id": str(mother)},
                                "relationship": "mother"})
    assert duplicate.status_code == 409


def test_every_route_needs_a_token(http):
    citizen = f"/api/v1/citizens/{uuid.uuid4()}"
    for method, path in [
        ("get", citizen + "/consents"), ("post", citizen + "/consents"),
        ("delete", citizen + f"/consents/{uuid.uuid4()}"), ("get", citizen + "/access-log"),
        ("get", citizen + "/guardians"), ("get", citizen + "/access-requests"),
        ("post", citizen + "/break-glass"), ("post", "/api/v1/me/dependants"),
        ("get", "/api/v1/me/access-requests"),
        ("get", f"/api/v1/facilities/{uuid.uuid4()}/break-glass"),
    ]:
        assert getattr(http, method)(path).status_code == 401, (method, path)


def test_who_may_do_what(app, http, people):
    stranger = bearer(token_for(http, app))
    doctor = bearer(people["doctor_token"])
    family = bearer(token_for(http, app, role="practitioner",
                              practitioner=people["family_doctor"]))
    station = bearer(token_for(http, app, role="station", facility=people["station"]))
    elsewhere = bearer(token_for(http, app, role="station", facility=make_facility(app)))
    _registered_by(app, people["citizen"], people["station"])  # the citizen's own station
    refused = [
        # No relationship: answered as for a person who does not exist.
        (stranger, "get", "/consents", 404), (stranger, "get", "/access-log", 404),
        (doctor, "get", "/access-log", 404), (stranger, "post", "/break-glass", 404),
        (elsewhere, "get", "/consents", 404), (elsewhere, "get", "/guardians", 404),
        # Related, but not to this part: 403.
        (family, "get", "/consents", 403), (family, "get", "/access-log", 403),
        (station, "get", "/consents", 403), (station, "post", "/break-glass", 403),
    ]
    for headers, method, tail, status in refused:
        kwargs = {"json": {"reason": "x"}} if method == "post" else {}
        response = getattr(http, method)(_url(people, tail), headers={**headers, **JSON},
                                         **kwargs)
        assert response.status_code == status, (method, tail, response.get_json())
    assert http.get(_url(people, "/guardians"), headers=station).status_code == 200
    narrow = bearer(token_for(http, app, login=people["citizen_token"].login,
                              scopes="openid patient/Immunization.rs"))
    scoped = http.get(_url(people, "/consents"), headers=narrow)
    assert scoped.status_code == 403
    assert scoped.get_json()["type"].endswith("insufficient-scope")
