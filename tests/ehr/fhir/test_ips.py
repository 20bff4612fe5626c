"""Issue 16, the International Patient Summary (`Patient/{id}/$summary`) and the FHIR export
(`Patient/{id}/$everything`, `export` with `Accept: application/fhir+json`).

Over HTTP with real tokens: the IPS parses into FHIR R4B models, is a document whose first
entry is the Composition (LOINC 60591-5), holds the required sections with escaped XHTML
narratives in the reader's language, says so when a section is empty, and every reference in
it resolves inside the Bundle. It holds exactly what the JSON summary shows the same caller
(the same 403/404 when that is refused); a restricted entry appears only with a grant; one
audited decision, as the JSON summary. `$everything` holds exactly the export's entries.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.composition import Composition
from sqlalchemy import func, select

from consent.models import AuditEvent
from core.db import db
from tests.ehr.samples import NOW_UTC, SAMPLES, YESTERDAY
from tests.support.auth import ClientInfo, Login, bearer, code_for, exchange

FHIR = "application/fhir+json"
XHTML = "{http://www.w3.org/1999/xhtml}"
LOINC = "http://loinc.org"
SECTION_CODES = {"medications": "10160-0", "allergies": "48765-2", "problems": "11450-4",
                 "immunizations": "11369-6", "results": "30954-2", "vital-signs": "8716-3"}
REQUIRED = {"10160-0", "48765-2", "11450-4"}
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
# What people typed, made to break a narrative that does not escape it.
NASTY = "<script>alert('x')</script> Tôm & cua"


# --- helpers ----------------------------------------------------------------------------------

def _create(client: Any, citizen: uuid.UUID, section: str, body: dict[str, Any],
            headers: dict[str, str]) -> str:
    response = client.post(f"/api/v1/citizens/{citizen}/{section}", json=body, headers=headers)
    assert response.status_code == 201, (section, response.get_json())
    return response.get_json()["id"]


def _ips(client: Any, citizen: uuid.UUID, headers: dict[str, str], *, lang: str = "vi"
         ) -> Any:
    return client.get(f"/fhir/R4/Patient/{citizen}/$summary",
                      headers={**headers, "Accept": FHIR, "Accept-Language": lang})


def _references(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            found.append(node["reference"])
        for value in node.values():
            found += _references(value)
    elif isinstance(node, list):
        for value in node:
            found += _references(value)
    return found


def _sections(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    composition = bundle["entry"][0]["resource"]
    return {s["code"]["coding"][0]["code"]: s for s in composition["section"]}


def _resources(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def _section_ids(bundle: dict[str, Any], key: str, kind: str | None = None) -> set[str]:
    """The resource ids (= entry ids) a section lists, of one resource type if given."""
    resources = _resources(bundle)
    section = _sections(bundle)[SECTION_CODES[key]]
    return {resources[ref["reference"]]["id"] for ref in section.get("entry", [])
            if kind is None or resources[ref["reference"]]["resourceType"] == kind}


def _narrative_text(div: str) -> str:
    # Our own answer, parsed to prove it well-formed (a narrative is XHTML, not HTML).
    root = ET.fromstring(div)  # noqa: S314
    assert root.tag == f"{XHTML}div"
    return "".join(root.itertext())


def check_document(bundle: dict[str, Any], citizen: uuid.UUID) -> None:
    """Everything an IPS document must be, whoever reads it."""
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "document"
    assert parsed.identifier is not None
    assert parsed.timestamp
    first = bundle["entry"][0]
    assert first["resource"]["resourceType"] == "Composition"
    composition = Composition.model_validate(first["resource"])
    assert composition.type.coding[0].system == LOINC
    assert composition.type.coding[0].code == "60591-5"
    assert composition.status == "final"
    assert composition.confidentiality in ("N", "R")
    assert composition.author
    assert composition.custodian
    assert composition.date
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls))
    assert all(url.startswith("urn:uuid:") for url in urls)
    resources = _resources(bundle)
    for reference in _references(bundle):
        assert reference in resources, reference  # every reference resolves inside the Bundle
    subject = resources[first["resource"]["subject"]["reference"]]
    assert (subject["resourceType"], subject["id"]) == ("Patient", str(citizen))
    sections = _sections(bundle)
    assert set(sections) == set(SECTION_CODES.values())
    for code, section in sections.items():
        assert section["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
        assert _narrative_text(section["text"]["div"]).strip(), code
        if section.get("entry"):
            assert "emptyReason" not in section
        else:  # an empty section says so
            reason = section["emptyReason"]
            assert reason["coding"][0]["system"] == EMPTY_REASON
            assert reason["coding"][0]["code"] in ("nilknown", "unavailable", "withheld")
            assert reason["text"] in _narrative_text(section["text"]["div"])
    assert REQUIRED <= set(sections)


def summary_ids(payload: dict[str, Any]) -> dict[str, set[str]]:
    """The entries the JSON summary shows, by IPS section."""
    return {
        "medications": {e["id"] for e in payload["current_medications"]},
        "allergies": {e["id"] for e in payload["allergies"]},
        "problems": {e["id"] for e in payload["active_conditions"]},
        "vital-signs": {e["id"] for e in payload["latest_vitals"]},
    }


def listed_ids(client: Any, citizen: uuid.UUID, section: str, headers: dict[str, str]
               ) -> set[str] | None:
    """The current entries the caller's list of a section shows (None: refused)."""
    response = client.get(f"/api/v1/citizens/{citizen}/{section}", headers=headers,
                          query_string={"limit": 100})
    if response.status_code != 200:
        return None
    return {item["id"] for item in response.get_json()["items"]}


def assert_same_as_json_summary(client: Any, citizen: uuid.UUID, headers: dict[str, str]
                                ) -> dict[str, Any] | None:
    """The IPS holds what the JSON summary shows this caller, refused alike; the immunizations
    and results it lists are the caller's current list entries. The IPS, or None."""
    plain = client.get(f"/api/v1/citizens/{citizen}/summary", headers=headers)
    answer = _ips(client, citizen, headers)
    assert answer.status_code == plain.status_code, (plain.get_json(), answer.get_json())
    if plain.status_code != 200:
        assert answer.mimetype == FHIR
        assert answer.get_json()["resourceType"] == "OperationOutcome"
        return None
    assert answer.mimetype == FHIR
    bundle = answer.get_json()
    check_document(bundle, citizen)
    for key, ids in summary_ids(plain.get_json()).items():
        assert _section_ids(bundle, key) == ids, key
    for key, section in (("immunizations", "immunizations"), ("results", "lab-results")):
        listed = listed_ids(client, citizen, section, headers)
        shown = _section_ids(bundle, key, "Immunization" if key == "immunizations" else None)
        assert shown == (listed or set()), key
    return bundle


def audit_count(app: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(AuditEvent)))


# --- worlds -----------------------------------------------------------------------------------

@pytest.fixture
def filled(app: Any, client: Any, world: Any) -> dict[str, str]:
    """The world's patient with entries in every IPS section (and some the IPS leaves out),
    and a restricted condition written under a consent to the hospital doctor."""
    doctor = world.headers("doctor")
    ids = {
        "allergy": _create(client, world.patient, "allergies",
                           {**SAMPLES["allergies"][0], "substance": NASTY}, doctor),
        "condition": _create(client, world.patient, "conditions", SAMPLES["conditions"][0],
                             doctor),
        "resolved": _create(client, world.patient, "conditions",
                            {"icd10_code": "J18.9", "clinical_status": "resolved"}, doctor),
        "medication": _create(client, world.patient, "medications", SAMPLES["medications"][0],
                              doctor),
        "stopped": _create(client, world.patient, "medications",
                           {**SAMPLES["medications"][0], "name": "Captopril",
                            "medication_status": "stopped", "end_date": YESTERDAY}, doctor),
        "dose": _create(client, world.patient, "immunizations", SAMPLES["immunizations"][0],
                        world.headers("station")),
        "lab": _create(client, world.patient, "lab-results", SAMPLES["lab-results"][0],
                       doctor),
        "bp-old": _create(client, world.patient, "observations",
                          {**SAMPLES["observations"][0],
                           "effective_at": "2024-05-01T08:00:00+07:00"}, doctor),
        "bp": _create(client, world.patient, "observations", SAMPLES["observations"][0],
                      doctor),
        "weight": _create(client, world.patient, "observations",
                          {"kind": "body-weight", "value": 61.5, "unit": "kg",
                           "effective_at": NOW_UTC}, doctor),
        "visit": _create(client, world.patient, "encounters", SAMPLES["encounters"][0],
                         doctor),
    }
    granted = client.post(f"/api/v1/citizens/{world.patient}/consents",
                          headers=world.headers("patient"), json={
                              "grantee": {"type": "practitioner",
                                          "id": str(world.other_doctor_id)},
                              "sections": ["conditions", "allergies", "summary"],
                              "categories": ["mental-health"], "access": "read-write"})
    assert granted.status_code == 201, granted.get_json()
    ids["depression"] = _create(
        client, world.patient, "conditions",
        {"icd10_code": "F32.0", "clinical_status": "active", "onset_date": "2025-02-10"},
        world.headers("other_doctor"))
    return ids


# --- the document -----------------------------------------------------------------------------

def test_a_full_summary_is_a_valid_ips_document(client: Any, world: Any,
                                                filled: dict[str, str]) -> None:
    bundle = assert_same_as_json_summary(client, world.patient, world.headers("patient"))
    assert bundle is not None
    sections = _sections(bundle)
    for key, code in SECTION_CODES.items():
        assert sections[code].get("entry"), f"{key} should not be empty"
    assert _section_ids(bundle, "medications") == {filled["medication"]}
    assert _section_ids(bundle, "allergies") == {filled["allergy"]}
    assert _section_ids(bundle, "problems") == {filled["condition"], filled["depression"]}
    assert _section_ids(bundle, "immunizations", "Immunization") == {filled["dose"]}
    assert _section_ids(bundle, "results") == {filled["lab"]}
    # The latest of each kind of vital sign only.
    assert _section_ids(bundle, "vital-signs") == {filled["bp"], filled["weight"]}
    everything = json.dumps(bundle, ensure_ascii=False)
    for left_out in ("resolved", "stopped", "bp-old", "visit"):
        assert filled[left_out] not in everything, left_out
    # The restricted condition the citizen sees makes the document restricted.
    assert bundle["entry"][0]["resource"]["confidentiality"] == "R"
    resources = _resources(bundle)
    assert any(r["resourceType"] == "Practitioner" for r in resources.values())
    patient = resources[bundle["entry"][0]["resource"]["subject"]["reference"]]
    assert patient["generalPractitioner"], patient  # the family doctor, as the summary names
    # User text is escaped: the narrative stays well-formed and shows the text as typed.
    allergies = sections[SECTION_CODES["allergies"]]["text"]["div"]
    assert "<script>" not in allergies
    assert NASTY in _narrative_text(allergies)


def test_narratives_follow_the_readers_language(client: Any, world: Any,
                                                filled: dict[str, str]) -> None:
    vi = _ips(client, world.patient, world.headers("patient"), lang="vi")
    en = _ips(client, world.patient, world.headers("patient"), lang="en")
    assert vi.status_code == en.status_code == 200
    assert (en.headers["Content-Language"], vi.headers["Content-Language"]) == ("en", "vi")
    vi_sections, en_sections = _sections(vi.get_json()), _sections(en.get_json())
    assert vi_sections["10160-0"]["title"] == "Thuốc đang dùng"
    assert en_sections["10160-0"]["title"] == "Medication summary"
    assert vi.get_json()["entry"][0]["resource"]["language"] == "vi"
    assert en.get_json()["entry"][0]["resource"]["language"] == "en"
    # ICD-10 names in the reader's language where one exists (I10 has a Vietnamese title).
    problems_vi = _narrative_text(vi_sections["11450-4"]["text"]["div"])
    problems_en = _narrative_text(en_sections["11450-4"]["text"]["div"])
    assert "I10" in problems_vi
    assert "I10" in problems_en
    assert "hypertension" in problems_en.lower()
    assert problems_vi != problems_en


def test_an_empty_record_says_so_in_every_section(client: Any, world: Any) -> None:
    bundle = assert_same_as_json_summary(client, world.stranger, world.headers("stranger"))
    assert bundle is not None
    for code, section in _sections(bundle).items():
        assert "entry" not in section, code
        # The person sees all of their own record: nothing there is "nil known".
        assert section["emptyReason"]["coding"][0]["code"] == "nilknown", code
    en = _ips(client, world.stranger, world.headers("stranger"), lang="en").get_json()
    text = _narrative_text(_sections(en)["48765-2"]["text"]["div"])
    assert text == "No allergies are recorded."
    assert en["entry"][0]["resource"]["confidentiality"] == "N"


def test_each_identity_gets_what_its_json_summary_gives(client: Any, world: Any,
                                                        filled: dict[str, str]) -> None:
    # The family doctor: the normal entries, never the restricted condition, and an empty
    # section of what they see part of says "unavailable", never "nil known".
    doctor = assert_same_as_json_summary(client, world.patient, world.headers("doctor"))
    assert doctor is not None
    assert filled["depression"] not in json.dumps(doctor)
    assert _section_ids(doctor, "problems") == {filled["condition"]}
    assert doctor["entry"][0]["resource"]["confidentiality"] == "N"
    # The hospital doctor holds a grant for conditions and allergies, mental health named.
    granted = assert_same_as_json_summary(client, world.patient, world.headers("other_doctor"))
    assert granted is not None
    assert filled["depression"] in _section_ids(granted, "problems")
    assert filled["medication"] not in json.dumps(granted)
    medications = _sections(granted)["10160-0"]
    assert medications["emptyReason"]["coding"][0]["code"] == "withheld"
    # Without any relationship: refused alike (the JSON summary's status, as OperationOutcome).
    for who, citizen in (("other_doctor", world.stranger), ("stranger", world.patient),
                         ("doctor", world.stranger)):
        assert assert_same_as_json_summary(client, citizen, world.headers(who)) is None, who
    # Nobody at all: 404.
    missing = _ips(client, uuid.uuid4(), world.headers("patient"))
    assert (missing.status_code, missing.mimetype) == (404, FHIR)


def test_a_guardian_sees_the_childs_summary_with_the_schedule(
        app: Any, client: Any, world: Any) -> None:
    from consent.models import Guardianship

    with app.app_context():
        db.session.add(Guardianship(
            id=uuid.uuid4(), guardian_citizen_id=world.stranger, dependant_citizen_id=world.child,
            kind="minor", relationship="mother", categories=[],
            valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=30), created_via="station"))
        db.session.commit()
    guardian = world.headers("stranger")
    _create(client, world.child, "immunizations",
            {"vaccine_code": "BCG", "dose_number": 1, "occurrence_date": YESTERDAY,
             "lot_number": "BCG-2611"}, world.headers("station"))
    bundle = assert_same_as_json_summary(client, world.child, guardian)
    assert bundle is not None
    resources = _resources(bundle)
    recommendations = [r for r in resources.values()
                       if r["resourceType"] == "ImmunizationRecommendation"]
    assert len(recommendations) == 1
    schedule = client.get(f"/api/v1/citizens/{world.child}/immunization-schedule",
                          headers=guardian).get_json()
    due = [d for d in schedule["doses"] if d["status"] != "completed"]
    assert len(recommendations[0]["recommendation"]) == len(due) > 0
    narrative = _narrative_text(_sections(bundle)["11369-6"]["text"]["div"])
    assert due[0]["name"] in narrative


def test_one_audited_decision_as_the_json_summary(app: Any, client: Any, world: Any,
                                                  filled: dict[str, str]) -> None:
    headers = world.headers("doctor")
    before = audit_count(app)
    assert client.get(f"/api/v1/citizens/{world.patient}/summary", headers=headers).status_code \
        == 200
    plain = audit_count(app) - before
    before = audit_count(app)
    assert _ips(client, world.patient, headers).status_code == 200
    assert audit_count(app) - before == plain == 1
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).order_by(
            AuditEvent.occurred_at.desc(), AuditEvent.seq.desc())).first()
        assert (event.section, event.action, event.decision) == ("summary", "read", "permit")


def test_a_token_without_patient_read_is_refused_as_fhir(app: Any, client: Any,
                                                         world: Any) -> None:
    from tests.support.auth import token_for

    narrow = token_for(client, app, login=world.patient_token.login,
                       scopes="openid patient/Immunization.rs").headers
    answer = _ips(client, world.patient, narrow)
    assert (answer.status_code, answer.mimetype) == (403, FHIR)
    assert answer.get_json()["resourceType"] == "OperationOutcome"
    anonymous = client.get(f"/fhir/R4/Patient/{world.patient}/$summary",
                           headers={"Accept": FHIR})
    assert anonymous.status_code == 401


# --- the export in FHIR -----------------------------------------------------------------------

def _export_entries(payload: dict[str, Any]) -> dict[str, list[int]]:
    return {item["id"]: sorted(v["version"] for v in item["earlier_versions"])
            for items in payload["sections"].values() for item in items}


def test_everything_holds_exactly_the_export(app: Any, client: Any, world: Any,
                                             filled: dict[str, str]) -> None:
    doctor = world.headers("doctor")
    changed = client.patch(f"/api/v1/citizens/{world.patient}/allergies/{filled['allergy']}",
                           json={"severity": "moderate"},
                           headers={**doctor, "If-Match": 'W/"1"'})
    if changed.status_code == 428 or changed.status_code == 412:
        etag = client.get(f"/api/v1/citizens/{world.patient}/allergies/{filled['allergy']}",
                          headers=doctor).headers["ETag"]
        changed = client.patch(
            f"/api/v1/citizens/{world.patient}/allergies/{filled['allergy']}",
            json={"severity": "moderate"}, headers={**doctor, "If-Match": etag})
    assert changed.status_code == 200, changed.get_json()
    shown = 0
    for who in ("patient", "doctor", "other_doctor"):
        headers = world.headers(who)
        plain = client.get(f"/api/v1/citizens/{world.patient}/export", headers=headers)
        fhir = client.get(f"/fhir/R4/Patient/{world.patient}/$everything",
                          headers={**headers, "Accept": FHIR})
        negotiated = client.get(f"/api/v1/citizens/{world.patient}/export",
                                headers={**headers, "Accept": FHIR})
        assert plain.status_code == fhir.status_code == negotiated.status_code, who
        if plain.status_code != 200:
            continue
        assert fhir.mimetype == negotiated.mimetype == FHIR
        assert negotiated.headers["Content-Disposition"].startswith("attachment")
        shown += 1
        for answer in (fhir, negotiated):
            bundle = answer.get_json()
            Bundle.model_validate(bundle)
            assert bundle["type"] == "searchset"
            urls = {e["fullUrl"] for e in bundle["entry"]}
            base = bundle["entry"][0]["fullUrl"].rsplit("/Patient/", 1)[0]
            for reference in _references(bundle):
                assert f"{base}/{reference}" in urls, reference
            versions: dict[str, list[int]] = {}
            for entry in bundle["entry"]:
                resource = entry["resource"]
                if resource["resourceType"] in ("Patient", "Practitioner", "Organization",
                                                "DiagnosticReport", "Consent", "RelatedPerson",
                                                "AuditEvent"):
                    continue
                versions.setdefault(resource["id"], []).append(
                    int(resource["meta"]["versionId"]))
            expected = _export_entries(plain.get_json())
            assert set(versions) == set(expected), who
            for entry_id, earlier in expected.items():
                current = max(versions[entry_id])
                assert sorted(versions[entry_id]) == sorted([*earlier, current]), entry_id
        if who == "doctor":
            assert filled["depression"] not in fhir.get_data(as_text=True)
        if who == "patient":
            assert filled["depression"] in fhir.get_data(as_text=True)
            # The export's other parts, as the export reads them: grants, guardians, log.
            exported = plain.get_json()
            by_type: dict[str, set[str]] = {}
            for entry in fhir.get_json()["entry"]:
                resource = entry["resource"]
                by_type.setdefault(resource["resourceType"], set()).add(resource["id"])
            assert by_type["Consent"] == {c["id"] for c in exported["consents"]} != set()
            assert by_type.get("RelatedPerson", set()) == {
                g["id"] for g in exported["guardians"]}
            # The FHIR read came later: its log holds the JSON export's items and its own.
            assert {i["id"] for i in exported["access_log"]} < by_type["AuditEvent"]
    assert shown == 1  # the data subject's right: the doctors are refused as the JSON export


def test_export_keeps_its_json_unless_fhir_is_asked(client: Any, world: Any) -> None:
    headers = world.headers("patient")
    for accept in ("application/json", "*/*", f"application/json, {FHIR}"):
        answer = client.get(f"/api/v1/citizens/{world.patient}/export",
                            headers={**headers, "Accept": accept})
        assert (answer.status_code, answer.mimetype) == (200, "application/json"), accept
        assert "sections" in answer.get_json()


# --- the demo world ---------------------------------------------------------------------------

@pytest.fixture
def demo(app: Any, tmp_path: Any) -> dict[str, Any]:
    out = tmp_path / "demo.json"
    result = app.test_cli_runner().invoke(args=["seed", "demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8"))


def _login(client: Any, demo: dict[str, Any], person: dict[str, Any], *, staff: bool
           ) -> dict[str, str]:
    clients = demo["clients"]
    if staff:
        info = ClientInfo(clients["clinic"]["client_id"], clients["clinic"]["redirect_uri"],
                          clients["clinic"]["client_secret"])
        scope = "openid user/*.cruds"
    else:
        info = ClientInfo(clients["mobile"]["client_id"], clients["mobile"]["redirect_uri"])
        scope = "openid patient/*.cruds"
    login = Login(account_id=uuid.uuid4(), role="", username=person["username"],
                  password=person["password"])
    code, verifier = code_for(client, info, login, scope=scope)
    answer = exchange(client, info, code, verifier)
    assert answer.status_code == 200, answer.get_json()
    return bearer(answer.get_json()["access_token"])


def test_every_demo_citizen_has_an_ips(client: Any, demo: dict[str, Any]) -> None:
    citizens = {c["demo_role"]: c for c in demo["citizens"]}
    staff = {p["demo_role"]: p for p in demo["practitioners"]}
    readers = {"family-doctor": _login(client, demo, staff["family-doctor"], staff=True),
               "other-doctor": _login(client, demo, staff["other-doctor"], staff=True)}
    for role, person in citizens.items():
        if person.get("username") and person.get("password"):
            readers[role] = _login(client, demo, person, staff=False)
    shown = 0
    for role, person in citizens.items():
        citizen = uuid.UUID(person["id"])
        for headers in readers.values():
            for lang in ("vi", "en"):
                bundle = assert_same_as_json_summary(client, citizen, headers)
                if bundle is None:
                    continue
                answer = _ips(client, citizen, headers, lang=lang).get_json()
                check_document(answer, citizen)
                assert answer["entry"][0]["resource"]["language"] == lang
                shown += 1
        # The person (or, for the infant, their parent) reads their own summary.
        own = readers.get(role) or readers["parent"]
        assert _ips(client, citizen, own).status_code == 200, role
    assert shown >= 2 * len(citizens)
