"""Every record route × every identity × own and other citizens: the answer is the policy's.

For each combination the expected answer is computed from the pure policy (consent.policy)
with the facts the decision point loads, and the token's scopes; the HTTP answer must match:
permitted → 2xx (a create 201 with its entry, a correction 200 with the change), a denied
entry → 404, a denied section or view → 403 when the policy relates the caller to the person
and 404 (as for a person who does not exist) when it does not. Besides the section routes:
lookup, demographics update, family-doctor registration, newborn registration and the station
batch (each item its own decision). No citizen ever reaches another's data. The child and the
13-year-old were registered by the world's station: their registry acts are in the station's
catchment, not in that of station staff of another commune. Besides one entry per section,
the patient and the 13-year-old each have a mental-health diagnosis: a guardian of the teen,
a proxy of the patient without and with that category, and everyone else see it only as the
policy says.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from auth.resource import has_scope, load_caller, smart_context
from auth.scopes import SECTION_RESOURCES
from consent.models import Guardianship
from consent.pdp import forget_facts, load_facts
from consent.policy import decide, visible_scope
from consent.policy_types import Target
from core.conditional import version_etag
from core.db import db, utcnow
from ehr.record_models import RecordEntry
from ehr.seed_records import _entry
from registry.models import Citizen, FamilyDoctorAssignment
from registry.reference.health_id import make_health_id
from tests.ehr.samples import SAMPLES, TODAY, YESTERDAY, body_for
from tests.support.auth import Tokens, health_id_of, make_citizen, make_facility, token_for

IDENTITIES = ("patient", "guardian", "teen_guardian", "proxy", "proxy_mental_health", "doctor",
              "other_doctor", "station", "vaccinator", "far_station", "stranger", "admin")
CITIZENS = ("patient", "child", "teen", "stranger")
SECTIONS = sorted(SAMPLES)
# Every section's sample (normal), and a restricted diagnosis for the patient and the teen.
RESTRICTED = ("conditions", "mental-health")
KINDS = [(section, "normal") for section in SECTIONS] + [RESTRICTED]
RESTRICTED_BODY = {"icd10_code": "F32.0", "clinical_status": "active",
                   "onset_date": "2023-02-10"}
STATION_STAFF = ("vaccinator", "far_station")


@pytest.fixture
def matrix(app, client, world, vaccinator):
    guardian, teen_guardian = token_for(client, app), token_for(client, app)
    proxy, proxy_mental_health = token_for(client, app), token_for(client, app)
    admin = token_for(client, app, role="admin")
    # Station staff of another commune's station: the same role, outside the catchment.
    far_station = token_for(client, app, role="station", facility=make_facility(app))
    world.teen = make_citizen(app, full_name="Trần Thị Mai", sex="female",
                              date_of_birth=TODAY.replace(day=1) - dt.timedelta(days=13 * 366))
    relations = ((guardian, world.child, "minor", []), (teen_guardian, world.teen, "minor", []),
                 (proxy, world.patient, "proxy", []),
                 (proxy_mental_health, world.patient, "proxy", ["mental-health"]))
    with app.app_context():
        for holder, dependant, kind, categories in relations:
            db.session.add(Guardianship(
                id=uuid.uuid4(), guardian_citizen_id=holder.login.citizen_id,
                dependant_citizen_id=dependant, kind=kind,
                relationship="mother" if kind == "minor" else "relative",
                categories=categories, valid_from=utcnow() - dt.timedelta(days=1),
                created_via="station",
            ))
        for registered in (world.child, world.teen):
            db.session.get(Citizen, registered).registered_by_facility_id = world.station
        entries: dict[tuple[str, str, str], uuid.UUID] = {}
        births: dict[str, dt.date] = {}
        for who in CITIZENS:
            citizen_id = getattr(world, who)
            births[who] = db.session.get(Citizen, citizen_id).date_of_birth
            for section, label in KINDS:
                if label != "normal" and who not in ("patient", "teen"):
                    continue
                body = dict(SAMPLES[section][0] if label == "normal" else RESTRICTED_BODY)
                source = "clinician"
                if section == "immunizations":
                    body["occurrence_date"] = dt.date.today().isoformat()  # noqa: DTZ011
                    source = "station"  # recorded by the world's station (station-own-entry)
                entry = _entry(db.session, citizen_id=citizen_id, section=section, content=body,
                               author=world.doctor_id, facility=world.station, source=source)
                assert entry.sensitivity == label
                entries[(who, section, label)] = entry.id
        db.session.commit()
    tokens = {name: getattr(world, f"{name}_token") for name in IDENTITIES
              if hasattr(world, f"{name}_token")}
    tokens.update(guardian=guardian, teen_guardian=teen_guardian, proxy=proxy,
                  proxy_mental_health=proxy_mental_health, far_station=far_station, admin=admin)
    return {"world": world, "tokens": tokens, "entries": entries, "births": births}


SCOPE_DENIED = "scope"
UNRELATED = "unrelated"  # denied, and nothing relates the caller to the person: 404


def _expected(app: Any, token: Tokens, citizen_id: uuid.UUID, *, target: str, action: str,
              entry_id: uuid.UUID | None = None, resource: str, interaction: str,
              listing: bool = False, sensitivity: str = "normal") -> bool | str:
    """True/False from the policy (UNRELATED for a denial to a caller the policy relates to
    the person in no way), or SCOPE_DENIED when the token cannot ask at all (403)."""
    with app.app_context():
        now = utcnow()
        principal = load_caller(token.access_token, now=now)
        assert principal is not None
        if smart_context(principal) is None or not has_scope(principal, resource=resource,
                                                                 interaction=interaction):
            return SCOPE_DENIED
        actor = principal.acting_for_citizen(citizen_id)
        forget_facts(db.session)
        facts = load_facts(db.session, citizen_id=citizen_id, now=now,
                           parts=frozenset({"catchment"}))
        if listing:
            scope = visible_scope(actor=actor, citizen_id=citizen_id, section=target,
                                  facts=facts)
            return scope.permit or (False if scope.related else UNRELATED)
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
                         sensitivity=sensitivity,
                         clinical_date=dt.date.today())  # noqa: DTZ011
        decision = decide(actor=actor, target=tgt, action=action, facts=facts)
        return decision.permit or (False if decision.related else UNRELATED)


def _check(mismatches: list[str], label: str, status: int, allowed: bool | str, denied: int,
           ok: tuple[int, ...] = (200,)) -> bool:
    """Record a mismatch; True when the answer is the permitted one (its body is checked)."""
    if allowed == SCOPE_DENIED:
        expected: tuple[int, ...] = (403,)
    elif allowed == UNRELATED:
        expected = (404,)
    else:
        expected = ok if allowed else (denied,)
    if status not in expected:
        mismatches.append(f"{label}: got {status}, policy says {expected}")
    return allowed is True and status in ok


def _etag(app: Any, model: Any, row_id: uuid.UUID) -> str:
    """The current version ETag, read from the database (the caller may not read the row)."""
    with app.app_context():
        return version_etag(row_id, db.session.get(model, row_id).version)


@pytest.mark.parametrize("identity", IDENTITIES)
def test_route_identity_matrix(app, client, matrix, identity):
    world, token = matrix["world"], matrix["tokens"][identity]
    headers = token.headers
    mismatches: list[str] = []
    # Before the loop below moves registrations: the care lists over many people.
    _check_care_lists(app, client, world, token, identity, mismatches)
    _check_worklist(app, client, world, token, identity, mismatches)
    for who in CITIZENS:
        citizen_id = getattr(world, who)
        base = f"/api/v1/citizens/{citizen_id}"
        for section, sensitivity in KINDS:
            entry_id = matrix["entries"].get((who, section, sensitivity))
            if entry_id is None:
                continue
            resource = SECTION_RESOURCES[section]
            url = f"{base}/{section}"
            label = f"{identity}→{who}/{section}"
            if sensitivity != "normal":
                label += f" ({sensitivity})"

            readable = _expected(app, token, citizen_id, target=section, action="read",
                                 entry_id=entry_id, resource=resource, interaction="r")
            if sensitivity == "normal":
                allowed = _expected(app, token, citizen_id, target=section, action="read",
                                    resource=resource, interaction="s", listing=True)
                response = client.get(url, headers=headers)
                _check(mismatches, label + " list", response.status_code, allowed, 403)
            else:
                response = client.get(url, headers=headers)  # checked above, with the section
            if response.status_code == 200:
                listed = {item["id"] for item in response.get_json()["items"]}
                for item in response.get_json()["items"]:
                    assert item["citizen_id"] == str(citizen_id)
                if (str(entry_id) in listed) != (readable is True):
                    mismatches.append(f"{label} listed: {str(entry_id) in listed}, "
                                      f"policy says readable={readable}")

            response = client.get(f"{url}/{entry_id}", headers=headers)
            _check(mismatches, label + " read", response.status_code, readable, 404)
            response = client.get(f"{url}/{entry_id}/versions", headers=headers)
            _check(mismatches, label + " versions", response.status_code, readable, 404)

            # A body valid for this citizen: a permitted create is a 201, nothing else.
            allowed = _expected(app, token, citizen_id, target=section, action="create",
                                resource=resource, interaction="c")
            create_body = body_for(section, matrix["births"][who])
            if sensitivity != "normal":
                allowed = _expected(app, token, citizen_id, target=section, action="create",
                                    resource=resource, interaction="c", sensitivity=sensitivity)
                create_body = {**RESTRICTED_BODY, "onset_date": YESTERDAY}
            response = client.post(url, json=create_body, headers=headers)
            if _check(mismatches, label + " create", response.status_code, allowed, 403,
                      ok=(201,)):
                created = response.get_json()
                assert (created["citizen_id"], created["section"]) == (str(citizen_id), section)
                assert created["sensitivity"] == sensitivity

            allowed = _expected(app, token, citizen_id, target=section, action="update",
                                entry_id=entry_id, resource=resource, interaction="u")
            response = client.patch(f"{url}/{entry_id}", json=SAMPLES[section][1], headers={
                **headers, "If-Match": _etag(app, RecordEntry, entry_id)})
            if _check(mismatches, label + " update", response.status_code, allowed, 404):
                field, value = SAMPLES[section][2]
                assert response.get_json()["data"][field] == value

            allowed = _expected(app, token, citizen_id, target=section,
                                action="entered-in-error", entry_id=entry_id, resource=resource,
                                interaction="u")
            response = client.post(f"{url}/{entry_id}/entered-in-error",
                                   json={"reason": "Nhập nhầm"}, headers=headers)
            if _check(mismatches, label + " entered-in-error", response.status_code, allowed,
                      404):
                assert response.get_json()["status"] == "entered-in-error"

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

        # The vaccination card is the immunizations list's read, in another shape.
        allowed = _expected(app, token, citizen_id, target="immunizations", action="read",
                            resource="Immunization", interaction="r", listing=True)
        response = client.get(base + "/vaccination-card", headers=headers)
        if _check(mismatches, f"{identity}→{who}/vaccination-card", response.status_code,
                  allowed, 403):
            assert str(citizen_id) in response.get_data(as_text=True)

        allowed = _expected(app, token, citizen_id, target="identity-lookup", action="lookup",
                            resource="Patient", interaction="s")
        response = client.post("/api/v1/citizens/lookup", headers=headers,
                               json={"health_id": health_id_of(app, citizen_id)})
        if _check(mismatches, f"{identity}→{who} lookup", response.status_code, allowed, 403):
            assert response.get_json()["id"] == str(citizen_id)

        allowed = _expected(app, token, citizen_id, target="demographics", action="update",
                            resource="Patient", interaction="u")
        # A person changes contact details; station staff correct identity data.
        station = identity in STATION_STAFF
        change = {"sex": "female" if health_id_of(app, citizen_id)[3] in "13579" else "male"} \
            if station else {"phone": "0912 345 678"}
        response = client.patch(base, json=change, headers={
            **headers, "If-Match": _etag(app, Citizen, citizen_id)})
        if _check(mismatches, f"{identity}→{who} demographics update", response.status_code,
                  allowed, 403):
            shown = response.get_json()
            assert shown["id"] == str(citizen_id)
            assert (shown["sex"] if station else shown["phone"]) == (
                change["sex"] if station else "+84912345678")

        allowed = _expected(app, token, citizen_id, target="family-doctor", action="manage",
                            resource="Patient", interaction="u")
        response = client.put(base + "/family-doctor", headers=headers, json={
            "practitioner_id": str(world.other_doctor_id), "facility_id": str(world.hospital)})
        if _check(mismatches, f"{identity}→{who} family-doctor", response.status_code, allowed,
                  403):
            assert response.get_json()["current"]["practitioner_id"] == str(
                world.other_doctor_id)

    _check_registration(app, client, world, token, identity, mismatches)
    _check_batch(app, client, world, token, identity, mismatches)
    assert not mismatches, "\n".join(mismatches)


def _check_care_lists(app: Any, client: Any, world: Any, token: Tokens, identity: str,
                      mismatches: list[str]) -> None:
    """The family doctor's panel lists exactly the world's people registered with the caller
    whom the policy lets the caller see on it; anyone but a practitioner gets 403."""
    response = client.get("/api/v1/me/patients", headers=token.headers)
    with app.app_context():
        principal = load_caller(token.access_token, now=utcnow())
        practitioner = principal.practitioner_id if principal.role == "practitioner" else None
        registered = {
            who for who in CITIZENS
            if practitioner is not None and db.session.scalar(
                select(FamilyDoctorAssignment.id).where(
                    FamilyDoctorAssignment.citizen_id == getattr(world, who),
                    FamilyDoctorAssignment.practitioner_id == practitioner,
                    FamilyDoctorAssignment.ended_at.is_(None))) is not None}
    if practitioner is None or not has_scope(principal, resource="Patient", interaction="s"):
        if response.status_code != 403:
            mismatches.append(f"{identity} panel: got {response.status_code}, expected 403")
        return
    if response.status_code != 200:
        mismatches.append(f"{identity} panel: got {response.status_code}, expected 200")
        return
    listed = {item["citizen_id"] for item in response.get_json()["items"]}
    expected = {str(getattr(world, who)) for who in registered
                if _expected(app, token, getattr(world, who), target="care-panel",
                             action="read", resource="Patient", interaction="s") is True}
    if listed != expected:
        mismatches.append(f"{identity} panel lists {sorted(listed)}, policy says "
                          f"{sorted(expected)}")


def _check_worklist(app: Any, client: Any, world: Any, token: Tokens, identity: str,
                    mismatches: list[str]) -> None:
    """The world's station's worklist: its own staff and system read it (each child listed is
    one the policy lets them read); station staff of another commune, practitioners, citizens
    and the admin get 403."""
    response = client.get(f"/api/v1/facilities/{world.station}/immunization-worklist",
                          headers=token.headers)
    with app.app_context():
        principal = load_caller(token.access_token, now=utcnow())
    own = principal.role == "station" and world.station in principal.facility_ids
    expected = 200 if own else 403
    if response.status_code != expected:
        mismatches.append(f"{identity} worklist: got {response.status_code}, "
                          f"expected {expected}")
        return
    if own:
        listed = {child["child"]["id"] for group in response.get_json()["villages"]
                  for child in group["children"]}
        for who in listed:
            allowed = _expected(app, token, uuid.UUID(who), target="immunization-worklist",
                                action="read", resource="Immunization", interaction="s")
            if allowed is not True:
                mismatches.append(f"{identity} worklist lists {who}: policy says {allowed}")
        if str(world.child) not in listed:
            mismatches.append(f"{identity} worklist misses the station's infant")


def test_the_matrix_pins_the_perimeter(app, client, matrix):
    """The policy the matrix compares against says what issue 14 asks, for the new identities:
    the HTTP answers above agree with it, and it agrees with these."""
    world, tokens, entries = matrix["world"], matrix["tokens"], matrix["entries"]

    def expect(identity: str, who: str, **kwargs: Any) -> bool | str:
        return _expected(app, tokens[identity], getattr(world, who), **kwargs)

    teen_mh = entries[("teen", *RESTRICTED)]
    patient_mh = entries[("patient", *RESTRICTED)]
    read = {"target": "conditions", "action": "read", "resource": "Condition",
            "interaction": "r"}
    assert expect("teen_guardian", "teen", entry_id=teen_mh, **read) is False
    assert expect("teen_guardian", "teen", entry_id=entries[("teen", "conditions", "normal")],
                  **read) is True
    assert expect("proxy", "patient", entry_id=patient_mh, **read) is False
    assert expect("proxy_mental_health", "patient", entry_id=patient_mh, **read) is True
    registry = {"action": "manage", "resource": "Patient", "interaction": "u"}
    assert expect("vaccinator", "teen", target="family-doctor", **registry) is True
    for who in ("teen", "child", "patient"):
        assert expect("far_station", who, target="family-doctor", **registry) == UNRELATED
        assert expect("far_station", who, target="guardians", **registry) == UNRELATED
    assert expect("stranger", "teen", target="summary", action="read", resource="Patient",
                  interaction="r") == UNRELATED


def _check_registration(app, client, world, token, identity, mismatches) -> None:
    """POST /citizens: the policy's answer for a person who does not exist yet."""
    birth = TODAY - dt.timedelta(days=3)
    health_id = make_health_id(province_code="027", date_of_birth=birth, sex="female",
                               serial=secrets.randbelow(1_000_000))
    allowed = _expected(app, token, uuid.uuid4(), target="demographics", action="create",
                        resource="Patient", interaction="c")
    response = client.post("/api/v1/citizens", headers=token.headers, json={
        "health_id": health_id, "full_name": "Lê Ngọc Hân", "date_of_birth": birth.isoformat(),
        "sex": "female"})
    if _check(mismatches, f"{identity} registration", response.status_code, allowed, 403,
              ok=(201,)):
        assert response.get_json()["health_id"] == health_id


def _check_batch(app, client, world, token, identity, mismatches) -> None:
    """POST /immunizations/batch: the envelope needs the scope, each item the policy."""
    # A refused item is 403 to an uploader related to the person, and the 404 of a person who
    # does not exist to anyone else (the batch tells no more than the person's routes).
    allowed = {who: _expected(app, token, getattr(world, who), target="immunizations",
                              action="create", resource="Immunization", interaction="c")
               for who in CITIZENS}
    items = [{"client_item_id": f"m-{who}", "citizen_id": str(getattr(world, who)),
              "vaccine_code": "TD", "dose_number": 2, "occurrence_date": YESTERDAY,
              "lot_number": "TD-M"} for who in CITIZENS]
    response = client.post("/api/v1/immunizations/batch", json={"items": items},
                           headers=token.headers)
    if SCOPE_DENIED in allowed.values():
        _check(mismatches, f"{identity} batch", response.status_code, SCOPE_DENIED, 403)
        return
    if response.status_code != 200:
        mismatches.append(f"{identity} batch: got {response.status_code}, expected 200")
        return
    for who, result in zip(CITIZENS, response.get_json()["results"], strict=True):
        if _check(mismatches, f"{identity}→{who} batch item", result["status"], allowed[who],
                  403, ok=(201,)):
            assert result["entry"]["citizen_id"] == str(getattr(world, who))


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
    assert client.get(url, headers=other).status_code == 404  # before: no one to the patient
    grant = client.post(
        f"/api/v1/citizens/{world.patient}/consents", headers=world.headers("patient"),
        json={"grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
              "sections": ["allergies"], "access": "read"})
    assert grant.status_code == 201, grant.get_json()
    during = client.get(url, headers=other)
    assert during.status_code == 200  # during
    assert len(during.get_json()["items"]) == 1
    assert client.get(f"/api/v1/citizens/{world.patient}/conditions",
                      headers=other).status_code == 403  # only the granted section (related)
    assert client.post(url, json=SAMPLES["allergies"][0], headers=other).status_code == 403
    revoked = client.delete(f"/api/v1/citizens/{world.patient}/consents/{grant.get_json()['id']}",
                            headers=world.headers("patient"))
    assert revoked.status_code in (200, 204)
    # The very next request: refused, and told why (a consent they held, revoked: 403).
    assert client.get(url, headers=other).status_code == 403


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
    assert client.get(url, headers=other).status_code == 404  # no one to the patient yet
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
