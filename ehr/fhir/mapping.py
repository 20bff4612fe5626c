"""Record → FHIR R4 (4.0.1) JSON: one function per kind of thing, plain dicts out.

Pure shape: no queries, no permissions (the rows come from the records repository after the
consent decision; names from `ehr.records.names_of`). The app emits dicts; tests parse them
with `fhir.resources.R4B` models (the closest maintained models to 4.0.1).

Section → resource (DESIGN.md §4, auth/scopes.py SECTION_RESOURCES):
allergies → AllergyIntolerance, conditions → Condition, encounters → Encounter,
observations → Observation (vital-signs; glucose and HbA1c laboratory; waist exam),
medications → MedicationStatement, immunizations → Immunization, lab-results → Observation
(laboratory) *and* DiagnosticReport (the same id: each lab entry is one report of one result),
family-history → FamilyMemberHistory, history → Observation (social-history),
examinations → Encounter (type periodic examination: the exam's findings in its narrative and
its diagnoses as reason codes). Every resource id is the entry id; `meta.versionId` the entry's
version; restricted labels become security labels.
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from auth.scopes import SECTION_RESOURCES
from core.encryption import ERASED
from ehr.fhir import codesystems as cs
from ehr.record_models import STATUS_ENTERED_IN_ERROR
from ehr.views import Names, iso
from registry.reference.display import display_names
from registry.reference.observations import observation_kinds, observation_panels
from registry.reference.vaccines import antigens

if TYPE_CHECKING:
    from ehr.record_models import RecordEntry
    from registry.models import Citizen, Facility, Practitioner
    from registry.reference.schedule import ScheduledDoseStatus

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"

# FHIR type → the record sections it is made of (search walks these).
RESOURCE_SECTIONS: dict[str, tuple[str, ...]] = {
    "AllergyIntolerance": ("allergies",),
    "Condition": ("conditions",),
    "Encounter": ("encounters", "examinations"),
    "Observation": ("observations", "lab-results", "history"),
    "MedicationStatement": ("medications",),
    "Immunization": ("immunizations",),
    "DiagnosticReport": ("lab-results",),
    "FamilyMemberHistory": ("family-history",),
}

# The resource an entry of a section is by default: the scopes' map (DESIGN.md §4), except that a
# lab entry is first an Observation (and also a DiagnosticReport, with the same id).
SECTION_TYPES: dict[str, str] = {**SECTION_RESOURCES, "lab-results": "Observation"}

VITAL_KINDS = frozenset({"systolic-bp", "diastolic-bp", "heart-rate", "body-temperature",
                         "body-weight", "body-height", "bmi", "spo2", "respiratory-rate",
                         "blood-pressure"})
LAB_KINDS = frozenset({"blood-glucose", "hba1c"})

_CATEGORY_DISPLAY = {"vital-signs": "Vital Signs", "laboratory": "Laboratory",
                     "social-history": "Social History", "exam": "Exam"}


def _clean(value: Any) -> Any:
    """Drop None, empty lists and empty dicts, recursively (FHIR forbids empty elements)."""
    # Only containers are walked: leaves (most of a resource) are kept as they are.
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            if isinstance(item, dict | list):
                item = _clean(item)
            if item is not None and item != "" and item != [] and item != {}:
                cleaned[key] = item
        return cleaned
    if isinstance(value, list):
        kept = []
        for item in value:
            if isinstance(item, dict | list):
                item = _clean(item)
            if item is not None and item != "" and item != [] and item != {}:
                kept.append(item)
        return kept
    return value


def _plain(value: Any) -> Any:
    return None if value is ERASED else value


def _instant(value: dt.datetime | None) -> str | None:
    return iso(value) if value is not None else None


def _ref(kind: str, ident: Any, display: str | None = None) -> dict[str, Any] | None:
    if ident is None:
        return None
    return {"reference": f"{kind}/{ident}", "display": display}


def _narrative(parts: Iterable[tuple[str, str | None]]) -> dict[str, Any] | None:
    rows = [(label, text) for label, text in parts if text]
    if not rows:
        return None
    body = "".join(f"<p><b>{html.escape(label)}</b>: {html.escape(text)}</p>"
                   for label, text in rows)
    return {"status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def _concept(system: str, code: str | None, display: str | None = None,
             text: str | None = None) -> dict[str, Any] | None:
    if not code and not text:
        return None
    coding = [{"system": system, "code": code, "display": display}] if code else []
    return {"coding": coding, "text": text}


def _meta(entry: RecordEntry) -> dict[str, Any]:
    security: list[dict[str, Any]] = []
    label = entry.sensitivity
    if label and label != "normal":
        security.append({"system": cs.CONFIDENTIALITY, "code": "R", "display": "restricted"})
        act = cs.SENSITIVITY_ACT_CODES.get(label)
        if act:
            security.append({"system": cs.ACT_CODE, "code": act})
        security.append({"system": cs.SENSITIVITY, "code": label})
    else:
        security.append({"system": cs.CONFIDENTIALITY, "code": "N", "display": "normal"})
    return {
        "versionId": str(entry.version),
        "lastUpdated": _instant(entry.updated_at),
        "security": security,
        "tag": [{"system": cs.ENTRY_SOURCE, "code": entry.source},
                {"system": cs.RECORD_SECTION, "code": entry.section}],
    }


def _erased(entry: RecordEntry) -> bool:
    return entry.status == STATUS_ENTERED_IN_ERROR


def _notes(*texts: str | None) -> list[dict[str, str]]:
    return [{"text": t} for t in texts if t]


class _Context:
    """What every section's mapper needs of one entry."""

    def __init__(self, entry: RecordEntry, names: Names, lang: str) -> None:
        self.entry = entry
        self.names = names
        self.lang = lang if lang in ("vi", "en") else "vi"
        content = _plain(entry.content)
        self.data: dict[str, Any] = content if isinstance(content, dict) else {}
        self.display = display_names(entry.section, self.data, self.lang).names
        self.patient = _ref("Patient", entry.citizen_id)

    def author(self) -> dict[str, Any] | None:
        pid = self.entry.author_practitioner_id
        return _ref("Practitioner", pid, self.names.practitioners.get(pid) if pid else None)

    def facility(self) -> dict[str, Any] | None:
        fid = self.entry.facility_id
        if fid is None:
            return None
        return _ref("Organization", fid, self.names.facilities.get(fid, (None, None))[1])

    def recorder(self) -> dict[str, Any] | None:
        return self.author() or self.facility()

    def base(self, resource_type: str) -> dict[str, Any]:
        return {"resourceType": resource_type, "id": str(self.entry.id),
                "meta": _meta(self.entry)}

    def icd10(self, code: str | None, display: str | None, text: str | None = None
              ) -> dict[str, Any] | None:
        return _concept(cs.ICD10, code, display, text or display)

    def icd10_list(self, field: str) -> list[dict[str, Any]]:
        codes = self.data.get(field) or []
        names = self.display.get(field) or [None] * len(codes)
        return [c for c in (self.icd10(code, name) for code, name in zip(codes, names,
                                                                          strict=False)) if c]

    def reported_unverified(self) -> bool:
        return self.entry.source == "citizen-reported" and self.entry.verified_at is None


# --- sections -----------------------------------------------------------------------------

def _allergy(c: _Context) -> dict[str, Any]:
    d = c.data
    eie = _erased(c.entry)
    verification = ("entered-in-error" if eie
                    else "unconfirmed" if c.reported_unverified() else "confirmed")
    reaction = None
    if d.get("reaction"):
        reaction = [{"manifestation": [{"text": d["reaction"]}], "severity": d.get("severity")}]
    return {
        **c.base("AllergyIntolerance"),
        # ait-2: an entered-in-error AllergyIntolerance has no clinical status.
        "clinicalStatus": None if eie else _concept(
            cs.ALLERGY_CLINICAL, d.get("clinical_status", "active")),
        "verificationStatus": _concept(cs.ALLERGY_VERIFICATION, verification),
        "category": [d["category"]] if d.get("category") else None,
        "criticality": d.get("criticality"),
        "code": {"text": d.get("substance")},
        "patient": c.patient,
        "onsetDateTime": d.get("onset_date"),
        "recordedDate": _instant(c.entry.created_at),
        "recorder": c.recorder(),
        "reaction": reaction,
        "note": _notes(None if reaction else _severity_note(d), d.get("note")),
    }


def _severity_note(d: Mapping[str, Any]) -> str | None:
    return f"severity: {d['severity']}" if d.get("severity") else None


def _condition(c: _Context) -> dict[str, Any]:
    d = c.data
    eie = _erased(c.entry)
    verification = ("entered-in-error" if eie
                    else "unconfirmed" if c.reported_unverified() else "confirmed")
    return {
        **c.base("Condition"),
        # con-5: an entered-in-error Condition has no clinical status.
        "clinicalStatus": None if eie else _concept(
            cs.CONDITION_CLINICAL, d.get("clinical_status", "active")),
        "verificationStatus": _concept(cs.CONDITION_VERIFICATION, verification),
        "category": [_concept(cs.CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
        "code": c.icd10(d.get("icd10_code"), c.display.get("icd10_code"), d.get("text")),
        "subject": c.patient,
        "onsetDateTime": d.get("onset_date"),
        "abatementDateTime": d.get("abatement_date"),
        "recordedDate": _instant(c.entry.created_at),
        "recorder": c.author(),
        "note": _notes(d.get("note")),
    }


_ENCOUNTER_CLASS = {"outpatient": ("AMB", "ambulatory"),
                    "inpatient": ("IMP", "inpatient encounter"),
                    "home-visit": ("HH", "home health"), "telehealth": ("VR", "virtual"),
                    "emergency": ("EMER", "emergency")}

_LABELS = {
    "vi": {"summary": "Tóm tắt", "note": "Ghi chú", "history": "Bệnh sử",
           "physical_exam": "Khám thực thể", "test_summary": "Cận lâm sàng",
           "conclusion": "Kết luận", "counselling": "Tư vấn", "next_exam_due": "Hẹn khám lại",
           "exam": "Khám sức khỏe", "reason": "Lý do"},
    "en": {"summary": "Summary", "note": "Note", "history": "History",
           "physical_exam": "Physical examination", "test_summary": "Test results",
           "conclusion": "Conclusion", "counselling": "Counselling",
           "next_exam_due": "Next examination due", "exam": "Health examination",
           "reason": "Reason"},
}


def _encounter(c: _Context) -> dict[str, Any]:
    d = c.data
    code, display = _ENCOUNTER_CLASS.get(d.get("encounter_type", ""), ("AMB", "ambulatory"))
    labels = _LABELS[c.lang]
    reasons = ([{"text": d["reason"]}] if d.get("reason") else []) + c.icd10_list(
        "diagnosis_codes")
    return {
        **c.base("Encounter"),
        "text": _narrative([(labels["reason"], d.get("reason")),
                            (labels["summary"], d.get("summary")),
                            (labels["note"], d.get("note"))]),
        "status": "entered-in-error" if _erased(c.entry) else "finished",
        "class": {"system": cs.ACT_CODE, "code": code, "display": display},
        "type": [_concept(cs.ENCOUNTER_TYPES, d.get("encounter_type"))],
        "subject": c.patient,
        "participant": [{"individual": c.author()}] if c.author() else None,
        "period": {"start": d.get("start_date"), "end": d.get("end_date")},
        "reasonCode": reasons,
        "serviceProvider": c.facility(),
    }


def _examination(c: _Context) -> dict[str, Any]:
    d = c.data
    labels = _LABELS[c.lang]
    return {
        **c.base("Encounter"),
        "text": _narrative([(labels[name], d.get(name)) for name in (
            "history", "physical_exam", "test_summary", "conclusion", "counselling",
            "next_exam_due", "note")]),
        "status": "entered-in-error" if _erased(c.entry) else "finished",
        "class": {"system": cs.ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [_concept(cs.EXAM_TYPES, d.get("exam_type"), text=labels["exam"])],
        "subject": c.patient,
        "participant": [{"individual": c.author()}] if c.author() else None,
        "period": {"start": d.get("examined_on"), "end": d.get("examined_on")},
        "reasonCode": c.icd10_list("diagnosis_codes"),
        "serviceProvider": c.facility(),
    }


def observation_category(entry: RecordEntry) -> str:
    """The Observation category of an entry of observations, lab-results or history."""
    if entry.section == "lab-results":
        return "laboratory"
    if entry.section == "history":
        return "social-history"
    content = _plain(entry.content)
    kind = content.get("kind") if isinstance(content, dict) else None
    if kind in LAB_KINDS:
        return "laboratory"
    if kind in VITAL_KINDS:
        return "vital-signs"
    return "exam"


def _category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": cs.OBSERVATION_CATEGORY, "code": code,
                         "display": _CATEGORY_DISPLAY.get(code)}]}]


def _quantity(value: Any, unit: str | None) -> dict[str, Any] | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return {"value": value, "unit": unit, "system": cs.UCUM if unit else None, "code": unit}


def _observation_status(c: _Context) -> str:
    if _erased(c.entry):
        return "entered-in-error"
    return "preliminary" if c.reported_unverified() else "final"


def _vital(c: _Context) -> dict[str, Any]:
    d = c.data
    kind = d.get("kind", "")
    display = c.display.get("kind")
    panel = observation_panels().get(kind)
    known = observation_kinds().get(kind)
    loinc = panel.loinc if panel else known.loinc if known else None
    codings = [{"system": cs.LOINC, "code": loinc, "display": display}] if loinc else []
    codings.append({"system": cs.OBSERVATION_KINDS, "code": kind, "display": display})
    resource: dict[str, Any] = {
        **c.base("Observation"),
        "status": _observation_status(c),
        "category": _category(observation_category(c.entry)),
        "code": {"coding": codings, "text": display or kind},
        "subject": c.patient,
        "effectiveDateTime": d.get("effective_at"),
        "issued": _instant(c.entry.created_at),
        "performer": [p for p in (c.author(), c.facility()) if p],
        "method": {"text": d["method"]} if d.get("method") else None,
        "note": _notes(d.get("note")),
    }
    if panel is not None:
        unit = d.get("unit", "mm[Hg]")
        kinds = observation_kinds()
        resource["component"] = [
            {"code": {"coding": [{"system": cs.LOINC, "code": kinds[part].loinc,
                                  "display": kinds[part].display(c.lang)}],
                      "text": kinds[part].display(c.lang)},
             "valueQuantity": _quantity(d.get(field), unit)}
            for part, field in zip(panel.parts, ("systolic", "diastolic"), strict=False)
            if part in kinds
        ]
    else:
        resource["valueQuantity"] = _quantity(d.get("value"), d.get("unit"))
    return resource


_INTERPRETATION = {"normal": ("N", "Normal"), "abnormal": ("A", "Abnormal"),
                   "low": ("L", "Low"), "high": ("H", "High"),
                   "critical-low": ("LL", "Critical low"), "critical-high": ("HH", "Critical high")}


def _lab_code(d: Mapping[str, Any]) -> dict[str, Any] | None:
    return _concept(cs.LOINC, d.get("loinc_code"), d.get("test_name"), d.get("test_name"))


def _interpretation(d: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    found = _INTERPRETATION.get(d.get("interpretation") or "")
    if not found:
        return None
    return [{"coding": [{"system": cs.INTERPRETATION, "code": found[0], "display": found[1]}]}]


def _lab_value(d: Mapping[str, Any]) -> dict[str, Any]:
    raw = d.get("value")
    try:
        number = float(raw) if isinstance(raw, str) and raw.strip() else None
    except ValueError:
        number = None
    if number is not None and d.get("unit"):
        value: int | float = int(number) if number.is_integer() and "." not in raw else number
        return {"valueQuantity": _quantity(value, d.get("unit"))}
    return {"valueString": raw}


def _lab_observation(c: _Context) -> dict[str, Any]:
    d = c.data
    return {
        **c.base("Observation"),
        "status": _observation_status(c),
        "category": _category("laboratory"),
        "code": _lab_code(d),
        "subject": c.patient,
        "effectiveDateTime": d.get("issued_on"),
        "issued": _instant(c.entry.created_at),
        "performer": [p for p in (c.facility(), c.author()) if p],
        **_lab_value(d),
        "interpretation": _interpretation(d),
        "referenceRange": [{"text": d["reference_range"]}] if d.get("reference_range") else None,
        "note": _notes(f"specimen: {d['specimen']}" if d.get("specimen") else None,
                       d.get("note")),
    }


def diagnostic_report_resource(entry: RecordEntry, names: Names, *, lang: str) -> dict[str, Any]:
    """A lab entry as a DiagnosticReport (same id as its result Observation)."""
    c = _Context(entry, names, lang)
    d = c.data
    status = ("entered-in-error" if _erased(entry)
              else "preliminary" if c.reported_unverified() else "final")
    return _clean({
        **c.base("DiagnosticReport"),
        "status": status,
        "category": [{"coding": [{"system": cs.DIAGNOSTIC_SERVICE, "code": "LAB",
                                  "display": "Laboratory"}]}],
        "code": _lab_code(d) or {"text": "laboratory"},
        "subject": c.patient,
        "effectiveDateTime": d.get("issued_on"),
        "issued": _instant(entry.created_at),
        "performer": [p for p in (c.facility(), c.author()) if p],
        "result": [_ref("Observation", entry.id, d.get("test_name"))],
        "conclusion": d.get("note"),
    })


_HISTORY_LOINC = {"smoking": ("72166-2", "Tobacco smoking status"),
                  "alcohol": ("11331-6", "History of Alcohol use"),
                  "physical-activity": ("68516-4", "Physical activity"),
                  "occupational-exposure": ("11341-5", "History of Occupation"),
                  "surgery": ("47519-4", "History of Procedures"),
                  "disability": ("69856-3", "Disability status"),
                  "reproductive": ("10162-6", "History of pregnancies")}


def _history(c: _Context) -> dict[str, Any]:
    d = c.data
    category = d.get("category")
    codings = []
    if category in _HISTORY_LOINC:
        loinc, display = _HISTORY_LOINC[category]
        codings.append({"system": cs.LOINC, "code": loinc, "display": display})
    codings.append({"system": cs.HISTORY_CATEGORIES, "code": category})
    start, end = d.get("start_date"), d.get("end_date")
    return {
        **c.base("Observation"),
        "status": _observation_status(c),
        "category": _category("social-history"),
        "code": {"coding": codings, "text": category},
        "subject": c.patient,
        "effectivePeriod": {"start": start, "end": end} if start or end else None,
        "issued": _instant(c.entry.created_at),
        "performer": [p for p in (c.author(),) if p],
        "valueString": d.get("description"),
        "component": [{"code": {"text": "status"}, "valueString": d["status"]}]
        if d.get("status") else None,
        "note": _notes(f"quantity: {d['quantity']}" if d.get("quantity") else None,
                       d.get("note")),
    }


def _medication(c: _Context) -> dict[str, Any]:
    d = c.data
    status = "entered-in-error" if _erased(c.entry) else d.get("medication_status", "active")
    dosage_text = ", ".join(p for p in (d.get("dose"), d.get("frequency")) if p) or None
    dosage = None
    if dosage_text or d.get("route"):
        dosage = [{"text": dosage_text, "route": {"text": d["route"]} if d.get("route") else None}]
    reason = c.icd10(d.get("reason_code"), c.display.get("reason_code"))
    return {
        **c.base("MedicationStatement"),
        "status": status,
        "medicationCodeableConcept": _concept(cs.ATC, d.get("atc_code"), None, d.get("name")),
        "subject": c.patient,
        "effectivePeriod": {"start": d.get("start_date"), "end": d.get("end_date")},
        "dateAsserted": _instant(c.entry.created_at),
        "informationSource": c.recorder() if c.entry.source != "citizen-reported" else c.patient,
        "reasonCode": [reason] if reason else None,
        "note": _notes(d.get("note")),
        "dosage": dosage,
    }


_SITES = {"left-arm": ("LA", "left arm"), "right-arm": ("RA", "right arm"),
          "left-thigh": ("LT", "left thigh"), "right-thigh": ("RT", "right thigh"),
          "intradermal-left-arm": ("LA", "left arm")}
_ROUTES = {"intramuscular": ("IM", "Injection, intramuscular"),
           "subcutaneous": ("SQ", "Injection, subcutaneous"),
           "intradermal": ("IDINJ", "Injection, intradermal"),
           "oral": ("PO", "Swallow, oral"), "intranasal": ("NASINHLC", "Inhalation, nasal")}


def _immunization(c: _Context) -> dict[str, Any]:
    d = c.data
    reported = c.entry.source == "citizen-reported"
    site = _SITES.get(d.get("site") or "")
    route = _ROUTES.get(d.get("route") or "")
    performers = []
    if d.get("performer_id"):
        pid = uuid.UUID(str(d["performer_id"]))
        performers.append({"actor": _ref("Practitioner", pid, c.names.practitioners.get(pid))})
    if c.facility():
        performers.append({"actor": c.facility()})
    code = d.get("vaccine_code")
    vaccine_name = c.display.get("vaccine_code")
    return {
        **c.base("Immunization"),
        "status": "entered-in-error" if _erased(c.entry) else "completed",
        "vaccineCode": _concept(cs.VACCINES, code, vaccine_name, vaccine_name or code),
        "patient": c.patient,
        "occurrenceDateTime": d.get("occurrence_date"),
        "recorded": _instant(c.entry.created_at),
        "primarySource": not reported,
        "reportOrigin": _concept(cs.REPORT_ORIGIN, "recall", "Parent/Guardian/Patient Recall")
        if reported else None,
        "location": {"display": d["facility_name"]} if d.get("facility_name") else None,
        "lotNumber": d.get("lot_number"),
        "expirationDate": d.get("expiry_date"),
        "site": {"coding": [{"system": cs.ACT_SITE, "code": site[0], "display": site[1]}],
                 "text": d.get("site")} if site else (
                     {"text": d["site"]} if d.get("site") else None),
        "route": {"coding": [{"system": cs.ROUTE, "code": route[0], "display": route[1]}],
                  "text": d.get("route")} if route else None,
        "performer": performers,
        "note": _notes(f"reaction: {d['reaction']}" if d.get("reaction") else None,
                       d.get("note")),
        "protocolApplied": [{"doseNumberPositiveInt": d["dose_number"]}]
        if d.get("dose_number") else None,
    }


_RELATIONSHIPS = {"mother": ("MTH", "mother"), "father": ("FTH", "father"),
                  "sibling": ("SIB", "sibling"), "child": ("CHILD", "child"),
                  "grandparent": ("GRPRN", "grandparent"),
                  "aunt-uncle": ("EXT", "extended family member"),
                  "other": ("FAMMEMB", "family member")}


def _family_history(c: _Context) -> dict[str, Any]:
    d = c.data
    code, display = _RELATIONSHIPS.get(d.get("relationship", ""), ("FAMMEMB", "family member"))
    condition = c.icd10(d.get("icd10_code"), c.display.get("icd10_code"),
                        d.get("condition_text"))
    onset = None
    if isinstance(d.get("onset_age"), int):
        onset = {"value": d["onset_age"], "unit": "a", "system": cs.UCUM, "code": "a"}
    return {
        **c.base("FamilyMemberHistory"),
        "status": "entered-in-error" if _erased(c.entry) else "completed",
        "patient": c.patient,
        "date": _instant(c.entry.created_at),
        "relationship": {"coding": [{"system": cs.ROLE_CODE, "code": code,
                                     "display": display}]},
        "deceasedBoolean": d.get("deceased"),
        "condition": [{"code": condition, "onsetAge": onset}] if condition else None,
        "note": _notes(d.get("note")),
    }


_MAPPERS = {
    "allergies": _allergy,
    "conditions": _condition,
    "encounters": _encounter,
    "observations": _vital,
    "medications": _medication,
    "immunizations": _immunization,
    "lab-results": _lab_observation,
    "family-history": _family_history,
    "history": _history,
    "examinations": _examination,
}


def entry_resource(entry: RecordEntry, names: Names, *, lang: str) -> dict[str, Any]:
    """One record entry as its FHIR resource (`SECTION_TYPES`; a lab entry as its result
    Observation — `diagnostic_report_resource` gives its report). An erased (crypto-shredded)
    entry keeps its envelope and loses its content."""
    return _clean(_MAPPERS[entry.section](_Context(entry, names, lang)))


def resource_of_type(resource_type: str, entry: RecordEntry, names: Names, *,
                     lang: str) -> dict[str, Any]:
    """The entry as `resource_type` (DiagnosticReport for a lab entry, else its own type)."""
    if resource_type == "DiagnosticReport":
        return diagnostic_report_resource(entry, names, lang=lang)
    return entry_resource(entry, names, lang=lang)


# --- people and places --------------------------------------------------------------------

def patient_resource(citizen: Citizen, *, lang: str, full: bool) -> dict[str, Any]:
    """The person; `full` (self, guardian, clinician: `sees_contact_details`) adds identifiers
    and contact details, as the JSON demographics do."""
    name = _plain(citizen.full_name)
    birth = _plain(citizen.date_of_birth)
    sex = _plain(citizen.sex)
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(citizen.id),
        "meta": {"versionId": str(citizen.version), "lastUpdated": _instant(citizen.updated_at)},
        "active": citizen.status == "active" if getattr(citizen, "status", None) else None,
        "name": [{"use": "official", "text": name, **_name_parts(name)}] if name else None,
        "gender": {"male": "male", "female": "female", "other": "other"}.get(sex or "",
                                                                           "unknown"),
        "birthDate": iso(birth) if isinstance(birth, dt.date) else None,
    }
    if full:
        health_id = _plain(citizen.health_id)
        insurance = _plain(citizen.social_insurance_code)
        resource["identifier"] = [
            {"use": "official", "system": cs.HEALTH_ID, "value": health_id} if health_id
            else None,
            {"use": "secondary", "system": cs.SOCIAL_INSURANCE, "value": insurance}
            if insurance else None,
        ]
        telecom = []
        if _plain(citizen.phone):
            telecom.append({"system": "phone", "value": _plain(citizen.phone), "use": "mobile"})
        if _plain(citizen.email):
            telecom.append({"system": "email", "value": _plain(citizen.email)})
        resource["telecom"] = telecom
        address = _plain(citizen.address)
        if isinstance(address, dict):
            resource["address"] = [_address(address)]
        ethnicity = _plain(citizen.ethnicity)
        if ethnicity:
            resource["extension"] = [{
                "url": f"{cs.BASE}/StructureDefinition/ethnicity", "valueString": ethnicity}]
        resource["communication"] = [{
            "language": {"coding": [{"system": "urn:ietf:bcp:47",
                                     "code": citizen.preferred_language or "vi"}]},
            "preferred": True}]
    return _clean(resource)


def _name_parts(name: str) -> dict[str, Any]:
    # Vietnamese order: family name first, given name last ("Nguyễn Văn An": family Nguyễn).
    parts = name.split()
    if len(parts) < 2:
        return {"given": parts}
    return {"family": parts[0], "given": parts[1:]}


def _address(address: Mapping[str, Any]) -> dict[str, Any]:
    from registry.reference import admin_units

    province = admin_units.province(address.get("province_code") or "")
    commune = (admin_units.commune(address["commune_code"])
               if address.get("commune_code") else None)
    lines = [v for v in (address.get("line"), address.get("village")) if v]
    return {
        "use": "home",
        "line": lines,
        "city": commune.name if commune is not None else None,
        "state": province.name if province is not None else None,
        "country": "VN",
        "extension": [
            {"url": f"{cs.BASE}/StructureDefinition/province-code",
             "valueCode": address.get("province_code")},
            {"url": f"{cs.BASE}/StructureDefinition/commune-code",
             "valueCode": address.get("commune_code")},
        ],
    }


def practitioner_resource(practitioner: Practitioner,
                          facilities: Iterable[Facility] = ()) -> dict[str, Any]:
    """A practitioner of the public register (name, profession, certificate)."""
    facilities = list(facilities)
    return _clean({
        "resourceType": "Practitioner",
        "id": str(practitioner.id),
        "identifier": [{"system": cs.PRACTISING_CERTIFICATE,
                        "value": practitioner.practising_certificate}],
        "active": practitioner.active,
        "name": [{"text": practitioner.full_name, **_name_parts(practitioner.full_name)}],
        "qualification": [{"code": {"coding": [{"system": cs.PROFESSION,
                                                "code": practitioner.profession}],
                                    "text": practitioner.profession}}],
        "extension": [{"url": f"{cs.BASE}/StructureDefinition/works-at",
                       "valueReference": _ref("Organization", f.id, f.name)}
                      for f in facilities],
    })


def organization_resource(facility: Facility) -> dict[str, Any]:
    """A facility of the public register."""
    from registry.reference import admin_units

    province = admin_units.province(facility.province_code)
    commune = admin_units.commune(facility.commune_code) if facility.commune_code else None
    return _clean({
        "resourceType": "Organization",
        "id": str(facility.id),
        "identifier": [{"system": cs.FACILITY_CODE, "value": facility.code}],
        "active": facility.active,
        "type": [{"coding": [{"system": cs.FACILITY_KIND, "code": facility.kind}],
                  "text": facility.kind}],
        "name": facility.name,
        "address": [{"city": commune.name if commune is not None else None,
                     "state": province.name if province is not None else None,
                     "country": "VN"}],
    })


# --- the schedule -------------------------------------------------------------------------

_FORECAST = {"completed": "complete", "due": "due", "overdue": "overdue"}
_FORECAST_DISPLAY = {"complete": "Complete", "due": "Due", "overdue": "Overdue"}


def recommendation_resource(citizen_id: uuid.UUID | str,
                            schedule_statuses: Iterable[ScheduledDoseStatus], *, lang: str,
                            today: dt.date | None = None) -> dict[str, Any]:
    """The person's schedule (the national programme against their recorded doses) as one
    ImmunizationRecommendation whose id is the person's id."""
    lang = lang if lang in ("vi", "en") else "vi"
    known = antigens()
    recommendations = []
    for dose in schedule_statuses:
        status = str(dose.status)
        hl7 = _FORECAST.get(status)
        codings = []
        if hl7:
            codings.append({"system": cs.RECOMMENDATION_STATUS, "code": hl7,
                            "display": _FORECAST_DISPLAY[hl7]})
        codings.append({"system": cs.SCHEDULE_STATUS, "code": status})
        criteria = [
            (dose.due_date, "30980-7", "Date vaccine due"),
            (dose.earliest_date, "30981-5", "Earliest date to give"),
            (dose.overdue_date, "59778-1", "Date when overdue for immunization"),
            (dose.latest_date, "59777-3", "Latest date next dose may be given"),
        ]
        recommendations.append({
            "targetDisease": {
                "coding": [{"system": cs.ANTIGENS, "code": a,
                            "display": known[a].name(lang) if a in known else None}
                           for a in dose.antigens],
                "text": dose.name_en if lang == "en" else dose.name_vi,
            },
            "forecastStatus": {"coding": codings, "text": status},
            "dateCriterion": [
                {"code": {"coding": [{"system": cs.LOINC, "code": code, "display": text}]},
                 "value": f"{day.isoformat()}T00:00:00+07:00"}
                for day, code, text in criteria if day is not None
            ],
            "description": dose.name_en if lang == "en" else dose.name_vi,
            "series": dose.series,
            "doseNumberPositiveInt": dose.dose_number,
            "supportingImmunization": [_ref("Immunization", entry_id)
                                       for entry_id in dose.completed_entry_ids],
        })
    when = today or (dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)).date()
    return _clean({
        "resourceType": "ImmunizationRecommendation",
        "id": str(citizen_id),
        "patient": _ref("Patient", citizen_id),
        "date": f"{when.isoformat()}T00:00:00+07:00",
        "authority": {"display": "Thông tư 10/2024/TT-BYT (Expanded Programme on Immunization)"},
        "recommendation": recommendations,
    })
