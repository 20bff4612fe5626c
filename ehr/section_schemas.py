"""What each record section holds (shape only: no queries, no permissions).

Each schema validates the clinical content of one section; the common envelope (id, status,
sensitivity, version, author...) is the service's. Plausibility and code lists come from
registry/reference. Dates are checked against today; the service checks them against birth.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from core.errors import Message
from core.schemas import ApiSchema, Text
from registry.reference.icd10 import lookup_icd10
from registry.reference.observations import (
    observation_kinds,
    to_canonical,
    validate_blood_pressure,
    validate_observation,
)
from registry.reference.vaccines import get_vaccine

SENSITIVITY_LABELS = ("normal", "mental-health", "hiv-sti", "reproductive", "substance-use",
                      "genetic")


def _today() -> dt.date:
    # Vietnam's calendar date: a dose given at 06:00 in Hanoi is "today" there, not yesterday UTC.
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)).date()


def not_in_future(value: dt.date | dt.datetime) -> None:
    day = value.date() if isinstance(value, dt.datetime) else value
    if day > _today():
        raise ValidationError(Message("record.date-in-future"))  # type: ignore[arg-type]


def icd10_code(value: str) -> None:
    if lookup_icd10(value) is None:
        raise ValidationError(Message("record.icd10-unknown"))  # type: ignore[arg-type]


class Number(fields.Float):
    """A JSON number: "148" (a string) is refused, as the contract says number."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(Message("record.number-required"))  # type: ignore[arg-type]
        return super()._deserialize(value, attr, data, **kwargs)


short = validate.Length(min=1, max=200)
long = validate.Length(min=1, max=4000)


class AllergySchema(ApiSchema):
    substance = Text(required=True, validate=short)
    category = Text(required=True,
                    validate=validate.OneOf(["food", "medication", "environment", "biologic"]))
    criticality = Text(load_default="low",
                       validate=validate.OneOf(["low", "high", "unable-to-assess"]))
    reaction = Text(validate=short)
    severity = Text(validate=validate.OneOf(["mild", "moderate", "severe"]))
    clinical_status = Text(load_default="active",
                           validate=validate.OneOf(["active", "inactive", "resolved"]))
    onset_date = fields.Date(validate=not_in_future)
    note = Text(multiline=True, validate=long)


class ConditionSchema(ApiSchema):
    icd10_code = Text(required=True, validate=icd10_code)
    text = Text(validate=short)
    clinical_status = Text(load_default="active",
                           validate=validate.OneOf(["active", "remission", "resolved"]))
    onset_date = fields.Date(validate=not_in_future)
    abatement_date = fields.Date(validate=not_in_future)
    note = Text(multiline=True, validate=long)

    @validates_schema
    def _dates(self, data: dict[str, Any], **kwargs: Any) -> None:
        _ordered(data, "onset_date", "abatement_date")


class EncounterSchema(ApiSchema):
    encounter_type = Text(required=True, validate=validate.OneOf(
        ["outpatient", "inpatient", "home-visit", "telehealth", "emergency"]))
    start_date = fields.Date(required=True, validate=not_in_future)
    end_date = fields.Date(validate=not_in_future)
    reason = Text(validate=short)
    diagnosis_codes = fields.List(Text(validate=icd10_code), validate=validate.Length(max=20))
    summary = Text(multiline=True, validate=long)
    note = Text(multiline=True, validate=long)

    @validates_schema
    def _dates(self, data: dict[str, Any], **kwargs: Any) -> None:
        _ordered(data, "start_date", "end_date")


class ObservationSchema(ApiSchema):
    kind = Text(required=True, validate=validate.OneOf(
        sorted(observation_kinds()) + ["blood-pressure"]))
    value = Number(allow_nan=False)
    unit = Text(validate=validate.Length(min=1, max=20))
    systolic = Number(allow_nan=False)
    diastolic = Number(allow_nan=False)
    effective_at = fields.AwareDateTime(required=True, validate=not_in_future)
    method = Text(validate=validate.OneOf(["clinic", "home", "device"]))
    note = Text(multiline=True, validate=long)

    @validates_schema
    def _plausible(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind = data.get("kind")
        if kind is None:
            return
        if kind == "blood-pressure":
            if "value" in data:
                raise ValidationError({"value": [Message("record.observation-bp-only")]})
            if "systolic" not in data or "diastolic" not in data:
                raise ValidationError({"systolic": [Message("record.observation-bp-required")]})
            problems = validate_blood_pressure(
                systolic=data["systolic"], diastolic=data["diastolic"],
                unit=data.get("unit", "mm[Hg]"),
            )
            if problems:
                raise ValidationError({
                    name: [Message(f"observation.{code}") for code in codes]
                    for name, codes in problems.items()
                })
            return
        if "systolic" in data or "diastolic" in data:
            raise ValidationError({"systolic": [Message("record.observation-bp-only")]})
        if "value" not in data or "unit" not in data:
            raise ValidationError({"value": [Message("record.observation-value-required")]})
        codes = validate_observation(kind, data["value"], data["unit"])
        if codes:
            field = "unit" if codes == ["unit"] else "value"
            raise ValidationError({field: [Message(f"observation.{c}") for c in codes]})

    def normalise(self, data: dict[str, Any]) -> dict[str, Any]:
        """Store values in the kind's canonical UCUM unit."""
        if data["kind"] == "blood-pressure":
            unit = data.get("unit", "mm[Hg]")
            data["systolic"] = to_canonical("systolic-bp", data["systolic"], unit).value
            data["diastolic"] = to_canonical("diastolic-bp", data["diastolic"], unit).value
            data["unit"] = "mm[Hg]"
            return data
        measured = to_canonical(data["kind"], data["value"], data["unit"])
        data["value"], data["unit"] = measured.value, measured.unit
        return data


class MedicationSchema(ApiSchema):
    name = Text(required=True, validate=short)
    atc_code = Text(validate=validate.Regexp(r"^[A-Z]\d{2}[A-Z]{2}\d{2}$"))
    dose = Text(validate=short)
    route = Text(validate=validate.OneOf(
        ["oral", "injection", "topical", "inhaled", "rectal", "sublingual", "other"]))
    frequency = Text(validate=short)
    start_date = fields.Date(required=True, validate=not_in_future)
    end_date = fields.Date()
    medication_status = Text(load_default="active",
                             validate=validate.OneOf(["active", "completed", "stopped"]))
    reason_code = Text(validate=icd10_code)
    note = Text(multiline=True, validate=long)

    @validates_schema
    def _dates(self, data: dict[str, Any], **kwargs: Any) -> None:
        _ordered(data, "start_date", "end_date")


class ImmunizationSchema(ApiSchema):
    vaccine_code = Text(required=True)
    dose_number = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10))
    occurrence_date = fields.Date(required=True, validate=not_in_future)
    lot_number = Text(required=True, validate=validate.Length(min=1, max=40))
    expiry_date = fields.Date()
    site = Text(validate=validate.OneOf(
        ["left-arm", "right-arm", "left-thigh", "right-thigh", "oral", "intradermal-left-arm",
         "other"]))
    route = Text(validate=validate.OneOf(
        ["intramuscular", "subcutaneous", "intradermal", "oral", "intranasal"]))
    facility_code = Text(validate=validate.Length(min=1, max=32))
    performer_id = fields.UUID()
    reaction = Text(validate=short)
    note = Text(multiline=True, validate=long)

    @validates("vaccine_code")
    def _vaccine(self, value: str, **kwargs: Any) -> None:
        if get_vaccine(value) is None:
            raise ValidationError(Message("record.vaccine-unknown"))  # type: ignore[arg-type]

    @validates_schema
    def _expiry(self, data: dict[str, Any], **kwargs: Any) -> None:
        expiry, given = data.get("expiry_date"), data.get("occurrence_date")
        if expiry is not None and given is not None and expiry < given:
            raise ValidationError({"expiry_date": [Message("record.expired-vaccine")]})


class LabResultSchema(ApiSchema):
    test_name = Text(required=True, validate=short)
    loinc_code = Text(validate=validate.Regexp(r"^\d{1,7}-\d$"))
    value = Text(required=True, validate=validate.Length(min=1, max=200))
    unit = Text(validate=validate.Length(max=20))
    reference_range = Text(validate=validate.Length(max=100))
    interpretation = Text(validate=validate.OneOf(
        ["normal", "abnormal", "low", "high", "critical-low", "critical-high"]))
    issued_on = fields.Date(required=True, validate=not_in_future)
    specimen = Text(validate=short)
    note = Text(multiline=True, validate=long)


class FamilyHistorySchema(ApiSchema):
    relationship = Text(required=True, validate=validate.OneOf(
        ["mother", "father", "sibling", "child", "grandparent", "aunt-uncle", "other"]))
    icd10_code = Text(validate=icd10_code)
    condition_text = Text(validate=short)
    onset_age = fields.Integer(strict=True, validate=validate.Range(min=0, max=120))
    deceased = fields.Boolean()
    note = Text(multiline=True, validate=long)

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "icd10_code" not in data and "condition_text" not in data:
            raise ValidationError({"icd10_code": [Message("record.icd10-unknown")]})


class HistorySchema(ApiSchema):
    category = Text(required=True, validate=validate.OneOf(
        ["birth-condition", "smoking", "alcohol", "physical-activity", "diet", "disability",
         "surgery", "reproductive", "occupational-exposure", "other-risk"]))
    description = Text(required=True, multiline=True, validate=long)
    status = Text(validate=validate.OneOf(["current", "former", "never"]))
    quantity = Text(validate=short)
    start_date = fields.Date(validate=not_in_future)
    end_date = fields.Date(validate=not_in_future)
    note = Text(multiline=True, validate=long)

    @validates_schema
    def _dates(self, data: dict[str, Any], **kwargs: Any) -> None:
        _ordered(data, "start_date", "end_date")


class ExaminationSchema(ApiSchema):
    exam_type = Text(required=True, validate=validate.OneOf(
        ["periodic", "school", "pre-employment", "antenatal", "elderly", "other"]))
    examined_on = fields.Date(required=True, validate=not_in_future)
    history = Text(multiline=True, validate=long)
    physical_exam = Text(multiline=True, validate=long)
    test_summary = Text(multiline=True, validate=long)
    diagnosis_codes = fields.List(Text(validate=icd10_code), validate=validate.Length(max=20))
    conclusion = Text(multiline=True, validate=long)
    counselling = Text(multiline=True, validate=long)
    next_exam_due = fields.Date()
    note = Text(multiline=True, validate=long)


def _ordered(data: dict[str, Any], start: str, end: str) -> None:
    if data.get(start) and data.get(end) and data[end] < data[start]:
        raise ValidationError({end: [Message("record.date-order")]})


SECTION_SCHEMAS: dict[str, type[ApiSchema]] = {
    "allergies": AllergySchema,
    "conditions": ConditionSchema,
    "encounters": EncounterSchema,
    "observations": ObservationSchema,
    "medications": MedicationSchema,
    "immunizations": ImmunizationSchema,
    "lab-results": LabResultSchema,
    "family-history": FamilyHistorySchema,
    "history": HistorySchema,
    "examinations": ExaminationSchema,
}

# The field whose date is the entry's clinical date (used for ordering and consent periods).
CLINICAL_DATE_FIELD = {
    "allergies": "onset_date",
    "conditions": "onset_date",
    "encounters": "start_date",
    "observations": "effective_at",
    "medications": "start_date",
    "immunizations": "occurrence_date",
    "lab-results": "issued_on",
    "family-history": None,
    "history": "start_date",
    "examinations": "examined_on",
}
