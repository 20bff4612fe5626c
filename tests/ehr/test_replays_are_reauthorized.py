"""Issue 14: a stored answer (Idempotency-Key, batch item) is a read of the entry it created.

A retry replays the first answer byte for byte, but only to a caller who may read that entry
now: the token's read scope (403) and the policy (404, audited). Before, the stored 201 body
came back to a caller whose consent had been revoked or whose token no longer read the
section.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from consent.models import AuditEvent
from core.db import db
from tests.ehr.samples import SAMPLES, YESTERDAY
from tests.support.auth import station_token, token_for

JSON = {"Content-Type": "application/json"}


def _grant(client, world, *, sections: list[str]) -> str:
    granted = client.post(
        f"/api/v1/citizens/{world.patient}/consents", headers=world.headers("patient"),
        json={"grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
              "sections": sections, "access": "read-write"})
    assert granted.status_code == 201, granted.get_json()
    return granted.get_json()["id"]


def _revoke(client, world, consent_id: str) -> None:
    revoked = client.delete(f"/api/v1/citizens/{world.patient}/consents/{consent_id}",
                            headers=world.headers("patient"))
    assert revoked.status_code in (200, 204), revoked.get_json()


def _shows_nothing(response, *secrets: str) -> None:
    assert response.mimetype == "application/problem+json", response.get_data(as_text=True)
    assert "Idempotent-Replayed" not in response.headers
    assert "Location" not in response.headers
    text = response.get_data(as_text=True)
    for secret in secrets:
        assert secret not in text


def _read_events(app, entry_id: str) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.execute(select(
            AuditEvent.actor_role, AuditEvent.action, AuditEvent.decision,
        ).where(AuditEvent.entry_id == uuid.UUID(entry_id)).order_by(AuditEvent.occurred_at))
        return [tuple(row) for row in rows]


def test_a_replay_after_the_consent_is_revoked_is_a_404_without_the_entry(app, client, world):
    consent_id = _grant(client, world, sections=["allergies"])
    url = f"/api/v1/citizens/{world.patient}/allergies"
    body = SAMPLES["allergies"][0]
    headers = world.headers("other_doctor", **{"Idempotency-Key": "allergy-retry-000001"})
    first = client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    entry_id = first.get_json()["id"]
    again = client.post(url, json=body, headers=headers)
    assert (again.status_code, again.get_json()) == (201, first.get_json())
    assert again.headers["Idempotent-Replayed"] == "true"

    _revoke(client, world, consent_id)
    after = client.post(url, json=body, headers=headers)
    assert after.status_code == 404, after.get_json()
    _shows_nothing(after, entry_id, "Penicillin", "Nổi mề đay")
    # The replay was decided like a read of the entry, and audited: permitted, then denied.
    reads = [event for event in _read_events(app, entry_id) if event[1] == "read"]
    assert reads == [("practitioner", "read", "permit"), ("practitioner", "read", "deny")]


def test_a_replay_to_a_token_that_no_longer_reads_the_section_is_a_403(app, client, world):
    url = f"/api/v1/citizens/{world.patient}/allergies"
    body = SAMPLES["allergies"][0]
    key = {"Idempotency-Key": "allergy-retry-000002"}
    first = client.post(url, json=body, headers={**world.doctor_token.headers, **key})
    assert first.status_code == 201, first.get_json()
    # The same account on the same client, now with a token that may create but not read.
    narrow = token_for(client, app, login=world.doctor_token.login,
                       scopes="openid user/AllergyIntolerance.c")
    after = client.post(url, json=body, headers={**narrow.headers, **key})
    assert after.status_code == 403, after.get_json()
    assert after.get_json()["type"].endswith("insufficient-scope")
    _shows_nothing(after, first.get_json()["id"], "Penicillin")


def test_a_batch_replay_is_answered_only_to_who_may_read_the_entry(app, client, world):
    consent_id = _grant(client, world, sections=["immunizations"])
    items = [{"client_item_id": "outreach-1", "citizen_id": str(world.patient),
              "vaccine_code": "TD", "dose_number": 1, "occurrence_date": YESTERDAY,
              "lot_number": "TD-RETRY-01"}]
    url = "/api/v1/immunizations/batch"
    first = client.post(url, json={"items": items}, headers=world.headers("other_doctor"))
    assert [r["status"] for r in first.get_json()["results"]] == [201], first.get_json()
    entry_id = first.get_json()["results"][0]["entry"]["id"]
    again = client.post(url, json={"items": items}, headers=world.headers("other_doctor"))
    assert [r["status"] for r in again.get_json()["results"]] == [200]

    _revoke(client, world, consent_id)
    after = client.post(url, json={"items": items}, headers=world.headers("other_doctor"))
    assert after.status_code == 200
    (result,) = after.get_json()["results"]
    assert result["status"] == 404, result
    assert "entry" not in result
    assert entry_id not in after.get_data(as_text=True)
    assert "TD-RETRY-01" not in after.get_data(as_text=True)
    assert [e for e in _read_events(app, entry_id) if e[1] == "read"][-1] == (
        "practitioner", "read", "deny")


def test_a_station_batch_replay_needs_the_read_scope(app, client, world):
    items = [{"client_item_id": "outreach-2", "citizen_id": str(world.child),
              "vaccine_code": "BCG", "dose_number": 1, "occurrence_date": YESTERDAY,
              "lot_number": "BCG-RETRY-01"}]
    url = "/api/v1/immunizations/batch"
    first = client.post(url, json={"items": items}, headers=world.headers("station"))
    assert [r["status"] for r in first.get_json()["results"]] == [201], first.get_json()
    # The same station system, a token that may create immunizations and read nothing.
    create_only = station_token(client, app, scopes="system/Immunization.c",
                                oauth_client=world.station_token.client)
    after = client.post(url, json={"items": items}, headers=create_only.headers)
    (result,) = after.get_json()["results"]
    assert result["status"] == 403, result
    assert "entry" not in result
    assert result["problem"]["type"].endswith("insufficient-scope")
    assert first.get_json()["results"][0]["entry"]["id"] not in after.get_data(as_text=True)
