"""Names beside codes (issue 15): every entry carries the names of its codes in the caller's
language, ICD-10 codes of the whole WHO list are accepted, and citizen-reported entries carry
their verification. Over HTTP with real tokens, database and crypto."""

from __future__ import annotations

import uuid

import pytest
from marshmallow import fields as ma_fields

from ehr.section_schemas import SECTION_SCHEMAS, ImmunizationSchema, icd10_code
from registry.reference.display import CODED_FIELDS, ICD10, display_names
from tests.ehr.samples import NOW_UTC, SAMPLES, YESTERDAY

EN = {"Accept-Language": "en"}
BCG_VI = "Vắc xin phòng lao (BCG)"
BCG_EN = "BCG vaccine (tuberculosis)"
BCG = {"vaccine_code": "BCG", "dose_number": 1, "occurrence_date": YESTERDAY,
       "lot_number": "BCG-2501", "site": "intradermal-left-arm", "route": "intradermal"}
COVID_2021 = {"vaccine_code": "COVID-19", "dose_number": 2, "occurrence_date": "2021-09-14"}


def url(citizen: uuid.UUID, section: str, *tail: str) -> str:
    return "/".join([f"/api/v1/citizens/{citizen}/{section}", *tail])


# ICD-10: the whole WHO list ----------

@pytest.mark.parametrize(("code", "stored", "title_en"), [
    ("J30.1", "J30.1", "Allergic rhinitis due to pollen"),
    ("r50", "R50", "Fever of other and unknown origin"),
    ("L30", "L30", "Other dermatitis"),
])
def test_a_who_code_outside_the_vietnamese_list_is_accepted_with_its_english_title(
        client, world, code, stored, title_en):
    created = client.post(url(world.patient, "conditions"), json={"icd10_code": code},
                          headers=world.headers("doctor"))
    assert created.status_code == 201, created.get_json()
    entry = created.get_json()
    assert entry["data"]["icd10_code"] == stored
    # No Vietnamese title is shipped for it: the WHO title, and the response says it is English.
    assert entry["display"] == {"icd10_code": title_en}
    assert entry["display_lang"] == {"icd10_code": "en"}
    assert entry["verification"] is None

    read = client.get(url(world.patient, "conditions", entry["id"]),
                      headers=world.headers("patient", **EN))
    assert read.get_json()["display"] == {"icd10_code": title_en}
    assert read.get_json()["display_lang"] == {"icd10_code": "en"}


def test_a_code_with_a_vietnamese_title_is_named_in_the_callers_language(client, world):
    created = client.post(url(world.patient, "conditions"), json={"icd10_code": "e119"},
                          headers=world.headers("doctor"))
    assert created.status_code == 201, created.get_json()
    entry = created.get_json()
    assert entry["display"] == {"icd10_code": "Đái tháo đường típ 2 không có biến chứng"}
    assert entry["display_lang"] == {"icd10_code": "vi"}
    english = client.get(url(world.patient, "conditions", entry["id"]),
                         headers=world.headers("doctor", **EN)).get_json()
    assert english["display"] == {"icd10_code": "Type 2 diabetes mellitus without complications"}
    assert english["display_lang"] == {"icd10_code": "en"}


@pytest.mark.parametrize("code", ["X99.99", "E10-E14", "I", "Z99.99", "hypertension"])
def test_codes_nobody_defines_and_chapters_or_blocks_are_refused(client, world, code):
    before = client.get(url(world.patient, "conditions"), headers=world.headers("doctor"))
    response = client.post(url(world.patient, "conditions"), json={"icd10_code": code},
                           headers=world.headers("doctor"))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"]["icd10_code"] == ["Mã ICD-10 không có trong danh mục."]
    english = client.post(url(world.patient, "conditions"), json={"icd10_code": code},
                          headers=world.headers("doctor", **EN))
    assert english.status_code == 422
    assert english.get_json()["errors"]["icd10_code"] == [
        "The ICD-10 code is not in the code list."]
    after = client.get(url(world.patient, "conditions"), headers=world.headers("doctor"))
    assert after.get_json()["items"] == before.get_json()["items"] == []


def test_a_list_of_diagnosis_codes_gets_a_list_of_names(client, world):
    body = {"encounter_type": "outpatient", "start_date": YESTERDAY,
            "diagnosis_codes": ["I10", "J30.1"]}
    created = client.post(url(world.patient, "encounters"), json=body,
                          headers=world.headers("doctor"))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["display"] == {"diagnosis_codes": [
        "Tăng huyết áp vô căn (nguyên phát)", "Allergic rhinitis due to pollen"]}
    assert created.get_json()["display_lang"] == {"diagnosis_codes": ["vi", "en"]}
    bad = client.post(url(world.patient, "encounters"),
                      json={**body, "diagnosis_codes": ["I10", "E10-E14"]},
                      headers=world.headers("doctor"))
    assert bad.status_code == 422
    assert list(bad.get_json()["errors"]) == ["diagnosis_codes.1"]


def test_family_history_and_medication_reasons_are_named(client, world):
    family = client.post(url(world.patient, "family-history"), json=SAMPLES["family-history"][0],
                         headers=world.headers("doctor", **EN))
    assert family.status_code == 201, family.get_json()
    assert family.get_json()["display"] == {
        "icd10_code": "Stroke, not specified as haemorrhage or infarction"}
    medication = client.post(url(world.patient, "medications"), json=SAMPLES["medications"][0],
                             headers=world.headers("doctor"))
    assert medication.get_json()["display"] == {
        "reason_code": "Tăng huyết áp vô căn (nguyên phát)"}


# Vaccines and observation kinds ----------

def test_an_immunization_shows_the_vaccine_name_in_vietnamese_and_in_english(client, world):
    created = client.post(url(world.child, "immunizations"), json=BCG,
                          headers=world.headers("station"))
    assert created.status_code == 201, created.get_json()
    entry = created.get_json()
    assert entry["display"] == {"vaccine_code": BCG_VI}
    assert entry["display_lang"] == {"vaccine_code": "vi"}
    assert entry["verification"] is None  # a station's own record waits for no one

    entry_url = url(world.child, "immunizations", entry["id"])
    english = client.get(entry_url, headers=world.headers("station", **EN)).get_json()
    assert english["display"] == {"vaccine_code": BCG_EN}
    assert english["display_lang"] == {"vaccine_code": "en"}
    listed = client.get(url(world.child, "immunizations"),
                        headers=world.headers("station", **EN)).get_json()
    assert [item["display"] for item in listed["items"]] == [{"vaccine_code": BCG_EN}]


def test_trimmed_lists_name_the_codes_they_show(client, world):
    client.post(url(world.child, "immunizations"), json=BCG, headers=world.headers("station"))
    base = url(world.child, "immunizations")
    headers = world.headers("station")

    # `fields` returns what it names (and `id`): names come when asked for.
    plain = client.get(base + "?fields=id,data.vaccine_code", headers=headers).get_json()
    assert set(plain["items"][0]) == {"id", "data"}
    chosen = client.get(base + "?fields=id,data.vaccine_code,display",
                        headers=headers).get_json()
    [item] = chosen["items"]
    assert item["data"] == {"vaccine_code": "BCG"}
    assert item["display"] == {"vaccine_code": BCG_VI}
    assert "display_lang" not in item
    other_data = client.get(base + "?fields=id,data.dose_number,display,display_lang",
                            headers=headers).get_json()
    assert other_data["items"][0]["display"] == other_data["items"][0]["display_lang"] == {}

    names_only = client.get(base + "?fields=display,display_lang", headers=headers).get_json()
    assert names_only["items"][0] == {"id": names_only["items"][0]["id"],
                                      "display": {"vaccine_code": BCG_VI},
                                      "display_lang": {"vaccine_code": "vi"}}
    verification = client.get(base + "?fields=verification", headers=headers).get_json()
    assert set(verification["items"][0]) == {"id", "verification"}


@pytest.mark.parametrize(("body", "vi", "en"), [
    (SAMPLES["observations"][0], "Huyết áp", "Blood pressure"),
    ({"kind": "heart-rate", "value": 72, "unit": "/min", "effective_at": NOW_UTC},
     "Nhịp tim", "Heart rate"),
])
def test_an_observation_shows_its_kind_name(client, world, body, vi, en):
    created = client.post(url(world.patient, "observations"), json=body,
                          headers=world.headers("doctor"))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["display"] == {"kind": vi}
    read = client.get(url(world.patient, "observations", created.get_json()["id"]),
                      headers=world.headers("patient", **EN))
    assert read.get_json()["display"] == {"kind": en}


# Every route that renders entries ----------

def test_versions_summary_and_export_carry_the_same_names(client, world):
    doctor = world.headers("doctor")
    created = client.post(url(world.patient, "conditions"), json={"icd10_code": "L30"},
                          headers=doctor)
    entry_url = url(world.patient, "conditions", created.get_json()["id"])
    corrected = client.patch(entry_url, json={"icd10_code": "J30.1"},
                             headers={**doctor, "If-Match": created.headers["ETag"]})
    assert corrected.status_code == 200, corrected.get_json()
    assert corrected.get_json()["display"] == {"icd10_code": "Allergic rhinitis due to pollen"}

    versions = client.get(entry_url + "/versions", headers=doctor).get_json()
    assert versions["current"]["display"] == {"icd10_code": "Allergic rhinitis due to pollen"}
    [earlier] = versions["versions"]
    assert earlier["display"] == {"icd10_code": "Other dermatitis"}  # its own code's name
    assert earlier["display_lang"] == {"icd10_code": "en"}
    assert earlier["verification"] is None

    client.post(url(world.patient, "conditions"), json={"icd10_code": "I10"}, headers=doctor)
    summary = client.get(f"/api/v1/citizens/{world.patient}/summary",
                         headers=world.headers("patient")).get_json()
    names = sorted(c["display"]["icd10_code"] for c in summary["active_conditions"])
    assert names == ["Allergic rhinitis due to pollen", "Tăng huyết áp vô căn (nguyên phát)"]

    exported = client.get(f"/api/v1/citizens/{world.patient}/export",
                          headers=world.headers("patient", **EN)).get_json()
    by_id = {e["id"]: e for e in exported["sections"]["conditions"]}
    mine = by_id[created.get_json()["id"]]
    assert mine["display"] == {"icd10_code": "Allergic rhinitis due to pollen"}
    assert mine["earlier_versions"][0]["display"] == {"icd10_code": "Other dermatitis"}
    assert {e["display"]["icd10_code"] for e in by_id.values()} == {
        "Allergic rhinitis due to pollen", "Essential (primary) hypertension"}


def test_batch_results_name_the_vaccine(client, world):
    item = {"client_item_id": "a-1", "citizen_id": str(world.child), **BCG}
    response = client.post("/api/v1/immunizations/batch", json={"items": [item]},
                           headers=world.headers("station", **EN))
    assert response.status_code == 200, response.get_json()
    [result] = response.get_json()["results"]
    assert result["status"] == 201, result
    assert result["entry"]["display"] == {"vaccine_code": BCG_EN}


# Verification of what a citizen reported ----------

def test_a_citizen_reported_dose_is_unverified_until_a_station_verifies_it(client, world):
    reported = client.post(url(world.patient, "immunizations"), json=COVID_2021,
                           headers=world.headers("patient"))
    assert reported.status_code == 201, reported.get_json()
    entry = reported.get_json()
    assert entry["source"] == "citizen-reported"
    assert entry["verification"] == {"status": "unverified", "verified_at": None,
                                     "verified_facility_id": None}
    assert entry["display"] == {"vaccine_code": "Vắc xin COVID-19"}

    station = world.headers("station", **{"If-Match": reported.headers["ETag"]})
    verified = client.post(url(world.patient, "immunizations", entry["id"], "verify"),
                           headers=station)
    assert verified.status_code == 200, verified.get_json()
    verification = verified.get_json()["verification"]
    assert verification["status"] == "verified"
    assert verification["verified_facility_id"] == str(world.station)
    assert verification["verified_at"].endswith("+00:00")

    versions = client.get(url(world.patient, "immunizations", entry["id"], "versions"),
                          headers=world.headers("patient")).get_json()
    assert versions["current"]["verification"] == verification
    assert versions["versions"][0]["verification"]["status"] == "unverified"


# The one function every view uses ----------

def test_every_coded_field_of_the_section_schemas_gets_a_name():
    """A field validated against ICD-10 or the vaccine catalogue, or an observation kind, is in
    CODED_FIELDS: adding a coded field to a section without a name beside it fails here."""
    for section, schema in SECTION_SCHEMAS.items():
        for name, field in schema().fields.items():
            inner = field.inner if isinstance(field, ma_fields.List) else field
            if icd10_code in (inner.validators or []):
                assert CODED_FIELDS[section].get(name) == ICD10, f"{section}.{name}"
    assert "vaccine_code" in ImmunizationSchema().fields
    assert CODED_FIELDS["immunizations"] == {"vaccine_code": "vaccine"}
    assert CODED_FIELDS["observations"] == {"kind": "observation-kind"}
    # One field name means one list everywhere (versions are named without their section).
    meanings: dict[str, str] = {}
    for fields in CODED_FIELDS.values():
        for name, system in fields.items():
            assert meanings.setdefault(name, system) == system, name
    for section, schema in SECTION_SCHEMAS.items():
        for name in set(schema().fields) & set(meanings):
            assert name in CODED_FIELDS.get(section, {}), f"{section}.{name} named by accident"


def test_unknown_and_legacy_codes_get_no_name_rather_than_an_error():
    assert display_names("conditions", {"icd10_code": "K99.9"}, "vi").names == {}
    assert display_names("immunizations", {"vaccine_code": "OLD-DTP"}, "en").names == {}
    assert display_names("observations", {"kind": "mood"}, "vi").names == {}
    assert display_names("encounters", {"diagnosis_codes": ["I10", "??"]}, "en").names == {
        "diagnosis_codes": ["Essential (primary) hypertension", None]}
    assert display_names("encounters", {"diagnosis_codes": [7, None]}, "en").names == {}
    assert display_names("conditions", None, "vi").names == {}
    assert display_names("allergies", {"substance": "BCG"}, "vi").names == {}
    # An unknown language is the default one; no section: recognised by field name.
    assert display_names("immunizations", {"vaccine_code": "bcg"}, "fr").names == {
        "vaccine_code": BCG_VI}
    assert display_names(None, {"vaccine_code": "BCG"}, "en").languages == {"vaccine_code": "en"}
