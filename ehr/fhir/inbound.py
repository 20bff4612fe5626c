"""FHIR R4 → record section content: what a facility's transaction Bundle asks to add.

Pure shape, like `ehr.fhir.mapping` the other way: no queries, no permissions. Each entry
becomes the body the JSON API would take for the section (`ehr.records.prepare_entry` then
validates it with the very same schemas and code lists), together with where each field came
from, so a refusal names the failing FHIR element (`Bundle.entry[2].resource.valueQuantity.code`).

What is mapped (the reverse of `ehr.fhir.mapping`):
- Immunization → immunizations (vaccine from the national catalogue CodeSystem, dose number
  from `protocolApplied`, lot, expiry, site, route);
- Observation with a LOINC code of a known measurement kind (vital signs, glucose, HbA1c;
  blood pressure as the panel with its two components) → observations, its unit checked and
  converted like the JSON API's; any other `laboratory` Observation → lab-results;
- DiagnosticReport → folded into the lab Observations it names in `result` (the record keeps
  one lab entry per result, which `mapping` shows as both), its conclusion added to their note;
  a report without results in the Bundle is a lab entry of its own (the conclusion its value);
- Condition → conditions (ICD-10), Encounter → encounters (class, period, ICD-10 reasons).
The person is named by health ID only: `subject`/`patient` as a logical reference by
identifier (`https://moh.gov.vn/fhir/sid/cccd|<12 digits>`), or a reference to a Patient entry
of the Bundle carrying that identifier. Elements the record cannot keep are refused, not
dropped silently; elements about the message rather than the clinical fact (meta, narrative,
performers, the facility's own references) are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ehr.fhir.inbound_messages  # noqa: F401  (registers the texts below)
from core.errors import Message
from ehr.fhir import codesystems as cs
from registry.reference.observations import observation_kinds, observation_panels

MAX_ENTRIES = 100
SUPPORTED_TYPES = ("Immunization", "Observation", "DiagnosticReport", "Condition", "Encounter")
FHIR_SECTIONS = {"Immunization": "immunizations", "Condition": "conditions",
                 "Encounter": "encounters", "DiagnosticReport": "lab-results"}

# Elements every resource may carry that say nothing the record keeps (or that the service
# sets itself: the author facility, the recorded time).
_IGNORED = frozenset({"resourceType", "id", "meta", "text", "language", "extension",
                      "identifier", "status", "encounter", "performer", "recorder", "asserter",
                      "recorded", "recordedDate", "issued", "basedOn", "partOf"})
_ALLOWED: dict[str, frozenset[str]] = {
    "Immunization": frozenset({"patient", "vaccineCode", "occurrenceDateTime", "lotNumber",
                               "expirationDate", "site", "route", "protocolApplied", "note",
                               "reaction", "primarySource", "location", "manufacturer",
                               "doseQuantity", "reportOrigin"}),
    "Observation": frozenset({"subject", "category", "code", "effectiveDateTime", "valueQuantity",
                              "valueString", "valueCodeableConcept", "component",
                              "referenceRange", "interpretation", "specimen", "note", "method",
                              "device"}),
    "DiagnosticReport": frozenset({"subject", "category", "code", "effectiveDateTime", "result",
                                   "conclusion", "conclusionCode", "specimen",
                                   "resultsInterpreter"}),
    "Condition": frozenset({"subject", "code", "clinicalStatus", "verificationStatus",
                            "category", "onsetDateTime", "abatementDateTime", "note"}),
    "Encounter": frozenset({"subject", "class", "type", "period", "reasonCode",
                            "serviceProvider", "participant", "serviceType", "priority",
                            "hospitalization", "location", "length"}),
}
_PATIENT_ALLOWED = frozenset({"resourceType", "id", "meta", "text", "identifier", "name",
                              "birthDate", "gender", "active", "telecom", "address",
                              "extension", "language"})

_SITES = {"LA": "left-arm", "RA": "right-arm", "LT": "left-thigh", "RT": "right-thigh"}
_ROUTES = {"IM": "intramuscular", "SQ": "subcutaneous", "IDINJ": "intradermal", "PO": "oral",
           "NASINHLC": "intranasal", "NASINH": "intranasal"}
_INTERPRETATIONS = {"N": "normal", "A": "abnormal", "L": "low", "H": "high",
                    "LL": "critical-low", "HH": "critical-high"}
_ENCOUNTER_CLASSES = {"AMB": "outpatient", "IMP": "inpatient", "ACUTE": "inpatient",
                      "NONAC": "inpatient", "OBSENC": "outpatient", "SS": "outpatient",
                      "HH": "home-visit", "VR": "telehealth", "EMER": "emergency"}
_CONDITION_STATUS = {"active": "active", "recurrence": "active", "relapse": "active",
                     "remission": "remission", "resolved": "resolved", "inactive": "resolved"}
_SECURITY_LABELS = {code: label for label, code in cs.SENSITIVITY_ACT_CODES.items()}
_SECURITY_LABELS.update({"STD": "hiv-sti", "SUD": "substance-use", "SDV": "reproductive"})
_FINAL = frozenset({"final", "amended", "corrected"})


class BundleError(Exception):
    """One failing element: where (a FHIRPath expression), what, and the FHIR issue type."""

    def __init__(self, expression: str, message: Message, *, code: str = "invalid") -> None:
        super().__init__(expression)
        self.expression = expression
        self.message = message
        self.code = code


class BundleErrors(Exception):
    """Every failing element of a Bundle (all of them, so one round trip fixes the Bundle)."""

    def __init__(self, errors: list[BundleError]) -> None:
        super().__init__(len(errors))
        self.errors = errors


@dataclass
class Item:
    """One Bundle entry: a Patient (`section` None, nothing to write) or a record entry."""

    index: int
    resource_type: str
    health_id: str
    section: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    # Content field → the element it came from (relative to the entry's resource).
    paths: dict[str, str] = field(default_factory=dict)
    identifier: tuple[str, str] | None = None
    full_url: str | None = None
    # A DiagnosticReport folded into lab entries: the index of its first result's entry.
    folded_into: int | None = None

    @property
    def at(self) -> str:
        return f"Bundle.entry[{self.index}].resource"

    def expression(self, content_field: str) -> str:
        """The FHIR element a content field (or a schema's dotted error key) came from."""
        head = content_field.split(".", 1)[0]
        path = self.paths.get(head)
        return f"{self.at}.{path}" if path else self.at


def parse_bundle(bundle: Any) -> list[Item]:
    """Every entry of a transaction Bundle as an `Item`, or `BundleErrors` naming each failing
    element (the Bundle's shape first: nothing else is read of a malformed one)."""
    _bundle_shape(bundle)
    entries: list[Any] = bundle["entry"]
    patients: dict[str, str] = {}
    errors: list[BundleError] = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            try:
                health_id = _patient_health_id(resource, f"Bundle.entry[{index}].resource")
            except BundleError as error:
                errors.append(error)
                continue
            if isinstance(entry.get("fullUrl"), str):
                patients[entry["fullUrl"]] = health_id
    items: list[Item] = []
    for index, entry in enumerate(entries):
        try:
            items.append(_item(index, entry, patients))
        except BundleError as error:
            errors.append(error)
        except BundleErrors as many:
            errors.extend(many.errors)
    if not errors:
        errors.extend(_fold_reports(items))
        errors.extend(_duplicates(items))
    if errors:
        raise BundleErrors(_unique(errors))
    return items


def _unique(errors: list[BundleError]) -> list[BundleError]:
    seen: set[tuple[str, str]] = set()
    kept = []
    for error in errors:
        key = (error.expression, error.message.key)
        if key not in seen:
            seen.add(key)
            kept.append(error)
    return kept


def _bundle_shape(bundle: Any) -> None:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BundleErrors([BundleError("Bundle", Message("fhir.in.not-a-bundle"),
                                        code="structure")])
    if bundle.get("type") != "transaction":
        raise BundleErrors([BundleError("Bundle.type", Message("fhir.in.transaction-only"),
                                        code="not-supported")])
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
        raise BundleErrors([BundleError("Bundle.entry", Message("fhir.in.entry-count",
                                                                max=MAX_ENTRIES))])


def _item(index: int, entry: Any, patients: Mapping[str, str]) -> Item:
    base = f"Bundle.entry[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
        raise BundleError(f"{base}.resource", Message("fhir.in.required"), code="required")
    resource: dict[str, Any] = entry["resource"]
    resource_type = resource.get("resourceType")
    at = f"{base}.resource"
    full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
    if resource_type == "Patient":
        _request(entry, base, "Patient")
        health_id = _patient_health_id(resource, at)
        return Item(index=index, resource_type="Patient", health_id=health_id,
                    full_url=full_url)
    if resource_type not in SUPPORTED_TYPES:
        raise BundleError(f"{at}.resourceType", Message("fhir.in.type-not-supported",
                                                        types=", ".join(SUPPORTED_TYPES)),
                          code="not-supported")
    _refuse_unknown(resource, at, _IGNORED | _ALLOWED[resource_type])
    identifier = _request(entry, base, resource_type)
    subject_key = "patient" if resource_type == "Immunization" else "subject"
    health_id = _subject(resource.get(subject_key), f"{at}.{subject_key}", patients)
    item = Item(index=index, resource_type=resource_type, health_id=health_id,
                identifier=identifier, full_url=full_url)
    _CONVERTERS[resource_type](resource, item)
    sensitivity = _sensitivity(resource, at)
    if sensitivity is not None:
        item.body["sensitivity"] = sensitivity
        item.paths["sensitivity"] = "meta.security"
    return item


def _refuse_unknown(resource: Mapping[str, Any], at: str, allowed: frozenset[str]) -> None:
    errors = [BundleError(f"{at}.{name}", Message("fhir.in.element-not-supported"),
                          code="not-supported")
              for name in resource if name not in allowed]
    if errors:
        raise BundleErrors(errors)


def _request(entry: Mapping[str, Any], base: str, resource_type: str) -> tuple[str, str] | None:
    """The entry's conditional create: POST to its type with `ifNoneExist` naming one of the
    resource's own identifiers (the facility's id of the fact: what makes a resend harmless)."""
    request = entry.get("request")
    if not isinstance(request, dict):
        raise BundleError(f"{base}.request", Message("fhir.in.required"), code="required")
    if request.get("method") != "POST":
        raise BundleError(f"{base}.request.method", Message("fhir.in.post-only"),
                          code="not-supported")
    if request.get("url") != resource_type:
        raise BundleError(f"{base}.request.url", Message("fhir.in.request-url",
                                                         type=resource_type))
    condition = request.get("ifNoneExist")
    if not isinstance(condition, str) or not condition.startswith("identifier="):
        raise BundleError(f"{base}.request.ifNoneExist", Message("fhir.in.if-none-exist"),
                          code="required")
    system, bar, value = condition[len("identifier="):].partition("|")
    if not bar or not system or not value:
        raise BundleError(f"{base}.request.ifNoneExist", Message("fhir.in.if-none-exist"))
    identifiers = entry["resource"].get("identifier")
    if not isinstance(identifiers, list) or not any(
            isinstance(i, dict) and i.get("system") == system and i.get("value") == value
            for i in identifiers):
        raise BundleError(f"{base}.resource.identifier", Message("fhir.in.identifier-match"))
    if resource_type == "Patient":
        if system != cs.HEALTH_ID:
            raise BundleError(f"{base}.request.ifNoneExist", Message("fhir.in.patient-by-id"))
        return None
    if system == cs.HEALTH_ID or len(system) > 200 or len(value) > 200:
        raise BundleError(f"{base}.request.ifNoneExist", Message("fhir.in.if-none-exist"))
    return system, value


def _health_id(value: Any, at: str) -> str:
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) == 12):
        raise BundleError(at, Message("record.lookup-health-id"))
    return value


def _patient_health_id(resource: Mapping[str, Any], at: str) -> str:
    _refuse_unknown(resource, at, _PATIENT_ALLOWED)
    identifiers = resource.get("identifier")
    for position, identifier in enumerate(identifiers if isinstance(identifiers, list) else []):
        if isinstance(identifier, dict) and identifier.get("system") == cs.HEALTH_ID:
            return _health_id(identifier.get("value"), f"{at}.identifier[{position}].value")
    raise BundleError(f"{at}.identifier", Message("fhir.in.patient-by-id"), code="required")


def _subject(reference: Any, at: str, patients: Mapping[str, str]) -> str:
    if not isinstance(reference, dict):
        raise BundleError(at, Message("fhir.in.required"), code="required")
    identifier = reference.get("identifier")
    if isinstance(identifier, dict):
        if identifier.get("system") != cs.HEALTH_ID:
            raise BundleError(f"{at}.identifier.system", Message("fhir.in.patient-by-id"))
        return _health_id(identifier.get("value"), f"{at}.identifier.value")
    target = reference.get("reference")
    if isinstance(target, str) and target in patients:
        return patients[target]
    raise BundleError(f"{at}.reference", Message("fhir.in.patient-by-id"))


def _sensitivity(resource: Mapping[str, Any], at: str) -> str | None:
    meta = resource.get("meta")
    labels = meta.get("security") if isinstance(meta, dict) else None
    for position, label in enumerate(labels if isinstance(labels, list) else []):
        if not isinstance(label, dict):
            continue
        if label.get("system") == cs.ACT_CODE and label.get("code") in _SECURITY_LABELS:
            return _SECURITY_LABELS[label["code"]]
        if label.get("system") == cs.SENSITIVITY:
            if not isinstance(label.get("code"), str):
                raise BundleError(f"{at}.meta.security[{position}]", Message("fhir.in.code"))
            return label["code"]  # the record's own labels, checked by the envelope
    return None


# --- small readers ----------------------------------------------------------------------------


def _codings(concept: Any) -> list[tuple[int, dict[str, Any]]]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return [(i, c) for i, c in enumerate(codings if isinstance(codings, list) else [])
            if isinstance(c, dict)]


def _code_in(concept: Any, system: str) -> tuple[int, str] | None:
    for position, coding in _codings(concept):
        if coding.get("system") == system and isinstance(coding.get("code"), str):
            return position, coding["code"]
    return None


def _text_of(concept: Any) -> str | None:
    if isinstance(concept, dict) and isinstance(concept.get("text"), str):
        return concept["text"]
    for _, coding in _codings(concept):
        if isinstance(coding.get("display"), str):
            return coding["display"]
    return None


def _day(value: Any) -> Any:
    """A date from a FHIR date or dateTime (the day as written, in the sender's zone); anything
    else goes on as it is, for the section schema to refuse in its own words."""
    if isinstance(value, str) and len(value) >= 10:
        return value[:10] if len(value) == 10 or value[10] == "T" else value
    return value


def _notes(resource: Mapping[str, Any]) -> str | None:
    notes = resource.get("note")
    texts = [n["text"] for n in (notes if isinstance(notes, list) else [])
             if isinstance(n, dict) and isinstance(n.get("text"), str) and n["text"].strip()]
    return "\n".join(texts) or None


def _put(item: Item, name: str, value: Any, path: str) -> None:
    if value is not None:
        item.body[name] = value
    item.paths[name] = path


def _final(resource: Mapping[str, Any], at: str) -> None:
    if resource.get("status") not in _FINAL:
        raise BundleError(f"{at}.status", Message("fhir.in.status", allowed="final, amended, "
                                                                             "corrected"),
                          code="not-supported")


# --- per resource type ------------------------------------------------------------------------


def _immunization(resource: Mapping[str, Any], item: Item) -> None:
    at = item.at
    item.section = "immunizations"
    if resource.get("status") != "completed":
        raise BundleError(f"{at}.status", Message("fhir.in.status", allowed="completed"),
                          code="not-supported")
    errors: list[BundleError] = []
    vaccine = resource.get("vaccineCode")
    found = _code_in(vaccine, cs.VACCINES)
    if vaccine is None:
        errors.append(BundleError(f"{at}.vaccineCode", Message("fhir.in.required"),
                                  code="required"))
    elif found is None:
        errors.append(BundleError(f"{at}.vaccineCode", Message("fhir.in.vaccine-system",
                                                               system=cs.VACCINES),
                                  code="code-invalid"))
    else:
        _put(item, "vaccine_code", found[1], f"vaccineCode.coding[{found[0]}].code")
    _put(item, "occurrence_date", _day(resource.get("occurrenceDateTime")), "occurrenceDateTime")
    _put(item, "lot_number", resource.get("lotNumber"), "lotNumber")
    _put(item, "expiry_date", _day(resource.get("expirationDate")), "expirationDate")
    protocol = resource.get("protocolApplied")
    first = protocol[0] if isinstance(protocol, list) and protocol else {}
    dose = first.get("doseNumberPositiveInt") if isinstance(first, dict) else None
    if dose is None and isinstance(first, dict) and isinstance(
            first.get("doseNumberString"), str) and first["doseNumberString"].isdigit():
        dose = int(first["doseNumberString"])
    _put(item, "dose_number", dose, "protocolApplied[0].doseNumberPositiveInt")
    for name, element, codes, system in (("site", "site", _SITES, cs.ACT_SITE),
                                         ("route", "route", _ROUTES, cs.ROUTE)):
        concept = resource.get(element)
        if concept is None:
            continue
        code = _code_in(concept, system)
        if code is None or code[1] not in codes:
            errors.append(BundleError(f"{at}.{element}", Message("fhir.in.code"),
                                      code="code-invalid"))
        else:
            _put(item, name, codes[code[1]], f"{element}.coding[{code[0]}].code")
    reactions = resource.get("reaction")
    if isinstance(reactions, list) and reactions and isinstance(reactions[0], dict):
        detail = reactions[0].get("detail")
        if isinstance(detail, dict) and isinstance(detail.get("display"), str):
            _put(item, "reaction", detail["display"], "reaction[0].detail.display")
    _put(item, "note", _notes(resource), "note")
    if errors:
        raise BundleErrors(errors)


def _measurement_kind(code: Any) -> tuple[str, str] | None:
    """The observation kind a code names (LOINC, or the record's own kind codes), with the
    element it was found in."""
    by_loinc = {k.loinc: name for name, k in observation_kinds().items()}
    by_loinc.update({p.loinc: name for name, p in observation_panels().items()})
    for position, coding in _codings(code):
        value = coding.get("code")
        if coding.get("system") == cs.LOINC and value in by_loinc:
            return by_loinc[value], f"code.coding[{position}].code"
        if coding.get("system") == cs.OBSERVATION_KINDS and (
                value in observation_kinds() or value in observation_panels()):
            return str(value), f"code.coding[{position}].code"
    return None


def _categories(resource: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    categories = resource.get("category")
    for concept in categories if isinstance(categories, list) else []:
        code = _code_in(concept, cs.OBSERVATION_CATEGORY)
        if code is not None:
            found.add(code[1])
    return found


def _quantity(item: Item, quantity: Any, path: str, value_field: str,
              unit_field: str | None) -> None:
    if not isinstance(quantity, dict):
        _put(item, value_field, None, f"{path}.value")
        return
    system = quantity.get("system")
    if system is not None and system != cs.UCUM:
        raise BundleError(f"{item.at}.{path}.system", Message("fhir.in.ucum"),
                          code="code-invalid")
    _put(item, value_field, quantity.get("value"), f"{path}.value")
    if unit_field is not None:
        unit = quantity.get("code") if quantity.get("code") is not None else quantity.get("unit")
        _put(item, unit_field, unit, f"{path}.code")


def _observation(resource: Mapping[str, Any], item: Item) -> None:
    at = item.at
    _final(resource, at)
    measured = _measurement_kind(resource.get("code"))
    categories = _categories(resource)
    if measured is not None:
        _vital_sign(resource, item, *measured)
    elif "laboratory" in categories:
        _lab_result(resource, item)
    elif resource.get("code") is None:
        raise BundleError(f"{at}.code", Message("fhir.in.required"), code="required")
    elif "vital-signs" in categories:
        raise BundleError(f"{at}.code", Message("fhir.in.observation-code"),
                          code="code-invalid")
    else:
        raise BundleError(f"{at}.category", Message("fhir.in.observation-category"),
                          code="not-supported")


def _vital_sign(resource: Mapping[str, Any], item: Item, kind: str, code_path: str) -> None:
    item.section = "observations"
    _put(item, "kind", kind, code_path)
    _put(item, "effective_at", resource.get("effectiveDateTime"), "effectiveDateTime")
    if kind in observation_panels():
        parts = observation_panels()[kind].parts
        kinds = observation_kinds()
        components = resource.get("component")
        for position, component in enumerate(components if isinstance(components, list)
                                              else []):
            if not isinstance(component, dict):
                continue
            code = _code_in(component.get("code"), cs.LOINC)
            for part, name in zip(parts, ("systolic", "diastolic"), strict=False):
                if code is not None and code[1] == kinds[part].loinc:
                    unit = "unit" if name == "systolic" else None
                    _quantity(item, component.get("valueQuantity"),
                              f"component[{position}].valueQuantity", name, unit)
        item.paths.setdefault("systolic", "component")
        item.paths.setdefault("diastolic", "component")
    else:
        if "valueQuantity" not in resource:
            raise BundleError(f"{item.at}.valueQuantity", Message("fhir.in.required"),
                              code="required")
        _quantity(item, resource.get("valueQuantity"), "valueQuantity", "value", "unit")
    _put(item, "note", _notes(resource), "note")


def _lab_result(resource: Mapping[str, Any], item: Item) -> None:
    at = item.at
    item.section = "lab-results"
    code = resource.get("code")
    _lab_code(code, item)
    if "valueQuantity" in resource:
        quantity = resource["valueQuantity"]
        _quantity(item, quantity, "valueQuantity", "value", "unit")
        number = item.body.get("value")
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise BundleError(f"{at}.valueQuantity.value", Message("record.number-required"))
        # The lab section keeps a result as written (text): a number as its shortest form.
        item.body["value"] = repr(number) if isinstance(number, float) else str(number)
    elif "valueString" in resource:
        _put(item, "value", resource["valueString"], "valueString")
    elif "valueCodeableConcept" in resource:
        _put(item, "value", _text_of(resource["valueCodeableConcept"]), "valueCodeableConcept")
    else:
        raise BundleError(f"{at}.value[x]", Message("fhir.in.required"), code="required")
    _put(item, "issued_on", _day(resource.get("effectiveDateTime") or resource.get("issued")),
         "effectiveDateTime" if resource.get("effectiveDateTime") else "issued")
    interpretations = resource.get("interpretation")
    if isinstance(interpretations, list) and interpretations:
        found = _code_in(interpretations[0], cs.INTERPRETATION)
        if found is None or found[1] not in _INTERPRETATIONS:
            raise BundleError(f"{at}.interpretation[0]", Message("fhir.in.code"),
                              code="code-invalid")
        _put(item, "interpretation", _INTERPRETATIONS[found[1]],
             f"interpretation[0].coding[{found[0]}].code")
    ranges = resource.get("referenceRange")
    if isinstance(ranges, list) and ranges and isinstance(ranges[0], dict):
        _put(item, "reference_range", _range_text(ranges[0]), "referenceRange[0]")
    specimen = resource.get("specimen")
    if isinstance(specimen, dict) and isinstance(specimen.get("display"), str):
        _put(item, "specimen", specimen["display"], "specimen.display")
    _put(item, "note", _notes(resource), "note")


def _lab_code(code: Any, item: Item) -> None:
    loinc = _code_in(code, cs.LOINC)
    if loinc is not None:
        _put(item, "loinc_code", loinc[1], f"code.coding[{loinc[0]}].code")
    _put(item, "test_name", _text_of(code), "code.text")


def _range_text(reference_range: Mapping[str, Any]) -> str | None:
    if isinstance(reference_range.get("text"), str):
        return reference_range["text"]
    low, high = reference_range.get("low"), reference_range.get("high")
    low_value = low.get("value") if isinstance(low, dict) else None
    high_value = high.get("value") if isinstance(high, dict) else None
    if low_value is None and high_value is None:
        return None
    unit = next((q.get("code") or q.get("unit") for q in (low, high)
                 if isinstance(q, dict) and (q.get("code") or q.get("unit"))), "")
    return f"{'' if low_value is None else low_value}–{'' if high_value is None else high_value}" \
           f"{' ' + unit if unit else ''}"


def _diagnostic_report(resource: Mapping[str, Any], item: Item) -> None:
    at = item.at
    _final(resource, at)
    results = resource.get("result")
    if isinstance(results, list) and results:
        # Folded into its results' entries once the whole Bundle is read (`_fold_reports`).
        item.body = {"result": results, "conclusion": resource.get("conclusion")}
        return
    item.section = "lab-results"
    _lab_code(resource.get("code"), item)
    _put(item, "value", resource.get("conclusion"), "conclusion")
    _put(item, "issued_on", _day(resource.get("effectiveDateTime") or resource.get("issued")),
         "effectiveDateTime" if resource.get("effectiveDateTime") else "issued")


def _fold_reports(items: list[Item]) -> list[BundleError]:
    by_url = {item.full_url: item for item in items if item.full_url}
    errors: list[BundleError] = []
    for report in items:
        if report.resource_type != "DiagnosticReport" or report.section is not None:
            continue
        results, conclusion = report.body["result"], report.body.get("conclusion")
        report.body = {}
        targets: list[Item] = []
        for position, reference in enumerate(results):
            target = by_url.get(reference.get("reference")) if isinstance(reference, dict) \
                else None
            if target is None or target.resource_type != "Observation":
                errors.append(BundleError(f"{report.at}.result[{position}]",
                                          Message("fhir.in.result-in-bundle")))
            elif target.health_id != report.health_id:
                errors.append(BundleError(f"{report.at}.subject",
                                          Message("fhir.in.result-subject")))
            else:
                targets.append(target)
        if errors or not targets:
            continue
        report.folded_into = targets[0].index
        if isinstance(conclusion, str) and conclusion.strip():
            for target in targets:
                note = target.body.get("note")
                target.body["note"] = f"{note}\n{conclusion}" if note else conclusion
                target.paths.setdefault("note", "note")
    return errors


def _duplicates(items: list[Item]) -> list[BundleError]:
    seen: set[tuple[str, tuple[str, str]]] = set()
    errors = []
    for item in items:
        if item.identifier is None or item.folded_into is not None:
            continue
        key = (item.resource_type, item.identifier)
        if key in seen:
            errors.append(BundleError(f"Bundle.entry[{item.index}].request.ifNoneExist",
                                      Message("fhir.in.duplicate"), code="duplicate"))
        seen.add(key)
    return errors


def _condition(resource: Mapping[str, Any], item: Item) -> None:
    at = item.at
    item.section = "conditions"
    verification = _code_in(resource.get("verificationStatus"), cs.CONDITION_VERIFICATION)
    if verification is not None and verification[1] in ("entered-in-error", "refuted"):
        raise BundleError(f"{at}.verificationStatus", Message("fhir.in.code"),
                          code="not-supported")
    code = resource.get("code")
    icd10 = _code_in(code, cs.ICD10)
    if code is None:
        raise BundleError(f"{at}.code", Message("fhir.in.required"), code="required")
    if icd10 is None:
        raise BundleError(f"{at}.code", Message("fhir.in.icd10"), code="code-invalid")
    _put(item, "icd10_code", icd10[1], f"code.coding[{icd10[0]}].code")
    text = code.get("text") if isinstance(code, dict) else None
    _put(item, "text", text if isinstance(text, str) else None, "code.text")
    status = _code_in(resource.get("clinicalStatus"), cs.CONDITION_CLINICAL)
    if status is not None:
        if status[1] not in _CONDITION_STATUS:
            raise BundleError(f"{at}.clinicalStatus", Message("fhir.in.code"),
                              code="code-invalid")
        _put(item, "clinical_status", _CONDITION_STATUS[status[1]],
             f"clinicalStatus.coding[{status[0]}].code")
    _put(item, "onset_date", _day(resource.get("onsetDateTime")), "onsetDateTime")
    _put(item, "abatement_date", _day(resource.get("abatementDateTime")), "abatementDateTime")
    _put(item, "note", _notes(resource), "note")


def _encounter(resource: Mapping[str, Any], item: Item) -> None:
    at = item.at
    item.section = "encounters"
    if resource.get("status") not in ("finished", "in-progress"):
        raise BundleError(f"{at}.status", Message("fhir.in.status",
                                                  allowed="finished, in-progress"),
                          code="not-supported")
    kind = None
    for position, concept in enumerate(resource.get("type") or []):
        own = _code_in(concept, cs.ENCOUNTER_TYPES)
        if own is not None:
            kind = (own[1], f"type[{position}].coding[{own[0]}].code")
    klass = resource.get("class")
    if kind is None and isinstance(klass, dict):
        if klass.get("system") != cs.ACT_CODE or klass.get("code") not in _ENCOUNTER_CLASSES:
            raise BundleError(f"{at}.class", Message("fhir.in.code"), code="code-invalid")
        kind = (_ENCOUNTER_CLASSES[klass["code"]], "class.code")
    if kind is None:
        raise BundleError(f"{at}.class", Message("fhir.in.required"), code="required")
    _put(item, "encounter_type", kind[0], kind[1])
    period = resource.get("period") if isinstance(resource.get("period"), dict) else {}
    _put(item, "start_date", _day(period.get("start")), "period.start")
    _put(item, "end_date", _day(period.get("end")), "period.end")
    reasons, codes = [], []
    for concept in resource.get("reasonCode") or []:
        found = _code_in(concept, cs.ICD10)
        if found is not None:
            codes.append(found[1])
        elif _text_of(concept):
            reasons.append(_text_of(concept))
    _put(item, "reason", "; ".join(r for r in reasons if r) or None, "reasonCode")
    if codes:
        _put(item, "diagnosis_codes", codes, "reasonCode")


_CONVERTERS: dict[str, Callable[[Mapping[str, Any], Item], None]] = {
    "Immunization": _immunization,
    "Observation": _observation,
    "DiagnosticReport": _diagnostic_report,
    "Condition": _condition,
    "Encounter": _encounter,
}
