"""The FHIR R4 face: metadata, SMART discovery, read and search of every type, through the
same gate as the JSON API (issue 16).

Everything over HTTP with real tokens; every body we emit is parsed with `fhir.resources.R4B`
models (the maintained models closest to R4 4.0.1). The access-matrix test holds the FHIR
search equal to the JSON lists for every identity × person × type.
"""

from __future__ import annotations

import datetime as dt
import importlib
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B.bundle import Bundle

from consent.models import Guardianship
from core.db import db, utcnow
from ehr.fhir.mapping import RESOURCE_SECTIONS
from tests.ehr.conftest import World
from tests.ehr.samples import SAMPLES, YESTERDAY
from tests.ehr.test_no_route_shows_more import (  # noqa: F401  (the fixture)
    IDENTITIES,
    MatrixWorld,
    matrix_world,
)
from tests.support.auth import make_citizen, token_for

FHIR = "/fhir/R4"
CLINICAL_TYPES = sorted(RESOURCE_SECTIONS)
SECTION_TYPE = {"allergies": "AllergyIntolerance", "conditions": "Condition",
                "encounters": "Encounter", "observations": "Observation",
                "medications": "MedicationStatement", "immunizations": "Immunization",
                "lab-results": "Observation", "family-history": "FamilyMemberHistory",
                "history": "Observation", "examinations": "Encounter"}


def model(resource: dict[str, Any]) -> Any:
    """Parse a resource with its R4B model (raises on anything FHIR refuses)."""
    name = resource["resourceType"]
    module = importlib.import_module(f"fhir.resources.R4B.{name.lower()}")
    return getattr(module, name).model_validate(resource)


def bundle_ids(body: dict[str, Any]) -> list[str]:
    Bundle.model_validate(body)
    assert body["type"] == "searchset"
    assert "total" not in body
    return [e["resource"]["id"] for e in body.get("entry", [])]


def next_url(body: dict[str, Any]) -> str | None:
    for link in body["link"]:
        if link["relation"] == "next":
            parts = urlsplit(link["url"])
            return f"{parts.path}?{parts.query}"
    return None


def search_all(client: Any, url: str, headers: dict[str, str]) -> tuple[int, list[str]]:
    """Follow `next` links to the end: the status of the first page and every id."""
    ids: list[str] = []
    status = 0
    pages = 0
    while url:
        response = client.get(url, headers=headers)
        if not status:
            status = response.status_code
        if response.status_code != 200:
            assert response.mimetype == "application/fhir+json"
            assert response.get_json()["resourceType"] == "OperationOutcome"
            return status, ids
        assert response.mimetype == "application/fhir+json"
        body = response.get_json()
        ids += bundle_ids(body)
        url = next_url(body)
        pages += 1
        assert pages < 50
    return status, ids


def create(client: Any, citizen: uuid.UUID, section: str, body: dict, headers: dict) -> str:
    response = client.post(f"/api/v1/citizens/{citizen}/{section}", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def json_list(client: Any, citizen: uuid.UUID, section: str,
              headers: dict[str, str]) -> tuple[int, set[str]]:
    response = client.get(f"/api/v1/citizens/{citizen}/{section}?limit=200", headers=headers)
    if response.status_code != 200:
        return response.status_code, set()
    return 200, {item["id"] for item in response.get_json()["items"]}


# --- conformance --------------------------------------------------------------------------

def test_metadata_is_a_public_r4_capability_statement(client: Any):
    response = client.get(f"{FHIR}/metadata")
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    body = response.get_json()
    statement = model(body)
    assert statement.fhirVersion == "4.0.1"
    assert "application/fhir+json" in body["format"]
    served = {r["type"]: r for r in body["rest"][0]["resource"]}
    for name in [*CLINICAL_TYPES, "Patient", "ImmunizationRecommendation", "Practitioner",
                 "Organization", "RelatedPerson", "Consent", "AuditEvent"]:
        assert {"read", "search-type"} <= {i["code"] for i in served[name]["interaction"]}
    params = {p["name"] for p in served["Observation"]["searchParam"]}
    assert {"patient", "date", "code", "category", "_lastUpdated", "_count"} <= params
    security = body["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert client.get(f"{FHIR}/metadata?_format=json").status_code == 200
    refused = client.get(f"{FHIR}/metadata?_format=xml")
    assert refused.status_code == 406
    model(refused.get_json())


def test_smart_configuration_names_the_authorization_server(client: Any):
    response = client.get(f"{FHIR}/.well-known/smart-configuration")
    assert response.status_code == 200
    body = response.get_json()
    assert body["authorization_endpoint"].endswith("/oauth/authorize")
    assert body["token_endpoint"].endswith("/oauth/token")
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert "permission-v2" in body["capabilities"]
    assert "patient/*.cruds" in body["scopes_supported"]
    assert "client_credentials" in body["grant_types_supported"]


def test_the_vaccine_code_system_is_published(client: Any):
    response = client.get(f"{FHIR}/CodeSystem/vn-vaccines", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    system = model(response.get_json())
    assert system.url == "https://moh.gov.vn/fhir/CodeSystem/vn-vaccines"
    codes = {c.code: c.display for c in system.concept}
    assert codes["BCG"]
    assert codes["TD"]


# --- every type, read and searched --------------------------------------------------------

@pytest.fixture
def full_record(client: Any, world: World) -> dict[str, str]:
    """One entry of every section for the patient, written by the family doctor."""
    doctor = world.headers("doctor")
    return {section: create(client, world.patient, section, body, doctor)
            for section, (body, _patch, _check) in SAMPLES.items()}


def test_every_type_is_read_and_searched_as_the_json_api_shows_it(
        client: Any, world: World, full_record: dict[str, str]):
    for who in ("patient", "doctor"):
        headers = world.headers(who)
        for resource_type in CLINICAL_TYPES:
            status, ids = search_all(
                client, f"{FHIR}/{resource_type}?patient={world.patient}", headers)
            assert status == 200, (who, resource_type)
            expected: set[str] = set()
            for section in RESOURCE_SECTIONS[resource_type]:
                listed = json_list(client, world.patient, section, headers)
                assert listed[0] == 200
                expected |= listed[1]
            assert sorted(ids) == sorted(expected), (who, resource_type)
            for entry_id in ids:
                read = client.get(f"{FHIR}/{resource_type}/{entry_id}", headers=headers)
                assert read.status_code == 200, (who, resource_type, read.get_json())
                resource = read.get_json()
                model(resource)
                assert resource["resourceType"] == resource_type
                assert resource["id"] == entry_id
                assert resource["meta"]["versionId"] == "1"
    # Each section's entry is its type's resource; a lab entry is also a DiagnosticReport.
    for section, entry_id in full_record.items():
        read = client.get(f"{FHIR}/{SECTION_TYPE[section]}/{entry_id}",
                          headers=world.headers("doctor"))
        assert read.status_code == 200, section
    report = client.get(f"{FHIR}/DiagnosticReport/{full_record['lab-results']}",
                        headers=world.headers("doctor")).get_json()
    assert report["result"][0]["reference"] == f"Observation/{full_record['lab-results']}"
    # Another type's id is not found (as a JSON read in another section).
    wrong = client.get(f"{FHIR}/Condition/{full_record['immunizations']}",
                       headers=world.headers("doctor"))
    assert wrong.status_code == 404
    model(wrong.get_json())


def test_codes_keep_their_systems_and_names_follow_the_language(
        client: Any, world: World, full_record: dict[str, str]):
    doctor = world.headers("doctor")
    condition = client.get(f"{FHIR}/Condition/{full_record['conditions']}",
                           headers={**doctor, "Accept-Language": "en"}).get_json()
    coding = condition["code"]["coding"][0]
    assert (coding["system"], coding["code"]) == ("http://hl7.org/fhir/sid/icd-10", "I10")
    assert "hypertension" in coding["display"].lower()
    shot = client.get(f"{FHIR}/Immunization/{full_record['immunizations']}",
                      headers=doctor).get_json()
    vaccine = shot["vaccineCode"]["coding"][0]
    assert vaccine["system"] == "https://moh.gov.vn/fhir/CodeSystem/vn-vaccines"
    assert vaccine["code"] == "TD"
    assert shot["protocolApplied"][0]["doseNumberPositiveInt"] == 1
    bp = client.get(f"{FHIR}/Observation/{full_record['observations']}",
                    headers=doctor).get_json()
    assert bp["category"][0]["coding"][0]["code"] == "vital-signs"
    assert bp["code"]["coding"][0] == {"system": "http://loinc.org", "code": "85354-9",
                                       "display": "Huyết áp"}
    assert {c["valueQuantity"]["code"] for c in bp["component"]} == {"mm[Hg]"}
    lab = client.get(f"{FHIR}/Observation/{full_record['lab-results']}",
                     headers=doctor).get_json()
    assert lab["category"][0]["coding"][0]["code"] == "laboratory"
    assert lab["valueQuantity"] == {"value": 7.2, "unit": "%",
                                    "system": "http://unitsofmeasure.org", "code": "%"}


def test_search_filters_by_code_category_date_and_last_updated(
        client: Any, world: World, full_record: dict[str, str]):
    doctor = world.headers("doctor")
    old = create(client, world.patient, "conditions",
                 {"icd10_code": "E11.9", "onset_date": "2010-06-01"}, doctor)
    base = f"{FHIR}/Condition?patient=Patient/{world.patient}"
    assert search_all(client, f"{base}&code=http://hl7.org/fhir/sid/icd-10|E11.9",
                      doctor)[1] == [old]
    assert search_all(client, f"{base}&code=I10,E11.9", doctor)[1] == [
        full_record["conditions"], old]
    assert search_all(client, f"{base}&date=lt2011", doctor)[1] == [old]
    assert search_all(client, f"{base}&date=ge2015-04-02", doctor)[1] == [
        full_record["conditions"]]
    assert search_all(client, f"{base}&date=2010-06", doctor)[1] == [old]
    observations = f"{FHIR}/Observation?patient={world.patient}"
    assert search_all(client, f"{observations}&category=vital-signs", doctor)[1] == [
        full_record["observations"]]
    assert search_all(client, f"{observations}&category=laboratory", doctor)[1] == [
        full_record["lab-results"]]
    assert search_all(client, f"{observations}&category=social-history", doctor)[1] == [
        full_record["history"]]
    shots = f"{FHIR}/Immunization?patient={world.patient}"
    assert search_all(client, f"{shots}&vaccine-code=TD", doctor)[1] == [
        full_record["immunizations"]]
    assert search_all(client, f"{shots}&code=BCG", doctor)[1] == []
    since = (utcnow() - dt.timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    status, ids = search_all(client, f"{base}&_lastUpdated=gt{since}", doctor)
    assert status == 200
    assert sorted(ids) == sorted([full_record["conditions"], old])
    assert search_all(client, f"{base}&_lastUpdated=lt2000-01-01", doctor)[1] == []


def test_paging_follows_next_links_without_total(
        client: Any, world: World, full_record: dict[str, str]):
    doctor = world.headers("doctor")
    for day in range(1, 6):
        create(client, world.patient, "observations",
               {"kind": "heart-rate", "value": 70 + day, "unit": "/min",
                "effective_at": f"2024-03-0{day}T08:00:00+07:00"}, doctor)
    url = f"{FHIR}/Observation?patient={world.patient}"
    _status, everything = search_all(client, url, doctor)
    assert len(everything) == 8 == len(set(everything))
    first = client.get(f"{url}&_count=3", headers=doctor).get_json()
    assert len(first["entry"]) == 3
    assert "total" not in first
    status, paged = search_all(client, f"{url}&_count=3", doctor)
    assert status == 200
    assert paged == everything
    _status, one_by_one = search_all(client, f"{url}&_count=1", doctor)
    assert one_by_one == everything
    # With a filter that leaves most entries out, pages may be short but every match comes.
    _status, hearts = search_all(client, f"{url}&_count=2&code=8867-4", doctor)
    assert len(hearts) == 5


def test_restricted_entries_need_a_grant_naming_them(client: Any, world: World):
    doctor = world.headers("doctor")
    plain = create(client, world.patient, "history", SAMPLES["history"][0], doctor)
    hidden = create(client, world.patient, "history",
                    {"category": "other-risk", "description": "Tư vấn tâm lý",
                     "sensitivity": "mental-health"}, world.headers("patient"))
    search = f"{FHIR}/Observation?patient={world.patient}"
    assert search_all(client, search, doctor)[1] == [plain]
    assert client.get(f"{FHIR}/Observation/{hidden}", headers=doctor).status_code == 404
    assert set(search_all(client, search, world.headers("patient"))[1]) == {plain, hidden}
    own = client.get(f"{FHIR}/Observation/{hidden}",
                     headers=world.headers("patient")).get_json()
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "PSY"} in own["meta"]["security"]
    granted = client.post(f"/api/v1/citizens/{world.patient}/consents",
                          headers=world.headers("patient"), json={
                              "grantee": {"type": "practitioner", "id": str(world.doctor_id)},
                              "sections": ["history"], "categories": ["mental-health"],
                              "access": "read"})
    assert granted.status_code == 201, granted.get_json()
    assert set(search_all(client, search, doctor)[1]) == {plain, hidden}
    assert client.get(f"{FHIR}/Observation/{hidden}", headers=doctor).status_code == 200


def test_others_get_what_the_json_api_gives_them(
        client: Any, world: World, vaccinator: Any, full_record: dict[str, str]):
    other = world.headers("other_doctor")
    for resource_type in CLINICAL_TYPES:
        response = client.get(f"{FHIR}/{resource_type}?patient={world.patient}", headers=other)
        assert response.status_code == 404, resource_type
        outcome = model(response.get_json())
        assert outcome.issue[0].code == "not-found"
    assert client.get(f"{FHIR}/Immunization/{full_record['immunizations']}",
                      headers=other).status_code == 404
    for who in ("station", "vaccinator"):
        headers = world.headers(who)
        status, ids = search_all(client, f"{FHIR}/Immunization?patient={world.patient}",
                                 headers)
        assert status == 200
        assert ids == sorted(json_list(
            client, world.patient, "immunizations", headers)[1])
        assert ids == [full_record["immunizations"]]
        denied = client.get(f"{FHIR}/Condition?patient={world.patient}", headers=headers)
        listed = client.get(f"/api/v1/citizens/{world.patient}/conditions", headers=headers)
        assert denied.status_code == listed.status_code, who
        assert denied.status_code in (403, 404)
        assert client.get(f"{FHIR}/Condition/{full_record['conditions']}",
                          headers=headers).status_code in (403, 404)


def test_errors_are_operation_outcomes_in_the_callers_language(client: Any, world: World):
    headers = world.headers("doctor")
    missing = client.get(f"{FHIR}/Immunization", headers=headers)
    assert missing.status_code == 400
    assert missing.mimetype == "application/fhir+json"
    outcome = model(missing.get_json())
    assert "patient" in outcome.issue[0].details.text
    assert missing.headers["Content-Language"] == "vi"
    english = client.get(f"{FHIR}/Immunization", headers={**headers, "Accept-Language": "en"})
    assert english.get_json()["issue"][0]["details"]["text"].startswith("A Immunization search")
    unknown = client.get(f"{FHIR}/Immunization?patient={world.patient}&colour=red",
                         headers=headers)
    assert unknown.status_code == 400
    assert "colour" in unknown.get_data(as_text=True)
    bad_date = client.get(f"{FHIR}/Condition?patient={world.patient}&date=yesterday",
                          headers=headers)
    assert bad_date.status_code == 400
    no_token = client.get(f"{FHIR}/Immunization?patient={world.patient}")
    assert no_token.status_code == 401
    assert no_token.headers["WWW-Authenticate"].startswith("Bearer")
    model(no_token.get_json())
    for response in (missing, unknown, bad_date, no_token):
        assert "Traceback" not in response.get_data(as_text=True)


# --- people, the schedule, relationships, the access log -----------------------------------

def test_patient_read_and_search(client: Any, world: World):
    own = client.get(f"{FHIR}/Patient/{world.patient}", headers=world.headers("patient"))
    assert own.status_code == 200
    patient = model(own.get_json())
    assert patient.name[0].text == "Phạm Văn Thắng"
    assert patient.identifier[0].system == "https://moh.gov.vn/fhir/sid/cccd"
    assert patient.birthDate == dt.date(1961, 3, 14)
    assert bundle_ids(client.get(f"{FHIR}/Patient", headers=world.headers("patient"))
                      .get_json()) == [str(world.patient)]
    assert bundle_ids(client.get(f"{FHIR}/Patient?_id={world.patient}",
                                 headers=world.headers("doctor")).get_json()) == [
        str(world.patient)]
    assert client.get(f"{FHIR}/Patient/{world.patient}",
                      headers=world.headers("other_doctor")).status_code == 404


def test_the_schedule_is_an_immunization_recommendation(client: Any, world: World):
    create(client, world.child, "immunizations",
           {"vaccine_code": "BCG", "dose_number": 1, "occurrence_date": YESTERDAY,
            "lot_number": "BCG-1"}, world.headers("station"))
    schedule = client.get(f"/api/v1/citizens/{world.child}/immunization-schedule",
                          headers=world.headers("station")).get_json()
    response = client.get(f"{FHIR}/ImmunizationRecommendation/{world.child}",
                          headers=world.headers("station"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    model(body)
    assert len(body["recommendation"]) == len(schedule["doses"])
    statuses = {r["forecastStatus"]["text"] for r in body["recommendation"]}
    assert statuses == {d["status"] for d in schedule["doses"]}
    search = client.get(f"{FHIR}/ImmunizationRecommendation?patient={world.child}",
                        headers=world.headers("station")).get_json()
    assert bundle_ids(search) == [str(world.child)]
    assert client.get(f"{FHIR}/ImmunizationRecommendation?patient={world.child}",
                      headers=world.headers("other_doctor")).status_code in (403, 404)


def test_guardians_consents_and_access_log(client: Any, app: Any, world: World):
    parent = make_citizen(app, full_name="Đỗ Thị Lan Anh", sex="female",
                          date_of_birth=dt.date(1985, 11, 2))
    with app.app_context():
        db.session.add(Guardianship(
            id=uuid.uuid4(), guardian_citizen_id=parent, dependant_citizen_id=world.child,
            kind="minor", relationship="mother", categories=[],
            valid_from=utcnow() - dt.timedelta(days=30), created_via="station"))
        db.session.commit()
    guardian = token_for(client, app, citizen=parent).headers
    create(client, world.child, "immunizations",
           {"vaccine_code": "BCG", "dose_number": 1, "occurrence_date": YESTERDAY,
            "lot_number": "BCG-1"}, world.headers("station"))
    # The guardian sees the child's record as the JSON API shows it.
    for resource_type in CLINICAL_TYPES:
        status, ids = search_all(client, f"{FHIR}/{resource_type}?patient={world.child}",
                                 guardian)
        expected: set[str] = set()
        for section in RESOURCE_SECTIONS[resource_type]:
            expected |= json_list(client, world.child, section, guardian)[1]
        assert status == 200, resource_type
        assert sorted(ids) == sorted(expected), resource_type
    related = client.get(f"{FHIR}/RelatedPerson?patient={world.child}", headers=guardian)
    listed = client.get(f"/api/v1/citizens/{world.child}/guardians", headers=guardian)
    assert related.status_code == listed.status_code == 200
    ids = bundle_ids(related.get_json())
    assert ids == [item["id"] for item in listed.get_json()["items"]]
    person = client.get(f"{FHIR}/RelatedPerson/{ids[0]}", headers=guardian).get_json()
    assert model(person).patient.reference == f"Patient/{world.child}"
    # Consents.
    granted = client.post(f"/api/v1/citizens/{world.patient}/consents",
                          headers=world.headers("patient"), json={
                              "grantee": {"type": "practitioner",
                                          "id": str(world.other_doctor_id)},
                              "sections": ["immunizations"], "categories": [],
                              "access": "read"})
    assert granted.status_code == 201
    consents = client.get(f"{FHIR}/Consent?patient={world.patient}",
                          headers=world.headers("patient")).get_json()
    listed_consents = client.get(f"/api/v1/citizens/{world.patient}/consents",
                                 headers=world.headers("patient")).get_json()
    assert bundle_ids(consents) == [c["id"] for c in listed_consents["items"]]
    consent = client.get(f"{FHIR}/Consent/{granted.get_json()['id']}",
                         headers=world.headers("patient")).get_json()
    assert model(consent).provision.actor[0].reference.reference == (
        f"Practitioner/{world.other_doctor_id}")
    assert client.get(f"{FHIR}/Consent?patient={world.patient}",
                      headers=world.headers("other_doctor")).status_code in (403, 404)
    # The access log: the other doctor's reads are in it, as AuditEvents.
    client.get(f"{FHIR}/Immunization?patient={world.patient}",
               headers=world.headers("other_doctor"))
    log = client.get(f"/api/v1/citizens/{world.patient}/access-log?limit=200",
                     headers=world.headers("patient")).get_json()
    status, events = search_all(client, f"{FHIR}/AuditEvent?patient={world.patient}&_count=2",
                                world.headers("patient"))
    assert status == 200
    assert events == [item["id"] for item in log["items"]]
    event = client.get(f"{FHIR}/AuditEvent/{events[0]}", headers=world.headers("patient"))
    assert event.status_code == 200
    audit = model(event.get_json())
    assert audit.agent[0].requestor is True
    assert audit.entity[0].what.reference == f"Patient/{world.patient}"


def test_the_public_register(client: Any, world: World):
    headers = world.headers("patient")
    practitioner = client.get(f"{FHIR}/Practitioner/{world.doctor_id}", headers=headers)
    assert practitioner.status_code == 200
    assert model(practitioner.get_json()).name[0].text == "Nguyễn Thị Hương"
    organization = client.get(f"{FHIR}/Organization/{world.station}", headers=headers)
    assert organization.status_code == 200
    model(organization.get_json())
    status, ids = search_all(client, f"{FHIR}/Practitioner?_count=1", headers)
    assert status == 200
    assert {str(world.doctor_id), str(world.other_doctor_id)} <= set(ids)
    status, ids = search_all(client, f"{FHIR}/Organization?_count=1", headers)
    assert {str(world.station), str(world.hospital)} <= set(ids)
    assert client.get(f"{FHIR}/Practitioner").status_code == 401


# --- the access matrix ---------------------------------------------------------------------

def test_fhir_search_answers_the_json_lists_for_every_identity(
        client: Any, matrix_world: MatrixWorld):  # noqa: F811
    problems: list[str] = []
    for identity in IDENTITIES:
        headers = matrix_world.tokens[identity]
        for name, person in matrix_world.people.items():
            for resource_type in CLINICAL_TYPES:
                label = f"{identity} → {name} {resource_type}"
                status, ids = search_all(
                    client, f"{FHIR}/{resource_type}?patient={person.id}&_count=2", headers)
                answers = [json_list(client, person.id, s, headers)
                           for s in RESOURCE_SECTIONS[resource_type]]
                shown = set().union(*(found for code, found in answers if code == 200))
                if any(code == 200 for code, _ in answers):
                    if status != 200 or sorted(ids) != sorted(shown):
                        problems.append(f"{label}: {status} {sorted(ids)} != {sorted(shown)}")
                    continue
                codes = {code for code, _ in answers}
                if status not in (403, 404) or (codes == {404} and status != 404):
                    problems.append(f"{label}: {status}, JSON {sorted(codes)}")
                if ids:
                    problems.append(f"{label}: denied yet {ids}")
            for entry_id, section in person.sections.items():
                read = client.get(f"/api/v1/citizens/{person.id}/{section}/{entry_id}",
                                  headers=headers)
                fhir = client.get(f"{FHIR}/{SECTION_TYPE[section]}/{entry_id}",
                                  headers=headers)
                if (read.status_code == 200) != (fhir.status_code == 200):
                    problems.append(f"{identity} read {section} of {name}: JSON "
                                    f"{read.status_code}, FHIR {fhir.status_code}")
    assert not problems, "\n".join(problems)
