"""A person's "I don't recognise this" reaches the facility the access was made at: its staff
and practitioners list and answer it (once, audited), the person sees the outcome on the
entry and is told; nobody else reviews it, and whoever made the access does not judge it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from consent.models import AccessLogFlag, AuditEvent
from core.db import db
from registry.services import assign_family_doctor
from tests.consent.test_issue14_leaks import JSON
from tests.support.auth import (
    bearer,
    make_citizen,
    make_facility,
    make_practitioner,
    token_for,
)


@pytest.fixture
def clinic(app, client):
    """A patient read by their family doctor at the commune station, and the flag on it."""
    station = make_facility(app)
    other = make_facility(app, kind="hospital")
    doctor = make_practitioner(app, facility=station, full_name="Nguyễn Thị Hương")
    colleague = make_practitioner(app, facility=station, full_name="Trần Quốc Bảo")
    patient = make_citizen(app, full_name="Phạm Văn Thắng", date_of_birth=dt.date(1961, 3, 14))
    with app.app_context():
        assign_family_doctor(session=db.session, citizen_id=patient, practitioner_id=doctor,
                             facility_id=station, changed_by="test")
        db.session.commit()
    doctor_token = token_for(client, app, role="practitioner", practitioner=doctor)
    assert client.get(f"/api/v1/citizens/{patient}/allergies",
                      headers=bearer(doctor_token)).status_code == 200
    patient_token = token_for(client, app, citizen=patient)
    log = client.get(f"/api/v1/citizens/{patient}/access-log",
                     headers=bearer(patient_token)).get_json()["items"]
    [read] = [e for e in log if e["actor"]["practitioner_id"] == str(doctor)]
    flagged = client.post(f"/api/v1/citizens/{patient}/access-log/{read['id']}/flag",
                          headers={**bearer(patient_token), **JSON},
                          json={"note": "Tôi không khám ở trạm hôm đó"})
    assert flagged.status_code == 201
    return {
        "station": station, "other": other, "patient": patient, "event_id": read["id"],
        "flag_id": flagged.get_json()["id"], "patient_token": patient_token,
        "doctor_token": doctor_token,
        "colleague_token": token_for(client, app, role="practitioner", practitioner=colleague),
        "staff_token": token_for(client, app, role="station", facility=station),
        "other_staff_token": token_for(client, app, role="station", facility=other),
    }


def _flags(client, token, facility, query=""):
    return client.get(f"/api/v1/facilities/{facility}/access-flags{query}",
                      headers=bearer(token))


def test_the_facility_reviews_a_flag_and_the_person_sees_the_outcome(app, client, clinic):
    station, staff = clinic["station"], clinic["staff_token"]
    listed = _flags(client, staff, station, "?status=open")
    assert listed.status_code == 200
    [item] = listed.get_json()["items"]
    assert (item["id"], item["note"], item["status"]) == (
        clinic["flag_id"], "Tôi không khám ở trạm hôm đó", "open")
    assert item["access"]["practitioner"]["name"] == "Nguyễn Thị Hương"
    assert item["access"]["section"] == "allergies"
    # A colleague at the facility (a practitioner) may review it too.
    assert _flags(client, clinic["colleague_token"], station).status_code == 200
    reviewed = client.post(
        f"/api/v1/facilities/{station}/access-flags/{clinic['flag_id']}/review",
        headers={**bearer(staff), **JSON},
        json={"outcome": "justified", "note": "Bác sĩ gia đình xem dị ứng trước khi kê đơn"})
    assert reviewed.status_code == 200, reviewed.get_json()
    assert (reviewed.get_json()["status"], reviewed.get_json()["outcome"]) == (
        "reviewed", "justified")
    again = client.post(
        f"/api/v1/facilities/{station}/access-flags/{clinic['flag_id']}/review",
        headers={**bearer(staff), **JSON}, json={"outcome": "unjustified"})
    assert again.status_code == 409
    assert _flags(client, staff, station, "?status=open").get_json()["items"] == []

    patient = bearer(clinic["patient_token"])
    log = client.get(f"/api/v1/citizens/{clinic['patient']}/access-log", headers=patient)
    [entry] = [e for e in log.get_json()["items"] if e["id"] == clinic["event_id"]]
    assert entry["flag"]["outcome"] == "justified"
    assert entry["flag"]["outcome_note"] == "Bác sĩ gia đình xem dị ứng trước khi kê đơn"
    assert entry["flag"]["reviewed_at"] is not None
    inbox = client.get("/api/v1/me/notifications", headers=patient).get_json()["items"]
    assert [n["trigger"] for n in inbox if n["trigger"] == "access-flag-reviewed"] == [
        "access-flag-reviewed"]
    with app.app_context():
        flag = db.session.scalars(select(AccessLogFlag)).one()
        assert flag.outcome_note_ct is not None
        assert "kê đơn".encode() not in flag.outcome_note_ct
        reviews = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.citizen_id == clinic["patient"], AuditEvent.rule == "flag-review")).all()
    # Every listing and the review are on the person's record (the note was read).
    assert sorted(set(reviews)) == ["manage", "read"]


def test_only_the_facility_and_not_the_one_who_accessed_review_it(app, client, clinic):
    station, other = clinic["station"], clinic["other"]
    assert _flags(client, clinic["other_staff_token"], station).status_code == 403
    assert _flags(client, clinic["other_staff_token"], other).get_json()["items"] == []
    body = {"outcome": "justified"}
    url = f"/api/v1/facilities/{station}/access-flags/{clinic['flag_id']}/review"
    assert client.post(url, headers={**bearer(clinic["doctor_token"]), **JSON},
                       json=body).status_code == 403
    assert client.post(url, headers={**bearer(clinic["other_staff_token"]), **JSON},
                       json=body).status_code == 403
    wrong_facility = f"/api/v1/facilities/{other}/access-flags/{clinic['flag_id']}/review"
    assert client.post(wrong_facility, headers={**bearer(clinic["other_staff_token"]), **JSON},
                       json=body).status_code == 404
    with client.unchecked():
        unknown = client.post(url, headers={**bearer(clinic["staff_token"]), **JSON},
                              json={"outcome": "fine"})
    assert unknown.status_code == 422
