"""Every record route × every identity × own and other citizens: the answer is the policy's.

For each combination the expected answer is computed from the pure policy (consent.policy)
with the facts the decision point loads, and the token's scopes; the HTTP answer must match:
permitted → 2xx, a denied entry → 404, a denied section or view → 403. No citizen ever
reaches another's data.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from auth.resource import load_principal
from auth.scopes import SECTION_RESOURCES
from consent.models import Guardianship
from consent.pdp import load_facts
from consent.policy import decide, visible_scope
from consent.policy_types import Target
from core.db import db, utcnow
from ehr.record_models import RecordEntry
from ehr.seed_records import _entry
from tests.ehr.samples import SAMPLES
from tests.support.auth import Tokens, token_for

IDENTITIES = ("patient", "guardian", "doctor", "other_doctor", "station", "stranger", "admin")
CITIZENS = ("patient", "child", "stranger")
SECTIONS = sorted(SAMPLES)


@pytest.fixture
def matrix(app, client, world):
    guardian = token_for(client, app)
    admin = token_for(client, app, role="admin")
    with app.app_context():
        db.session.add(Guardianship(
            id=uuid.uuid4(), guardian_citizen_id=guardian.login.citizen_id,
            dependant_citizen_id=world.child, kind="minor", relationship="mother",
            categories=[], valid_from=utcnow() - dt.timedelta(days=1), created_via="station",
        ))
        entries: dict[tuple[str, str], uuid.UUID] = {}
        for who in CITIZENS:
            citizen_id = getattr(world, who)
            for section in SECTIONS:
                body = dict(SAMPLES[section][0])
                if section == "immunizations":
                    body["occurrence_date"] = dt.date.today().isoformat()  # noqa: DTZ011
                entry = _entry(db.session, citizen_id=citizen_id, section=section, content=body,
                               author=world.doctor_id, facility=world.station)
                entries[(who, section)] = entry.id
        db.session.commit()
    tokens = {name: getattr(world, f"{name}_token") for name in IDENTITIES
              if name not in ("guardian", "admin")}
    tokens.update(guardian=guardian, admin=admin)
    return {"world": world, "tokens": tokens, "entries": entries}


SCOPE_DENIED = "scope"


def _expected(app: Any, token: Tokens, citizen_id: uuid.UUID, *, target: str, action: str,
              entry_id: uuid.UUID | None = None, resource: str, interaction: str,
              listing: bool = False) -> bool | str:
    """True/False from the policy, or SCOPE_DENIED when the token cannot ask at all (403)."""
    with app.app_context():
        now = utcnow()
        principal = load_principal(token.access_token, now=now)
        assert principal is not None
        if principal.context is None or not principal.has_scope(resource=resource,
                                                                 interaction=interaction):
            return SCOPE_DENIED
        actor = principal.policy_actor(acting_for=citizen_id)
        facts = load_facts(db.session, citizen_id=citizen_id, now=now)
        if listing:
            return visible_scope(actor=actor, citizen_id=citizen_id, section=target,
                                 facts=facts).permit
        if entry_id is not None:
            entry = db.session.get(RecordEntry, entry_id)
            tgt = Target(citizen_id=citizen_id, section=target, entry_id=entry.id,
                         sensitivity=entry.sensitivity,
                         author_practitioner_id=entry.author_practitioner_id,
                         clinical_date=entry.clinical_date, source=entry.source,
                         facility_id=entry.facility_id)
        else:
            source = {"citizen": "citizen-reported", "station": "station"}.get(
                principal.role, "clinician")
            tgt = Target(citizen_id=citizen_id, section=target, source=source,
                         clinical_date=dt.date.today())  # noqa: DTZ011
        return decide(actor=actor, target=tgt, action=action, facts=facts).permit


def _check(mismatches: list[str], label: str, status: int, allowed: bool | str, denied: int,
           ok: tuple[int, ...] = (200,)) -> None:
    if allowed == SCOPE_DENIED:
        expected: tuple[int, ...] = (403,)
    else:
        expected = ok if allowed else (denied,)
    if status not in expected:
        mismatches.append(f"{label}: got {status}, policy says {expected}")


@pytest.mark.parametrize("identity", IDENTITIES)
def test_route_identity_matrix(app, client, matrix, identity):
    world, token = matrix["world"], matrix["tokens"][identity]
    headers = token.headers
    mismatches: list[str] = []
    for who in CITIZENS:
        citizen_id = getattr(world, who)
        base = f"/api/v1/citizens/{citizen_id}"
        for section in SECTIONS:
            resource = SECTION_RESOURCES[section]
            entry_id = matrix["entries"][(who, section)]
            url = f"{base}/{section}"
            label = f"{identity}→{who}/{section}"

            allowed = _expected(app, token, citizen_id, target=section, action="read",
                                resource=resource, interaction="s", listing=True)
            response = client.get(url, headers=headers)
            _check(mismatches, label + " list", response.status_code, allowed, 403)
            if response.status_code == 200:
                for item in response.get_json()["items"]:
                    assert item["citizen_id"] == str(citizen_id)

            allowed = _expected(app, token, citizen_id, target=section, action="read",
                                entry_id=entry_id, resource=resource, interaction="r")
            response = client.get(f"{url}/{entry_id}", headers=headers)
            _check(mismatches, label + " read", response.status_code, allowed, 404)
            response = client.get(f"{url}/{entry_id}/versions", headers=headers)
            _check(mismatches, label + " versions", response.status_code, allowed, 404)
            etag = response.headers.get("ETag") if response.status_code == 200 else '"x"'

            allowed = _expected(app, token, citizen_id, target=section, action="create",
                                resource=resource, interaction="c")
            body = dict(SAMPLES[section][0])
            response = client.post(url, json=body, headers=headers)
            # Once permitted, the sample may still meet a check against the person (a date
            # before a child's birth): 422, and only after the permission.
            _check(mismatches, label + " create", response.status_code, allowed, 403,
                   ok=(201, 422))

            allowed = _expected(app, token, citizen_id, target=section, action="update",
                                entry_id=entry_id, resource=resource, interaction="u")
            current = client.get(f"{url}/{entry_id}", headers=world.doctor_token.headers)
            etag = current.headers.get("ETag", '"x"')
            response = client.patch(f"{url}/{entry_id}", json=SAMPLES[section][1],
                                    headers={**headers, "If-Match": etag})
            _check(mismatches, label + " update", response.status_code, allowed, 404)

        for path, target, resource in (
            ("/summary", "summary", "Patient"),
            ("/immunization-schedule", "immunization-schedule", "Immunization"),
            ("", "demographics", "Patient"),
            ("/export", "export", "Patient"),
            ("/family-doctor", "family-doctor", "Patient"),
        ):
            allowed = _expected(app, token, citizen_id, target=target, action="read",
                                resource=resource, interaction="r")
            response = client.get(base + path, headers=headers)
            _check(mismatches, f"{identity}→{who}{path or '/'}", response.status_code,
                   allowed, 403)
            if response.status_code == 200 and path in ("", "/summary", "/export"):
                text = response.get_data(as_text=True)
                for other in CITIZENS:
                    if other != who:
                        assert str(getattr(world, other)) not in text
    assert not mismatches, "\n".join(mismatches)


def _restricted_entry(app, world) -> uuid.UUID:
    with app.app_context():
        entry = _entry(db.session, citizen_id=world.patient, section="conditions",
                       content={"icd10_code": "F32.0", "clinical_status": "active",
                                "onset_date": "2023-02-10"},
                       author=world.other_doctor_id, facility=world.hospital)
        db.session.commit()
        assert entry.sensitivity == "mental-health"
        return entry.id


def test_grantee_before_during_and_after_a_consent(app, client, world):
    url = f"/api/v1/citizens/{world.patient}/allergies"
    client.post(url, json=SAMPLES["allergies"][0], headers=world.headers("doctor"))
    other = world.headers("other_doctor")
    assert client.get(url, headers=other).status_code == 403  # before
    grant = client.post(
        f"/api/v1/citizens/{world.patient}/consents", headers=world.headers("patient"),
        json={"grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
              "sections": ["allergies"], "access": "read"})
    assert grant.status_code == 201, grant.get_json()
    during = client.get(url, headers=other)
    assert during.status_code == 200  # during
    assert len(during.get_json()["items"]) == 1
    assert client.get(f"/api/v1/citizens/{world.patient}/conditions",
                      headers=other).status_code == 403  # only the granted section
    assert client.post(url, json=SAMPLES["allergies"][0], headers=other).status_code == 403
    revoked = client.delete(f"/api/v1/citizens/{world.patient}/consents/{grant.get_json()['id']}",
                            headers=world.headers("patient"))
    assert revoked.status_code in (200, 204)
    assert client.get(url, headers=other).status_code == 403  # the very next request


def test_expired_consent_stops_without_any_job(app, client, world):
    import time

    url = f"/api/v1/citizens/{world.patient}/allergies"
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat()
    grant = client.post(
        f"/api/v1/citizens/{world.patient}/consents", headers=world.headers("patient"),
        json={"grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
              "sections": ["allergies"], "expires_at": expires})
    assert grant.status_code == 201, grant.get_json()
    assert client.get(url, headers=world.headers("other_doctor")).status_code == 200
    time.sleep(2.5)
    assert client.get(url, headers=world.headers("other_doctor")).status_code == 403


def test_break_glass_window_before_and_after_it_closes(app, client, world):
    from consent.models import BreakGlassSession

    url = f"/api/v1/citizens/{world.patient}/allergies"
    other = world.headers("other_doctor")
    assert client.get(url, headers=other).status_code == 403
    opened = client.post(f"/api/v1/citizens/{world.patient}/break-glass",
                         json={"reason": "Bệnh nhân hôn mê tại cấp cứu"}, headers=other)
    assert opened.status_code == 201, opened.get_json()
    assert client.get(url, headers=other).status_code == 200
    restricted = _restricted_entry(app, world)
    assert client.get(f"/api/v1/citizens/{world.patient}/conditions/{restricted}",
                      headers=other).status_code == 404  # restricted stays closed
    with app.app_context():
        for session in db.session.query(BreakGlassSession).all():
            session.expires_at = utcnow() - dt.timedelta(seconds=1)
        db.session.commit()
    assert client.get(url, headers=other).status_code == 403  # the window has closed


def test_no_route_returns_a_restricted_entry_without_a_grant_naming_it(app, client, world):
    restricted = _restricted_entry(app, world)
    client.post(
        f"/api/v1/citizens/{world.patient}/consents", headers=world.headers("patient"),
        json={"grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
              "sections": ["conditions"], "access": "read"})
    base = f"/api/v1/citizens/{world.patient}"
    for who in ("doctor", "other_doctor", "station", "stranger"):
        headers = world.headers(who)
        for path in ("/conditions", f"/conditions/{restricted}",
                     f"/conditions/{restricted}/versions", "/conditions?fields=id,data",
                     "/summary", "/export", "/conditions?include_entered_in_error=true"):
            response = client.get(base + path, headers=headers)
            if response.mimetype == "application/problem+json":
                assert response.status_code in (403, 404), (who, path)
                continue  # the problem echoes the caller's own path, nothing more
            text = response.get_data(as_text=True)
            assert str(restricted) not in text, (who, path)
            assert "F32" not in text, (who, path)
    # The citizen sees their own restricted entry, and a grant naming the category opens it.
    own = client.get(f"{base}/conditions/{restricted}", headers=world.headers("patient"))
    assert own.status_code == 200
    client.post(
        f"{base}/consents", headers=world.headers("patient"),
        json={"grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
              "sections": ["conditions"], "categories": ["mental-health"], "access": "read"})
    named = client.get(f"{base}/conditions/{restricted}", headers=world.headers("other_doctor"))
    assert named.status_code == 200
