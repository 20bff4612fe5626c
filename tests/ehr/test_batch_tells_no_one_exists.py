"""The station batch answers per item; an item about a person the uploader has no relationship
with must answer exactly as an item about a person who does not exist (issue 14: no answer
tells who exists), whether its body is valid or not."""

from __future__ import annotations

import uuid

from tests.ehr.samples import YESTERDAY


def _item(key: str, citizen: uuid.UUID, **extra: object) -> dict[str, object]:
    return {"client_item_id": key, "citizen_id": str(citizen), "vaccine_code": "TD",
            "dose_number": 2, "occurrence_date": YESTERDAY, "lot_number": "TD-1", **extra}


def _outcome(result: dict) -> tuple[int, str | None, object]:
    problem = result.get("problem") or {}
    return result["status"], problem.get("type"), sorted(problem.get("errors") or {})


def test_an_unrelated_uploader_cannot_tell_a_real_person_from_a_made_up_one(client, world):
    ghost = uuid.uuid4()
    items = [_item("real", world.stranger), _item("ghost", ghost),
             _item("real-bad", world.stranger, dose_number=0),
             _item("ghost-bad", ghost, dose_number=0)]
    response = client.post("/api/v1/immunizations/batch", json={"items": items},
                           headers=world.headers("other_doctor"))
    assert response.status_code == 200, response.get_json()
    real, made_up, real_bad, made_up_bad = response.get_json()["results"]
    assert _outcome(real) == _outcome(made_up)
    assert _outcome(real)[0] == 404
    assert _outcome(real_bad) == _outcome(made_up_bad)
    assert _outcome(real_bad)[0] == 422  # the shape is checked first, for everyone


def test_a_related_uploader_is_told_why(client, world):
    # A doctor the patient granted read access to their immunizations is related to them: her
    # dose is refused with 403 (read-only), not the 404 of a stranger.
    grant = client.post(
        f"/api/v1/citizens/{world.patient}/consents", headers=world.headers("patient"),
        json={"grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
              "sections": ["immunizations"], "access": "read"})
    assert grant.status_code == 201, grant.get_json()
    response = client.post("/api/v1/immunizations/batch",
                           json={"items": [_item("read-only", world.patient)]},
                           headers=world.headers("other_doctor"))
    assert response.status_code == 200, response.get_json()
    [result] = response.get_json()["results"]
    assert _outcome(result)[:2] == (403, "urn:phr-vn:problem:section-forbidden")


def test_a_person_uploading_their_own_dose_reports_it(client, world):
    """A person's own dose (from their vaccination book) is a citizen-reported one, unverified
    until station staff verify it: the batch answers as the section route does."""
    response = client.post("/api/v1/immunizations/batch",
                           json={"items": [_item("own", world.patient)]},
                           headers=world.headers("patient"))
    assert response.status_code == 200, response.get_json()
    [result] = response.get_json()["results"]
    assert result["status"] == 201, result
    assert result["entry"]["source"] == "citizen-reported"
    assert result["entry"]["verification"]["status"] == "unverified"
