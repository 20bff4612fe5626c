"""A replayed Idempotency-Key answer of a consent route is served only after the decision a read
of it gets now (issue 14): a stored 201 shows the grantee and the terms, and a caller who lost
their standing must not get it back by retrying."""

from __future__ import annotations

import datetime as dt
import uuid

from core.db import db
from registry.reference.health_id import make_health_id
from tests.support.auth import bearer, make_facility, station_token, token_for

JSON = {"Content-Type": "application/json"}


def _register(http, station, *, name, born, sex, serial, guardians=()):
    body = {"health_id": make_health_id(province_code="001", date_of_birth=born, sex=sex,
                                        serial=serial),
            "full_name": name, "date_of_birth": born.isoformat(), "sex": sex}
    if guardians:
        body["guardians"] = list(guardians)
    response = http.post("/api/v1/citizens", json=body, headers=station.headers)
    assert response.status_code == 201, response.get_json()
    return uuid.UUID(response.get_json()["id"]), body


def test_a_former_guardian_replaying_a_grant_gets_the_denial_not_the_consent(app, client):
    facility = make_facility(app)
    station = station_token(client, app, facility=facility)
    mother, mother_body = _register(client, station, name="Lê Thị Hoa", sex="female",
                                    born=dt.date(1994, 2, 3), serial=412_001)
    born = dt.date.today() - dt.timedelta(days=40)  # noqa: DTZ011
    child, _ = _register(client, station, name="Lê Văn Bình", sex="male", born=born,
                         serial=412_002, guardians=[{
                             "health_id": mother_body["health_id"],
                             "date_of_birth": mother_body["date_of_birth"],
                             "relationship": "mother"}])
    parent = bearer(token_for(client, app, citizen=mother))
    base = f"/api/v1/citizens/{child}"
    grant = {**parent, **JSON, "Idempotency-Key": "grant-after-step-down-01"}
    body = {"grantee": {"type": "facility", "id": str(facility)}, "sections": ["allergies"]}
    first = client.post(base + "/consents", headers=grant, json=body)
    assert first.status_code == 201, first.get_json()
    replay = client.post(base + "/consents", headers=grant, json=body)
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (201, "true")

    [guardianship] = client.get(base + "/guardians", headers=parent).get_json()["items"]
    stepped = client.delete(f"{base}/guardians/{guardianship['id']}", headers=parent)
    assert stepped.status_code == 200, stepped.get_json()

    again = client.post(base + "/consents", headers=grant, json=body)
    assert again.status_code in (403, 404), again.get_json()
    assert again.mimetype == "application/problem+json"
    assert "Idempotent-Replayed" not in again.headers
    assert first.get_json()["id"] not in again.get_data(as_text=True)
    with app.app_context():
        from sqlalchemy import select

        from consent.models import AuditEvent

        last = db.session.scalars(select(AuditEvent).where(AuditEvent.citizen_id == child)
                                  .order_by(AuditEvent.occurred_at.desc())).first()
        assert (last.section, last.action, last.decision) == ("consents", "read", "deny")
