"""`GET /api/v1/me` for every kind of token."""

from __future__ import annotations

import uuid

from auth.api import DEPENDANTS
from tests.support.auth import bearer, make_citizen, station_token, token_for


def test_citizen(app, client):
    citizen = make_citizen(app, full_name="Trần Thị Bình")
    tokens = token_for(client, app, citizen=citizen, scopes="openid patient/*.rs")
    response = client.get("/api/v1/me", headers=bearer(tokens))
    assert response.status_code == 200
    assert response.get_json() == {
        "role": "citizen",
        "account_id": str(tokens.login.account_id),
        "client_id": "test-app",
        "scopes": ["openid", "patient/*.rs"],
        "citizen_id": str(citizen),
        "practitioner_id": None,
        "facility_ids": [],
        "facilities": [],
        "display_name": "Trần Thị Bình",
        "dependants": [],
    }


def test_dependants_come_from_the_guardianship_hook(app, client):
    guardian = make_citizen(app)
    child = uuid.uuid4()
    calls = []

    def dependants(session, citizen_id):
        calls.append(citizen_id)
        return [{"citizen_id": str(child), "full_name": "Bé Na"}]

    DEPENDANTS.install(app, dependants)
    tokens = token_for(client, app, citizen=guardian)
    body = client.get("/api/v1/me", headers=bearer(tokens)).get_json()
    assert body["dependants"] == [{"citizen_id": str(child), "full_name": "Bé Na"}]
    assert calls == [guardian]

    doctor = token_for(client, app, role="practitioner")
    assert client.get("/api/v1/me", headers=bearer(doctor)).get_json()["dependants"] == []
    DEPENDANTS.uninstall(app)
    assert client.get("/api/v1/me", headers=bearer(tokens)).get_json()["dependants"] == []


def test_practitioner_station_and_admin(app, client):
    doctor = token_for(client, app, role="practitioner")
    body = client.get("/api/v1/me", headers=bearer(doctor)).get_json()
    assert body["role"] == "practitioner"
    assert body["practitioner_id"] == str(doctor.login.practitioner_id)
    assert body["display_name"] == "Bác sĩ Thử Nghiệm"
    assert body["facilities"][0]["kind"] == "commune-health-station"

    admin = token_for(client, app, role="admin")
    body = client.get("/api/v1/me", headers=bearer(admin)).get_json()
    assert body["role"] == "admin"
    assert body["display_name"] == admin.login.username
    assert body["scopes"] == ["openid", "profile"]

    system = station_token(client, app)
    body = client.get("/api/v1/me", headers=bearer(system)).get_json()
    assert body["role"] == "station"
    assert body["display_name"] == "Hệ thống trạm y tế"


def test_english_problem_on_request(app, client):
    response = client.get("/api/v1/me", headers={"Accept-Language": "en"})
    assert response.get_json()["title"] == "Access token required"
