"""The code systems the FHIR face names, and the ones it publishes itself.

International systems keep their canonical URLs (ICD-10, LOINC, UCUM, ATC, HL7 terminology);
what only this service defines (the national vaccine catalogue, antigens, record categories,
schedule statuses) lives under `https://moh.gov.vn/fhir/`, and the vaccine catalogue is
published as a CodeSystem resource (`GET /fhir/R4/CodeSystem/vn-vaccines`) so a receiver can
resolve every vaccine code it is sent.
"""

from __future__ import annotations

from typing import Any

from registry.reference.vaccines import antigens, vaccine_catalogue, vaccine_catalogue_source

BASE = "https://moh.gov.vn/fhir"

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
ACT_SITE = "http://terminology.hl7.org/CodeSystem/v3-ActSite"
ROUTE = "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
REPORT_ORIGIN = "http://terminology.hl7.org/CodeSystem/immunization-origin"
RECOMMENDATION_STATUS = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_CATEGORY = "http://loinc.org"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
AUDIT_EVENT_SUBTYPE = "http://hl7.org/fhir/restful-interaction"
AUDIT_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
AUDIT_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PURPOSE_OF_USE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"

HEALTH_ID = f"{BASE}/sid/cccd"
SOCIAL_INSURANCE = f"{BASE}/sid/bhxh"
PRACTISING_CERTIFICATE = f"{BASE}/sid/practising-certificate"
FACILITY_CODE = f"{BASE}/sid/facility-code"
VACCINES = f"{BASE}/CodeSystem/vn-vaccines"
ANTIGENS = f"{BASE}/CodeSystem/vn-antigens"
OBSERVATION_KINDS = f"{BASE}/CodeSystem/observation-kind"
HISTORY_CATEGORIES = f"{BASE}/CodeSystem/history-category"
EXAM_TYPES = f"{BASE}/CodeSystem/examination-type"
ENCOUNTER_TYPES = f"{BASE}/CodeSystem/encounter-type"
SENSITIVITY = f"{BASE}/CodeSystem/sensitivity"
ENTRY_SOURCE = f"{BASE}/CodeSystem/entry-source"
SCHEDULE_STATUS = f"{BASE}/CodeSystem/schedule-status"
RECORD_SECTION = f"{BASE}/CodeSystem/record-section"
FACILITY_KIND = f"{BASE}/CodeSystem/facility-kind"
PROFESSION = f"{BASE}/CodeSystem/profession"
GUARDIAN_KIND = f"{BASE}/CodeSystem/guardian-kind"
AUDIT_RULE = f"{BASE}/CodeSystem/policy-rule"

# Restricted labels (DESIGN.md §2) → HL7 v3 ActCode sensitivity codes (the security labels
# HAPI and the HL7 security-labeling guide use); every restricted label is also "R".
SENSITIVITY_ACT_CODES = {
    "mental-health": "PSY",
    "hiv-sti": "HIV",
    "reproductive": "SEX",
    "substance-use": "ETH",
    "genetic": "GDIS",
}

PUBLISHED = ("vn-vaccines", "vn-antigens")


def code_system(name: str, *, lang: str) -> dict[str, Any] | None:
    """A CodeSystem this service publishes (None: not one of ours), names in `lang` with the
    other language as a designation."""
    other = "en" if lang == "vi" else "vi"
    if name == "vn-vaccines":
        source = vaccine_catalogue_source()
        concepts = [
            {"code": v.code, "display": v.name(lang),
             "designation": [{"language": other, "value": v.name(other)}],
             "property": [{"code": "antigen", "valueCode": a} for a in v.antigens]
             + [{"code": "national-programme", "valueBoolean": v.is_epi}]}
            for v in vaccine_catalogue().values()
        ]
        return _code_system(
            name, VACCINES, version=str(source.get("version", "")),
            title=("Danh mục vắc xin quốc gia" if lang == "vi"
                   else "National vaccine catalogue of Viet Nam"),
            description=str(source.get("source", "")), concepts=concepts,
            properties=[
                {"code": "antigen", "uri": ANTIGENS, "type": "code",
                 "description": "An antigen the vaccine protects against"},
                {"code": "national-programme", "type": "boolean",
                 "description": "Given in the expanded programme on immunization"},
            ])
    if name == "vn-antigens":
        concepts = [
            {"code": a.code, "display": a.name(lang),
             "designation": [{"language": other, "value": a.name(other)}]}
            for a in antigens().values()
        ]
        return _code_system(name, ANTIGENS, version=str(
            vaccine_catalogue_source().get("version", "")),
            title="Kháng nguyên" if lang == "vi" else "Antigens", description=None,
            concepts=concepts, properties=[])
    return None


def _code_system(name: str, url: str, *, version: str, title: str, description: str | None,
                 concepts: list[dict[str, Any]], properties: list[dict[str, Any]]
                 ) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "id": name,
        "url": url,
        "version": version or None,
        "name": "".join(part.capitalize() for part in name.split("-")),
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": "Bộ Y tế (Ministry of Health of Viet Nam) — phr-vn",
        "description": description,
        "caseSensitive": False,
        "content": "complete",
        "count": len(concepts),
        "property": properties or None,
        "concept": concepts,
    }
    return {k: v for k, v in resource.items() if v is not None}
