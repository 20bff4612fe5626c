"""The International Patient Summary (IPS 2.0) and the FHIR data-subject export.

The IPS is the phone's summary in another shape: the same audited decision (`summary`, read),
the same repository call, the same entries (DESIGN.md §5 "no route shows more"). What the JSON
summary shows as counts (vaccination) or does not show at all (lab results, recorded doses),
the IPS lists from the same selection: each within the caller's scope of its own section and
the token's read scopes. The schedule part is the schedule's own answer, shown only when the
policy lets the caller read the schedule (as the vaccination card does).

`$everything` is the export (`RecordRepository.export`, the export decision) as FHIR resources.

Both are Bundles of plain dicts in which every reference resolves (the IPS by `urn:uuid:` full
URLs, the export by absolute ones), so a reader needs nothing else to render them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

import ehr.fhir.ips_messages  # noqa: F401  (registers the narratives' texts)
from auth.resource import has_scope
from auth.scopes import SECTION_RESOURCES
from consent.policy_types import SENSITIVITY_LABELS
from core.encryption import ERASED
from core.i18n import has_message, translate
from ehr import records
from ehr.access import RecordAccess
from ehr.fhir import codesystems as cs
from ehr.fhir import mapping, relations
from ehr.repository import RecordRepository
from ehr.schedule_service import schedule_for
from ehr.views import Names, iso
from registry.reference.display import display_names
from registry.reference.schedule import DOSE_STATUS_LABELS

if TYPE_CHECKING:
    from consent.policy_types import FamilyDoctor
    from ehr.record_models import RecordEntry, RecordEntryVersion
    from registry.models import Citizen
    from registry.reference.schedule import ScheduledDoseStatus

LOINC = "http://loinc.org"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
IPS_BUNDLE_PROFILE = "http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips"
IPS_COMPOSITION_PROFILE = "http://hl7.org/fhir/uv/ips/StructureDefinition/Composition-uv-ips"
XHTML = "http://www.w3.org/1999/xhtml"
# The service itself authors the summary (an extract of the record, not a clinician's letter)
# and keeps it: one Organization, the same id everywhere.
CUSTODIAN_ID = uuid.uuid5(uuid.NAMESPACE_URL, "urn:phr-vn:fhir:custodian")
# One schedule per person: its ImmunizationRecommendation has a stable id.
RECOMMENDATION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:phr-vn:fhir:recommendation")

# The record sections the summary reads (the JSON summary's four, lab results for the IPS's
# results section); vital signs come with them (the latest of each kind).
IPS_RECORD_SECTIONS = ("allergies", "conditions", "medications", "immunizations", "lab-results")


@dataclass(frozen=True)
class IpsSection:
    key: str  # message keys: ips.section.<key>, ips.empty.nilknown.<key>
    record_section: str  # the record section whose scope decides what the caller sees of it
    loinc: str
    loinc_display: str


# IPS 2.0 order: the three required sections first, then the recommended ones.
SECTIONS = (
    IpsSection("medications", "medications", "10160-0", "History of Medication use Narrative"),
    IpsSection("allergies", "allergies", "48765-2", "Allergies and adverse reactions Document"),
    IpsSection("problems", "conditions", "11450-4", "Problem list - Reported"),
    IpsSection("immunizations", "immunizations", "11369-6",
               "History of Immunization Narrative"),
    IpsSection("results", "lab-results", "30954-2",
               "Relevant diagnostic tests/laboratory data Narrative"),
    IpsSection("vital-signs", "observations", "8716-3", "Vital signs"),
)


@dataclass(frozen=True)
class SummaryContent:
    """What the summary shows one caller, by IPS section."""

    citizen: Citizen
    family_doctor: FamilyDoctor | None
    entries: dict[str, list[RecordEntry]]  # IPS section key -> entries, newest first
    seen: Mapping[str, str]  # IPS section key -> "all" | "part" | "none" (of the section)
    schedule: list[ScheduledDoseStatus] | None  # None: the caller may not read the schedule
    names: Names


def today_of(access: RecordAccess) -> dt.date:
    """Vietnam's calendar day at the access's time."""
    return (access.now + dt.timedelta(hours=7)).date()


def read_summary(access: RecordAccess, citizen_id: uuid.UUID, *, today: dt.date
                 ) -> SummaryContent:
    """The summary's content for this caller: one audited decision (`summary`, read; 404 for
    nobody, 403/404 denied) and the summary's repository call."""
    citizen, found = RecordRepository(access).summary(citizen_id=citizen_id,
                                                      sections=IPS_RECORD_SECTIONS)
    by_section = found.entries
    entries = {
        "medications": found.active("medications", "medication_status"),
        "allergies": found.active("allergies", "clinical_status"),
        "problems": found.active("conditions", "clinical_status"),
        "immunizations": list(by_section["immunizations"]),
        "results": list(by_section["lab-results"]),
        "vital-signs": found.latest_vitals(),
    }
    # How much of each section the caller sees, asked only for a section left empty.
    seen = _SeenSections(access, citizen_id)
    schedule = None
    if "immunizations" in found.visible:
        # As the JSON summary: the schedule from the doses this read selected (no second
        # selection, and no other doses than the ones the document lists).
        schedule = schedule_for(citizen, by_section["immunizations"], today=today)
    doctor = access.facts(citizen_id).family_doctor
    shown = [e for part in entries.values() for e in part]
    names = records.names_of(access, shown)
    if doctor is not None:
        # The JSON summary names the family doctor and their facility: so does the IPS.
        names = Names(
            {**names.practitioners,
             **records.practitioner_names(access, [doctor.practitioner_id])},
            {**names.facilities, **records.facility_names(access, [doctor.facility_id])})
    return SummaryContent(citizen=citizen, family_doctor=doctor, entries=entries, seen=seen,
                          schedule=schedule, names=names)


class _SeenSections(Mapping[str, str]):
    """`_seen` of each IPS section, computed on first use (most sections are not empty)."""

    def __init__(self, access: RecordAccess, citizen_id: uuid.UUID) -> None:
        self._access, self._citizen_id = access, citizen_id
        self._sections = {s.key: s.record_section for s in SECTIONS}
        self._known: dict[str, str] = {}

    def __getitem__(self, key: str) -> str:
        if key not in self._known:
            self._known[key] = _seen(self._access, self._citizen_id, self._sections[key])
        return self._known[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)


def _seen(access: RecordAccess, citizen_id: uuid.UUID, section: str) -> str:
    """How much of a section the caller sees: what an empty section may honestly say. It
    depends on the caller's token and scope only, never on what the section holds, so it
    tells nothing of hidden entries."""
    if not has_scope(access.caller, resource=SECTION_RESOURCES[section], interaction="r"):
        return "none"
    scope = access.quiet_scope(citizen_id=citizen_id, section=section)
    if not scope.permit or not scope.clauses:
        return "none"
    whole = any(c.all_dates and set(SENSITIVITY_LABELS) <= c.labels for c in scope.clauses)
    return "all" if whole else "part"


# The document ------------------------------------------------------------------------------

def ips_bundle(access: RecordAccess, citizen_id: uuid.UUID, *, lang: str,
               today: dt.date | None = None) -> dict[str, Any]:
    """The caller's International Patient Summary of the citizen, a FHIR document Bundle.

    Audited as the summary read is (one `summary` decision); the caller commits. `today`
    (Vietnam's calendar) dates the schedule; by default the access's day."""
    today = today or today_of(access)
    content = read_summary(access, citizen_id, today=today)
    return summary_document(content, lang=lang, now=access.now, today=today)


def summary_document(content: SummaryContent, *, lang: str, now: dt.datetime, today: dt.date
                     ) -> dict[str, Any]:
    """The IPS document of summary content: Composition first, then everything it names."""
    lang = lang if lang in ("vi", "en") else "vi"
    resources = _Resources(content.names)
    patient = mapping.patient_resource(content.citizen, lang=lang, full=False)
    doctor = content.family_doctor
    if doctor is not None:
        patient["generalPractitioner"] = [
            {"reference": f"Practitioner/{doctor.practitioner_id}"},
            {"reference": f"Organization/{doctor.facility_id}"},
        ]
    patient_ref = resources.add(patient)
    custodian_ref = resources.add(_custodian(lang))
    sections = []
    restricted = False
    for section in SECTIONS:
        entries = content.entries[section.key]
        refs = []
        for entry in entries:
            restricted = restricted or entry.sensitivity != "normal"
            refs.append(resources.add(mapping.entry_resource(entry, content.names, lang=lang)))
        due: list[ScheduledDoseStatus] = []
        if section.key == "immunizations" and content.schedule:
            due = [d for d in content.schedule if str(d.status) != "completed"]
            if due:
                recommendation = mapping.recommendation_resource(
                    content.citizen.id, due, lang=lang, today=today)
                # Its own id: the mapping gives it the person's, the Patient's full URL here.
                recommendation["id"] = str(uuid.uuid5(RECOMMENDATION_NAMESPACE,
                                                      str(content.citizen.id)))
                refs.append(resources.add(recommendation))
        sections.append(_section(section, entries, refs, due, content, lang))
    composition_id = str(uuid.uuid4())
    composition = {
        "resourceType": "Composition",
        "id": composition_id,
        "meta": {"profile": [IPS_COMPOSITION_PROFILE]},
        "language": lang,
        "text": {"status": "generated", "div": _div(
            f"<p>{escape(translate('ips.title', lang))}: "
            f"{escape(_text(content.citizen.full_name))}</p>")},
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": "60591-5",
                             "display": "Patient summary Document"}]},
        "subject": {"reference": patient_ref},
        "date": iso(now),
        "author": [{"reference": custodian_ref}],
        "title": translate("ips.title", lang),
        # Restricted when a restricted entry is in it (the entries carry their own labels).
        "confidentiality": "R" if restricted else "N",
        "custodian": {"reference": custodian_ref},
        "section": sections,
    }
    entries = resources.entries(first=composition)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [IPS_BUNDLE_PROFILE], "lastUpdated": iso(now)},
        "language": lang,
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "type": "document",
        "timestamp": iso(now),
        "entry": entries,
    }


EMPTY_DISPLAY = {"nilknown": "Nil Known", "unavailable": "Unavailable",
                 "withheld": "Information Withheld"}
# How much of a section the caller sees -> what its emptiness says (list-empty-reason).
EMPTY_REASONS = {"all": "nilknown", "part": "unavailable", "none": "withheld"}


def _section(section: IpsSection, entries: list[RecordEntry], refs: list[str],
             due: list[ScheduledDoseStatus], content: SummaryContent, lang: str
             ) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": translate(f"ips.section.{section.key}", lang),
        "code": {"coding": [{"system": LOINC, "code": section.loinc,
                             "display": section.loinc_display}]},
    }
    if not refs:
        empty_text = _empty_text(section, content, lang)
        code = EMPTY_REASONS[content.seen[section.key]]
        body["text"] = {"status": "generated", "div": _div(f"<p>{escape(empty_text)}</p>")}
        body["emptyReason"] = {
            "coding": [{"system": EMPTY_REASON, "code": code, "display": EMPTY_DISPLAY[code]}],
            "text": empty_text,
        }
        return body
    rows = [_row(section.key, entry, content.names, lang) for entry in entries]
    parts = [_table(rows, lang) if rows
             else f"<p>{escape(_empty_text(section, content, lang))}</p>"]
    if due:
        parts.append(f"<p>{escape(translate('ips.recommended', lang))}</p>")
        parts.append(_list(_due_line(d, lang) for d in due))
    body["text"] = {"status": "generated", "div": _div("".join(parts))}
    body["entry"] = [{"reference": ref} for ref in refs]
    return body


def _empty_text(section: IpsSection, content: SummaryContent, lang: str) -> str:
    seen = content.seen[section.key]
    if seen == "all":
        return translate(f"ips.empty.nilknown.{section.key}", lang)
    return translate("ips.empty.unavailable" if seen == "part" else "ips.empty.withheld", lang)


# Narratives --------------------------------------------------------------------------------
# Every value in them is escaped: names, notes and free text are what people typed.

def _div(inner: str) -> str:
    return f'<div xmlns="{XHTML}">{inner}</div>'


def _table(rows: list[tuple[str, str, str]], lang: str) -> str:
    head = "".join(f"<th>{escape(translate(f'ips.head.{k}', lang))}</th>"
                   for k in ("name", "detail", "date"))
    body = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(detail)}</td><td>{escape(date)}</td></tr>"
        for name, detail, date in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _list(lines: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"


def _due_line(dose: ScheduledDoseStatus, lang: str) -> str:
    name = dose.name_en if lang == "en" else dose.name_vi
    status = DOSE_STATUS_LABELS[str(dose.status)][lang]
    return f"{name} — {status} ({translate('ips.due', lang, date=dose.due_date.isoformat())})"


def _text(value: Any) -> str:
    return "" if value is None or value is ERASED else str(value)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _text(value)


def _row(key: str, entry: RecordEntry, names: Names, lang: str) -> tuple[str, str, str]:
    """(name, details, date) of one entry, codes named in the reader's language."""
    data = entry.content if isinstance(entry.content, dict) else {}
    named = display_names(entry.section, data, lang).names
    details: list[str] = []
    if key == "medications":
        name = _text(data.get("name"))
        details = [_text(data.get(k)) for k in ("dose", "frequency") if data.get(k)]
        if data.get("start_date"):
            details.append(translate("ips.since", lang, date=data["start_date"]))
    elif key == "allergies":
        name = _text(data.get("substance"))
        if data.get("criticality") == "high":
            details.append(translate("ips.criticality.high", lang))
        if data.get("reaction"):
            details.append(translate("ips.reaction", lang, reaction=_text(data["reaction"])))
    elif key == "problems":
        name = f"{_text(data.get('icd10_code'))} {_text(named.get('icd10_code'))}".strip()
        if data.get("text"):
            details.append(_text(data["text"]))
    elif key == "immunizations":
        name = _text(named.get("vaccine_code") or data.get("vaccine_code"))
        details.append(translate("ips.dose", lang, number=data.get("dose_number")))
    elif key == "results":
        name = _text(data.get("test_name"))
        details.append(" ".join(_text(data.get(k)) for k in ("value", "unit") if data.get(k)))
        interpretation = data.get("interpretation")
        if isinstance(interpretation, str) and has_message(f"ips.interpretation.{interpretation}"):
            details.append(translate(f"ips.interpretation.{interpretation}", lang))
    else:  # vital signs
        name = _text(named.get("kind") or data.get("kind"))
        if data.get("kind") == "blood-pressure":
            details.append(f"{_number(data.get('systolic'))}/{_number(data.get('diastolic'))} "
                           f"{_text(data.get('unit'))}")
        else:
            details.append(f"{_number(data.get('value'))} {_text(data.get('unit'))}")
    return name, "; ".join(d for d in details if d), iso(entry.clinical_date) or ""


def _custodian(lang: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": str(CUSTODIAN_ID),
            "name": translate("ips.custodian", lang)}


# The FHIR export ($everything) -------------------------------------------------------------

def everything_bundle(access: RecordAccess, citizen_id: uuid.UUID, *, lang: str,
                      base_url: str,
                      relationships: Callable[[], Mapping[str, Any]] | None = None
                      ) -> dict[str, Any]:
    """Everything the JSON export shows this caller, as FHIR resources: the export decision
    (`export`, read; audited once), the export's repository call (entries of every section
    the caller's lists show, entered-in-error ones included, with the earlier versions their
    versions routes show: same full URL, their own `meta.versionId`), a lab entry also as its
    DiagnosticReport. `relationships` gives the export's other parts as the export route
    reads them after its entries (consents, guardians, access log: each decided and audited
    by the consent package), here as Consent, RelatedPerson and AuditEvent. The caller
    commits. A `searchset` Bundle under absolute full URLs (`base_url` + `Type/id`), so the
    resources' relative references resolve inside it."""
    lang = lang if lang in ("vi", "en") else "vi"
    citizen = records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="export", action="read")
    exported = RecordRepository(access).export(citizen_id=citizen_id)
    earlier = [version for found in exported.versions.values() for version in found]
    doctor = access.facts(citizen_id).family_doctor
    names = records.names_of(access, [*exported.entries, *earlier])
    if doctor is not None:
        names = Names(
            {**names.practitioners,
             **records.practitioner_names(access, [doctor.practitioner_id])},
            {**names.facilities, **records.facility_names(access, [doctor.facility_id])})
    patient = mapping.patient_resource(citizen, lang=lang, full=True)
    if doctor is not None:
        patient["generalPractitioner"] = [
            {"reference": f"Practitioner/{doctor.practitioner_id}"},
            {"reference": f"Organization/{doctor.facility_id}"},
        ]
    resources: list[dict[str, Any]] = [patient]
    for entry in exported.entries:
        resources.append(mapping.entry_resource(entry, names, lang=lang))
        if entry.section == "lab-results":
            resources.append(mapping.diagnostic_report_resource(entry, names, lang=lang))
        for version in exported.versions.get(entry.id, []):
            resources.append(mapping.entry_resource(_VersionOf(entry, version), names,
                                                    lang=lang))
            if entry.section == "lab-results":
                resources.append(mapping.diagnostic_report_resource(
                    _VersionOf(entry, version), names, lang=lang))
    parts = relationships() if relationships is not None else {}
    resources += [relations.consent_resource(view) for view in parts.get("consents", [])]
    resources += [relations.related_person_resource(view)
                  for view in parts.get("guardians", [])]
    resources += [relations.audit_event_resource(item, str(citizen_id))
                  for item in parts.get("access_log", [])]
    base = base_url.rstrip("/")
    return _searchset(resources, names, base=base, now=access.now)


class _VersionOf:
    """An earlier version read as its entry was then (what the versions route shows): the
    entry's id, citizen and section, the version's own envelope and content."""

    def __init__(self, entry: RecordEntry, version: RecordEntryVersion) -> None:
        self.id = entry.id
        self.citizen_id = entry.citizen_id
        self.section = entry.section
        self.version = version.version
        self.status = version.status
        self.sensitivity = version.sensitivity
        self.source = version.source
        self.clinical_date = version.clinical_date
        self.author_practitioner_id = version.author_practitioner_id
        self.facility_id = version.facility_id
        self.verified_at = version.verified_at
        self.content = version.content
        self.created_at = entry.created_at
        self.updated_at = version.recorded_at
        self.entered_in_error_at = None
        self.error_reason = None


def _searchset(resources: list[dict[str, Any]], names: Names, *, base: str,
               now: dt.datetime) -> dict[str, Any]:
    known = {(r["resourceType"], str(r["id"])) for r in resources}
    extra: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in resources:
        for holder in _references(resource):
            kind, _, rest = holder["reference"].partition("/")
            key = (kind, rest)
            if key in known or key in extra:
                continue
            found = _named(kind, rest, names, holder.get("display"))
            if found is None:
                # Nothing in the Bundle answers it: the name stays, the link goes.
                del holder["reference"]
            else:
                extra[key] = found
    entries = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": _pruned(r),
                "search": {"mode": "match"}} for r in resources]
    entries += [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                 "search": {"mode": "include"}} for r in extra.values()]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": iso(now)},
        "type": "searchset",
        "timestamp": iso(now),
        "link": [{"relation": "self", "url": f"{base}/Patient/{resources[0]['id']}/$everything"}],
        "entry": entries,
    }


# References --------------------------------------------------------------------------------

class _Resources:
    """The resources of one document by `urn:uuid:` full URL. References between them
    (`Type/id` from the mapping) are rewritten to those URLs; a practitioner or facility an
    entry names is added from the names the JSON views show (nothing more of them); any other
    reference keeps its display and loses its link."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.resources: dict[str, dict[str, Any]] = {}
        self.by_type_id: dict[tuple[str, str], str] = {}

    def add(self, resource: dict[str, Any]) -> str:
        resource_id = str(resource["id"])
        url = f"urn:uuid:{uuid.UUID(resource_id)}"
        if url not in self.resources:
            self.resources[url] = resource
            self.by_type_id[(resource["resourceType"], resource_id)] = url
        return url

    def entries(self, *, first: dict[str, Any]) -> list[dict[str, Any]]:
        first_url = f"urn:uuid:{first['id']}"
        self.resources = {first_url: first, **self.resources}
        self.by_type_id[(first["resourceType"], str(first["id"]))] = first_url
        pending = list(self.resources.values())
        # Only a resource that lost a reference can hold an empty element to prune.
        touched: set[int] = set()
        while pending:
            added: list[dict[str, Any]] = []
            for resource in pending:
                for holder in _references(resource):
                    target = self._target(holder["reference"], added)
                    if target is None:
                        del holder["reference"]
                        touched.add(id(resource))
                    else:
                        holder["reference"] = target
            pending = added
        return [{"fullUrl": url,
                 "resource": _pruned(resource) if id(resource) in touched else resource}
                for url, resource in self.resources.items()]

    def _target(self, reference: str, added: list[dict[str, Any]]) -> str | None:
        if reference.startswith("urn:uuid:"):
            return reference if reference in self.resources else None
        kind, _, rest = reference.partition("/")
        url = self.by_type_id.get((kind, rest))
        if url is not None:
            return url
        resource = _named(kind, rest, self.names, None)
        if resource is None:
            return None
        added.append(resource)
        return self.add(resource)


def _named(kind: str, resource_id: str, names: Names, display: str | None
           ) -> dict[str, Any] | None:
    """A Practitioner or Organization as the JSON views name it (name; code and name), or,
    for one only a reference names (a consent's grantee), by the name it carries."""
    try:
        key = uuid.UUID(resource_id)
    except ValueError:
        return None
    if kind in ("Practitioner", "Organization") and display and not (
            key in names.practitioners or key in names.facilities):
        resource = {"resourceType": kind, "id": str(key)}
        resource["name"] = [{"text": display}] if kind == "Practitioner" else display
        return resource
    if kind == "Practitioner" and key in names.practitioners:
        resource: dict[str, Any] = {"resourceType": "Practitioner", "id": str(key)}
        if names.practitioners[key]:
            resource["name"] = [{"text": names.practitioners[key]}]
        return resource
    if kind == "Organization" and key in names.facilities:
        code, name = names.facilities[key]
        resource = {"resourceType": "Organization", "id": str(key)}
        if code:
            resource["identifier"] = [{"system": cs.FACILITY_CODE, "value": code}]
        if name:
            resource["name"] = name
        return resource
    return None


def _references(node: Any) -> list[dict[str, Any]]:
    """Every Reference (a dict with a string `reference`) inside a resource; contained
    resources' local references (`#id`) are left alone. Walked with a stack: a document
    holds thousands of nodes, and nested generators cost more than the walk."""
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            value = current.get("reference")
            if isinstance(value, str) and not value.startswith("#"):
                found.append(current)
            stack.extend(child for key, child in current.items()
                         if key != "reference" and isinstance(child, dict | list))
        elif isinstance(current, list):
            stack.extend(child for child in current if isinstance(child, dict | list))
    return found


def _pruned(node: Any) -> Any:
    """Drop the References left empty (a link to what the Bundle does not hold, unnamed)."""
    if isinstance(node, dict):
        return {k: v for k, v in ((k, _pruned(v)) for k, v in node.items())
                if v not in ({}, [])}
    if isinstance(node, list):
        return [item for item in (_pruned(v) for v in node) if item not in ({}, [])]
    return node
