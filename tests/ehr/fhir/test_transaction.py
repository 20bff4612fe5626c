"""Issue 16: hospitals and labs push data — `POST /fhir/R4` with a transaction Bundle.

Over HTTP with real tokens: a hospital's system client (client credentials) sends a Bundle for
a citizen named by health ID; the entries land in the record as `imported`, authored by the
hospital, validated like the JSON API, idempotent per the hospital's identifiers, all or
nothing, audited once each, told to the citizen once.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from consent.models import AuditEvent
from core.db import db
from tests.ehr.conftest import World, count_entries
from tests.ehr.samples import SAMPLES, TODAY, YESTERDAY
from tests.support.auth import health_id_of, station_client, station_token

CCCD = "https://moh.gov.vn/fhir/sid/cccd"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
HIS = "https://his.benhvien-thunghiem.vn/fhir/sid/"
HOSPITAL_SCOPES = ("system/Patient.s system/Observation.cr system/DiagnosticReport.c "
                   "system/Condition.c system/Immunization.c system/Encounter.c")
FHIR = {"Content-Type": "application/fhir+json"}
SECTIONS = ("lab-results", "observations", "conditions", "immunizations", "encounters")
EFFECTIVE = f"{YESTERDAY}T08:30:00+07:00"


def _ident(kind: str, value: str) -> list[dict[str, str]]:
    return [{"system": HIS + kind, "value": value}]


def _entry(resource: dict[str, Any], kind: str, value: str, *,
           full_url: str | None = None) -> dict[str, Any]:
    resource = {**resource, "identifier": _ident(kind, value)}
    entry = {"resource": resource, "request": {
        "method": "POST", "url": resource["resourceType"],
        "ifNoneExist": f"identifier={HIS}{kind}|{value}"}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def visit_bundle(health_id: str, *, tag: str = "1") -> dict[str, Any]:
    """A hospital visit: a lab result with its report, a weight, a diagnosis, a dose, the
    visit itself; the person once as a Patient entry, once by identifier."""
    by_id = {"identifier": {"system": CCCD, "value": health_id}}
    patient = {"reference": "urn:uuid:patient-1"}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:patient-1",
         "resource": {"resourceType": "Patient",
                      "identifier": [{"system": CCCD, "value": health_id}]},
         "request": {"method": "POST", "url": "Patient",
                     "ifNoneExist": f"identifier={CCCD}|{health_id}"}},
        _entry({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                    "observation-category",
                                          "code": "laboratory"}]}],
                "code": {"coding": [{"system": LOINC, "code": "2160-0"}],
                         "text": "Creatinine"},
                "subject": patient, "effectiveDateTime": EFFECTIVE,
                "valueQuantity": {"value": 88, "unit": "umol/L", "system": UCUM,
                                  "code": "umol/L"},
                "referenceRange": [{"text": "62–106 umol/L"}]},
               "lab", "LR-" + tag, full_url="urn:uuid:lab-1"),
        _entry({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                    "observation-category",
                                          "code": "vital-signs"}]}],
                "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
                "subject": by_id, "effectiveDateTime": EFFECTIVE,
                "valueQuantity": {"value": 68.5, "unit": "kg", "system": UCUM, "code": "kg"}},
               "vital", "VS-" + tag),
        _entry({"resourceType": "DiagnosticReport", "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "24362-6"}],
                         "text": "Renal function panel"},
                "subject": patient, "effectiveDateTime": EFFECTIVE,
                "result": [{"reference": "urn:uuid:lab-1"}],
                "conclusion": "Chức năng thận bình thường"},
               "report", "DR-" + tag),
        _entry({"resourceType": "Condition",
                "clinicalStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active"}]},
                "code": {"coding": [{"system": ICD10, "code": "E11"}],
                         "text": "Đái tháo đường type 2"},
                "subject": by_id, "onsetDateTime": "2019-06-01"},
               "condition", "C-" + tag),
        _entry({"resourceType": "Immunization", "status": "completed",
                "vaccineCode": {"coding": [{
                    "system": "https://moh.gov.vn/fhir/CodeSystem/vn-vaccines", "code": "TD"}]},
                "patient": by_id, "occurrenceDateTime": YESTERDAY, "lotNumber": "TD-2611-07",
                "protocolApplied": [{"doseNumberPositiveInt": 1}]},
               "immunization", "I-" + tag),
        _entry({"resourceType": "Encounter", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                          "code": "AMB"},
                "subject": by_id, "period": {"start": EFFECTIVE, "end": EFFECTIVE},
                "reasonCode": [{"coding": [{"system": ICD10, "code": "E11"}]},
                               {"text": "Tái khám"}]},
               "encounter", "E-" + tag),
    ]}


@pytest.fixture
def hospital(app: Any, client: Any, world: World):
    """The hospital's information system: a client-credentials client of the hospital."""
    oauth_client, _ = station_client(app, facility=world.hospital, scopes=HOSPITAL_SCOPES)
    return station_token(client, app, oauth_client=oauth_client)


def _counts(app, citizen) -> dict[str, int]:
    return {section: count_entries(app, citizen, section) for section in SECTIONS}


def _audit(app, **where) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent)
        for name, value in where.items():
            query = query.where(getattr(AuditEvent, name) == value)
        return list(db.session.scalars(query))


def _inbox(client, world: World) -> list[dict[str, Any]]:
    body = client.get("/api/v1/me/notifications", headers=world.headers("patient")).get_json()
    return [n for n in body["items"] if n["trigger"] == "entry-created"]


def _post(client, token, bundle, **headers):
    return client.post("/fhir/R4", json=bundle, headers={**token.headers, **FHIR, **headers})


def test_a_hospital_visit_lands_in_the_record(app, client, world, hospital):
    health_id = health_id_of(app, world.patient)
    response = _post(client, hospital, visit_bundle(health_id))
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/fhir+json"
    answer = response.get_json()
    assert answer["resourceType"] == "Bundle"
    assert answer["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["200 OK"] + ["201 Created"] * 6
    locations = [e["response"]["location"] for e in answer["entry"]]
    assert locations[0] == f"Patient/{world.patient}"
    types = [loc.split("/")[0] for loc in locations]
    assert types == ["Patient", "Observation", "Observation", "DiagnosticReport", "Condition",
                     "Immunization", "Encounter"]
    # The report is its result's lab entry (the FHIR face shows each lab entry as both).
    assert locations[3].split("/")[1] == locations[1].split("/")[1]
    assert _counts(app, world.patient) == dict.fromkeys(SECTIONS, 1)
    assert health_id not in response.get_data(as_text=True)

    # The citizen sees each entry through the JSON API: imported, by the hospital.
    base = f"/api/v1/citizens/{world.patient}"
    seen = {}
    for section in SECTIONS:
        page = client.get(f"{base}/{section}", headers=world.headers("patient"))
        assert page.status_code == 200, page.get_json()
        [item] = page.get_json()["items"]
        assert item["source"] == "imported"
        assert item["author"] is None
        assert item["facility"]["id"] == str(world.hospital)
        seen[section] = item
    assert seen["lab-results"]["id"] == locations[1].split("/")[1]
    assert seen["lab-results"]["data"] == {
        "test_name": "Creatinine", "loinc_code": "2160-0", "value": "88", "unit": "umol/L",
        "reference_range": "62–106 umol/L", "issued_on": YESTERDAY,
        "note": "Chức năng thận bình thường"}
    assert seen["observations"]["data"]["kind"] == "body-weight"
    assert seen["observations"]["data"]["value"] == 68.5
    assert seen["conditions"]["data"]["icd10_code"] == "E11"
    assert seen["immunizations"]["data"]["vaccine_code"] == "TD"
    assert seen["immunizations"]["data"]["dose_number"] == 1
    assert seen["encounters"]["data"]["encounter_type"] == "outpatient"
    assert seen["encounters"]["data"]["diagnosis_codes"] == ["E11"]
    assert seen["encounters"]["data"]["reason"] == "Tái khám"

    # One audit event per entry written, decided by the import basis, in the person's chain.
    creates = _audit(app, citizen_id=world.patient, action="create")
    assert sorted(e.section for e in creates) == sorted(SECTIONS)
    assert {(e.decision, e.rule, e.actor_role, e.actor_facility_id) for e in creates} == {
        ("permit", "facility-import", "station", world.hospital)}
    # One "new entry" notification for the visit, not one per result.
    assert len(_inbox(client, world)) == 1


def test_the_same_bundle_twice_creates_one_set(app, client, world, hospital):
    bundle = visit_bundle(health_id_of(app, world.patient))
    first = _post(client, hospital, bundle)
    assert first.status_code == 200, first.get_json()
    again = _post(client, hospital, copy.deepcopy(bundle))
    assert again.status_code == 200, again.get_json()
    assert [e["response"]["status"] for e in again.get_json()["entry"]] == ["200 OK"] * 7
    assert [e["response"]["location"] for e in again.get_json()["entry"]] == [
        e["response"]["location"] for e in first.get_json()["entry"]]
    assert _counts(app, world.patient) == dict.fromkeys(SECTIONS, 1)
    assert len(_inbox(client, world)) == 1  # nothing new to tell
    # New identifiers are new facts: a second visit adds a second set.
    third = _post(client, hospital, visit_bundle(health_id_of(app, world.patient), tag="2"))
    assert [e["response"]["status"] for e in third.get_json()["entry"]] == (
        ["200 OK"] + ["201 Created"] * 6)
    assert _counts(app, world.patient) == dict.fromkeys(SECTIONS, 2)


def _broken(bundle: dict[str, Any], index: int, change) -> dict[str, Any]:
    bundle = copy.deepcopy(bundle)
    change(bundle["entry"][index]["resource"])
    return bundle


@pytest.mark.parametrize(("index", "change", "expression"), [
    # A weight in a unit the record does not know.
    (2, lambda r: r["valueQuantity"].update(unit="stone", code="[stone_av]"),
     "Bundle.entry[2].resource.valueQuantity.code"),
    # A diagnosis that has not happened yet.
    (4, lambda r: r.update(onsetDateTime=(TODAY + dt.timedelta(days=2)).isoformat()),
     "Bundle.entry[4].resource.onsetDateTime"),
    # A dose without its vaccine.
    (5, lambda r: r.pop("vaccineCode"), "Bundle.entry[5].resource.vaccineCode"),
    # A vaccine outside the national catalogue.
    (5, lambda r: r["vaccineCode"]["coding"][0].update(code="NOPE"),
     "Bundle.entry[5].resource.vaccineCode.coding[0].code"),
    # An ICD-10 code that does not exist.
    (4, lambda r: r["code"]["coding"][0].update(code="Q99.99.9"),
     "Bundle.entry[4].resource.code.coding[0].code"),
    # Something the record cannot keep is refused, not dropped.
    (6, lambda r: r.update(hospitalization={"dischargeDisposition": {"text": "home"}},
                           diagnosis=[{"condition": {"display": "E11"}}]),
     "Bundle.entry[6].resource.diagnosis"),
])
def test_a_bad_entry_changes_nothing(app, client, world, hospital, index, change, expression):
    before = _counts(app, world.patient)
    audited = len(_audit(app, citizen_id=world.patient))
    bundle = _broken(visit_bundle(health_id_of(app, world.patient)), index, change)
    response = _post(client, hospital, bundle, **{"Accept-Language": "en"})
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/fhir+json"
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    expressions = [e for issue in outcome["issue"] for e in issue["expression"]]
    assert expression in expressions, outcome
    assert all(issue["severity"] == "error" for issue in outcome["issue"])
    assert all(issue["details"]["text"].isascii() for issue in outcome["issue"])  # English
    assert _counts(app, world.patient) == before
    assert _inbox(client, world) == []
    # A refusal of the Bundle's shape decides nothing about the person.
    assert len(_audit(app, citizen_id=world.patient)) == audited


def test_vietnamese_by_default(app, client, world, hospital):
    bundle = _broken(visit_bundle(health_id_of(app, world.patient)), 5,
                     lambda r: r.pop("vaccineCode"))
    outcome = _post(client, hospital, bundle).get_json()
    assert outcome["issue"][0]["details"]["text"] == "Thiếu thành phần bắt buộc."


def test_a_date_before_birth_is_refused_after_the_decision(app, client, world, hospital):
    bundle = _broken(visit_bundle(health_id_of(app, world.patient)), 4,
                     lambda r: r.update(onsetDateTime="1950-01-01"))
    response = _post(client, hospital, bundle)
    assert response.status_code == 422
    assert [issue["expression"] for issue in response.get_json()["issue"]] == [
        ["Bundle.entry[4].resource.onsetDateTime"]]
    assert _counts(app, world.patient) == dict.fromkeys(SECTIONS, 0)
    # The decisions were taken (and stay audited); nothing was written.
    assert len(_audit(app, citizen_id=world.patient, action="create")) == 5


def test_without_the_scope_403(app, client, world):
    narrow_client, _ = station_client(app, facility=world.hospital,
                                      scopes="system/Observation.c system/Patient.s")
    token = station_token(client, app, oauth_client=narrow_client)
    response = _post(client, token, visit_bundle(health_id_of(app, world.patient)))
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert response.get_json()["issue"][0]["code"] == "forbidden"
    assert _counts(app, world.patient) == dict.fromkeys(SECTIONS, 0)
    # With the scope for everything it sends, the same client is fine.
    lab_only = {**visit_bundle(health_id_of(app, world.patient))}
    lab_only["entry"] = [lab_only["entry"][2]]
    assert _post(client, token, lab_only).status_code == 200


@pytest.mark.parametrize("who", ["doctor", "patient", "vaccinator"])
def test_only_a_facility_system_sends_transactions(app, client, world, vaccinator, who):
    response = _post(client, getattr(world, f"{who}_token"),
                     visit_bundle(health_id_of(app, world.patient)))
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert _counts(app, world.patient) == dict.fromkeys(SECTIONS, 0)


def test_an_unknown_health_id_says_no_more_than_a_lookup(app, client, world, hospital):
    nobody = "001190000000"
    before = len(_audit(app, section="identity-lookup"))
    response = _post(client, hospital, visit_bundle(nobody), **{"Accept-Language": "en"})
    assert response.status_code == 422, response.get_json()
    issues = response.get_json()["issue"]
    assert {issue["code"] for issue in issues} == {"not-found"}
    assert [issue["expression"][0] for issue in issues] == [
        "Bundle.entry[0].resource.identifier", "Bundle.entry[1].resource.subject",
        "Bundle.entry[2].resource.subject", "Bundle.entry[3].resource.subject",
        "Bundle.entry[4].resource.subject", "Bundle.entry[5].resource.patient",
        "Bundle.entry[6].resource.subject"]
    assert nobody not in response.get_data(as_text=True)
    # Audited like a lookup that found no one (the facility's own chain, no one's access log).
    new = _audit(app, section="identity-lookup")[before:]
    assert [(e.action, e.decision, e.actor_facility_id) for e in new] == [
        ("lookup", "permit", world.hospital)]
    # A malformed number is a plain validation error, before anyone is looked up.
    malformed = _post(client, hospital, visit_bundle("12345"))
    assert malformed.status_code == 422
    assert len(_audit(app, section="identity-lookup")) == before + 1


def test_the_hospital_reads_nothing_back(app, client, world, hospital):
    client.post(f"/api/v1/citizens/{world.patient}/allergies", json=SAMPLES["allergies"][0],
                headers=world.headers("doctor"))
    reader_client, _ = station_client(
        app, facility=world.hospital,
        scopes=HOSPITAL_SCOPES + " system/Condition.rs system/AllergyIntolerance.rs "
                                 "system/DiagnosticReport.rs")
    reader = station_token(client, app, oauth_client=reader_client)
    answer = _post(client, reader, visit_bundle(health_id_of(app, world.patient)))
    assert answer.status_code == 200
    condition_id = answer.get_json()["entry"][4]["response"]["location"].split("/")[1]
    base = f"/api/v1/citizens/{world.patient}"
    # Nothing relates the hospital to the person: their record is as missing as a stranger's.
    for path in ("/conditions", "/allergies", "/lab-results", f"/conditions/{condition_id}"):
        response = client.get(base + path, headers=reader.headers)
        assert response.status_code == 404, (path, response.get_json())


def test_a_restricted_result_is_kept_restricted(app, client, world, hospital):
    bundle = visit_bundle(health_id_of(app, world.patient))
    bundle["entry"][4]["resource"]["code"] = {"coding": [{"system": ICD10, "code": "F32"}]}
    response = _post(client, hospital, bundle)
    assert response.status_code == 200, response.get_json()
    # The family doctor sees the hospital's normal entries but not the depression diagnosis.
    page = client.get(f"/api/v1/citizens/{world.patient}/conditions",
                      headers=world.headers("doctor"))
    assert page.get_json()["items"] == []
    mine = client.get(f"/api/v1/citizens/{world.patient}/conditions",
                      headers=world.headers("patient")).get_json()["items"]
    assert [(i["sensitivity"], i["source"]) for i in mine] == [("mental-health", "imported")]
    assert len(_inbox(client, world)) == 1


def test_a_report_for_several_people_at_once(app, client, world, hospital):
    """Two people in one Bundle: each gets their entries and one notification."""
    bundle = visit_bundle(health_id_of(app, world.patient))
    other = visit_bundle(health_id_of(app, world.stranger), tag="S")
    del other["entry"][0]  # the stranger named by identifier only
    for entry in other["entry"]:
        resource = entry["resource"]
        key = "patient" if resource["resourceType"] == "Immunization" else "subject"
        resource[key] = {"identifier": {"system": CCCD,
                                        "value": health_id_of(app, world.stranger)}}
        if entry.get("fullUrl"):
            entry["fullUrl"] += "-s"
    other["entry"][2]["resource"]["result"] = [{"reference": "urn:uuid:lab-1-s"}]
    bundle["entry"].extend(other["entry"])
    response = _post(client, hospital, bundle)
    assert response.status_code == 200, response.get_json()
    assert _counts(app, world.patient) == dict.fromkeys(SECTIONS, 1)
    assert _counts(app, world.stranger) == dict.fromkeys(SECTIONS, 1)
    stranger_inbox = client.get("/api/v1/me/notifications",
                                headers=world.headers("stranger")).get_json()["items"]
    assert len([n for n in stranger_inbox if n["trigger"] == "entry-created"]) == 1
    assert len(_inbox(client, world)) == 1


def test_audit_count_is_one_per_entry(app, client, world, hospital):
    with app.app_context():
        before = int(db.session.scalar(select(func.count()).select_from(AuditEvent)))
    _post(client, hospital, visit_bundle(health_id_of(app, world.patient)))
    with app.app_context():
        after = int(db.session.scalar(select(func.count()).select_from(AuditEvent)))
    assert after - before == 5
