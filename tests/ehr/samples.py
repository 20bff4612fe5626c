"""A valid create body and a correction for every section, and bad bodies for every rule."""

from __future__ import annotations

import datetime as dt

TODAY = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)).date()  # Vietnam's calendar
YESTERDAY = (TODAY - dt.timedelta(days=1)).isoformat()
# Two days ahead: still in the future for a run that crosses midnight in Vietnam (17:00 UTC),
# as collection-time constants do.
TOMORROW = (TODAY + dt.timedelta(days=2)).isoformat()
NOW_UTC = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0).isoformat()

# section -> (create body, patch body, (data field, expected value after the patch))
SAMPLES: dict[str, tuple[dict, dict, tuple[str, object]]] = {
    "allergies": (
        {"substance": "Penicillin", "category": "medication", "criticality": "high",
         "reaction": "Nổi mề đay", "severity": "severe"},
        {"severity": "moderate"}, ("severity", "moderate")),
    "conditions": (
        {"icd10_code": "I10", "clinical_status": "active", "onset_date": "2015-04-02"},
        {"clinical_status": "remission"}, ("clinical_status", "remission")),
    "encounters": (
        {"encounter_type": "outpatient", "start_date": YESTERDAY, "reason": "Khám định kỳ",
         "diagnosis_codes": ["I10"], "summary": "Huyết áp ổn định"},
        {"summary": "Huyết áp ổn định, tiếp tục thuốc"},
        ("summary", "Huyết áp ổn định, tiếp tục thuốc")),
    "observations": (
        {"kind": "blood-pressure", "systolic": 142, "diastolic": 91, "unit": "mm[Hg]",
         "effective_at": NOW_UTC, "method": "home"},
        {"systolic": 140}, ("systolic", 140.0)),
    "medications": (
        {"name": "Amlodipin 5 mg", "atc_code": "C08CA01", "dose": "1 viên", "route": "oral",
         "frequency": "1 lần/ngày", "start_date": "2020-01-01", "reason_code": "I10"},
        {"medication_status": "stopped", "end_date": YESTERDAY},
        ("medication_status", "stopped")),
    "immunizations": (
        {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": YESTERDAY,
         "lot_number": "TD-2611-01", "site": "left-arm", "route": "intramuscular"},
        {"lot_number": "TD-2611-02"}, ("lot_number", "TD-2611-02")),
    "lab-results": (
        {"test_name": "HbA1c", "loinc_code": "4548-4", "value": "7.2", "unit": "%",
         "interpretation": "high", "issued_on": YESTERDAY},
        {"value": "6.9"}, ("value", "6.9")),
    "family-history": (
        {"relationship": "father", "icd10_code": "I64", "onset_age": 68, "deceased": True},
        {"onset_age": 67}, ("onset_age", 67)),
    "history": (
        {"category": "smoking", "description": "Hút thuốc 10 điếu/ngày", "status": "former",
         "start_date": "1985-01-01", "end_date": "2015-01-01"},
        {"status": "never"}, ("status", "never")),
    "examinations": (
        {"exam_type": "periodic", "examined_on": YESTERDAY, "physical_exam": "Bình thường",
         "diagnosis_codes": ["I10"], "conclusion": "Sức khỏe loại II"},
        {"conclusion": "Sức khỏe loại I"}, ("conclusion", "Sức khỏe loại I")),
}

# (id, section, body, field that must be named in `errors`)
BAD: list[tuple[str, str, dict, str]] = [
    ("allergy-missing-substance", "allergies", {"category": "food"}, "substance"),
    ("allergy-bad-category", "allergies", {"substance": "Tôm", "category": "x"}, "category"),
    ("allergy-future-onset", "allergies",
     {"substance": "Tôm", "category": "food", "onset_date": TOMORROW}, "onset_date"),
    ("unknown-field", "allergies",
     {"substance": "Tôm", "category": "food", "colour": "red"}, "colour"),
    ("condition-unknown-icd10", "conditions", {"icd10_code": "X99.99"}, "icd10_code"),
    ("condition-abatement-before-onset", "conditions",
     {"icd10_code": "I10", "onset_date": "2020-01-01", "abatement_date": "2019-01-01"},
     "abatement_date"),
    ("encounter-bad-type", "encounters", {"encounter_type": "x", "start_date": YESTERDAY},
     "encounter_type"),
    ("encounter-bad-diagnosis", "encounters",
     {"encounter_type": "outpatient", "start_date": YESTERDAY, "diagnosis_codes": ["ZZZ"]},
     "diagnosis_codes.0"),
    ("systolic-900", "observations",
     {"kind": "blood-pressure", "systolic": 900, "diastolic": 80, "effective_at": NOW_UTC},
     "systolic"),
    ("diastolic-above-systolic", "observations",
     {"kind": "blood-pressure", "systolic": 110, "diastolic": 130, "effective_at": NOW_UTC},
     "diastolic"),
    ("temperature-60", "observations",
     {"kind": "body-temperature", "value": 60, "unit": "Cel", "effective_at": NOW_UTC},
     "value"),
    ("weight-wrong-unit", "observations",
     {"kind": "body-weight", "value": 60, "unit": "mm[Hg]", "effective_at": NOW_UTC}, "unit"),
    ("observation-naive-time", "observations",
     {"kind": "heart-rate", "value": 70, "unit": "/min", "effective_at": "2026-01-01T08:00:00"},
     "effective_at"),
    ("observation-unknown-kind", "observations",
     {"kind": "aura", "value": 1, "unit": "kg", "effective_at": NOW_UTC}, "kind"),
    ("medication-missing-start", "medications", {"name": "Metformin"}, "start_date"),
    ("medication-bad-atc", "medications",
     {"name": "Metformin", "start_date": YESTERDAY, "atc_code": "metformin"}, "atc_code"),
    ("immunization-unknown-vaccine", "immunizations",
     {"vaccine_code": "NOPE", "dose_number": 1, "occurrence_date": YESTERDAY,
      "lot_number": "L1"}, "vaccine_code"),
    ("immunization-dose-zero", "immunizations",
     {"vaccine_code": "TD", "dose_number": 0, "occurrence_date": YESTERDAY,
      "lot_number": "L1"}, "dose_number"),
    ("immunization-dose-string", "immunizations",
     {"vaccine_code": "TD", "dose_number": "1", "occurrence_date": YESTERDAY,
      "lot_number": "L1"}, "dose_number"),
    ("immunization-future", "immunizations",
     {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": TOMORROW, "lot_number": "L1"},
     "occurrence_date"),
    ("immunization-before-birth", "immunizations",
     {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": "1950-01-01",
      "lot_number": "L1"}, "occurrence_date"),
    ("immunization-expired-lot", "immunizations",
     {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": YESTERDAY, "lot_number": "L1",
      "expiry_date": "2020-01-01"}, "expiry_date"),
    ("immunization-missing-lot", "immunizations",
     {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": YESTERDAY}, "lot_number"),
    ("immunization-unknown-facility", "immunizations",
     {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": YESTERDAY, "lot_number": "L1",
      "facility_code": "NO-SUCH"}, "facility_code"),
    ("immunization-unknown-performer", "immunizations",
     {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": YESTERDAY, "lot_number": "L1",
      "performer_id": "6e859e53-7174-4082-8023-9ef0b60bc271"}, "performer_id"),
    ("lab-missing-value", "lab-results", {"test_name": "HbA1c", "issued_on": YESTERDAY},
     "value"),
    ("family-bad-relationship", "family-history",
     {"relationship": "neighbour", "icd10_code": "I10"}, "relationship"),
    ("family-onset-age-200", "family-history",
     {"relationship": "mother", "icd10_code": "I10", "onset_age": 200}, "onset_age"),
    ("history-bad-category", "history", {"category": "x", "description": "y"}, "category"),
    ("exam-missing-date", "examinations", {"exam_type": "periodic"}, "examined_on"),
    ("bad-sensitivity", "allergies",
     {"substance": "Tôm", "category": "food", "sensitivity": "secret"}, "sensitivity"),
    ("source-not-allowed", "allergies",
     {"substance": "Tôm", "category": "food", "source": "station"}, "source"),
    # End before start (record.date-order).
    ("encounter-end-before-start", "encounters",
     {"encounter_type": "inpatient", "start_date": YESTERDAY, "end_date": "2020-01-01"},
     "end_date"),
    ("medication-end-before-start", "medications",
     {"name": "Metformin", "start_date": YESTERDAY, "end_date": "2020-01-01"}, "end_date"),
    ("history-end-before-start", "history",
     {"category": "smoking", "description": "Hút thuốc", "start_date": "2015-01-01",
      "end_date": "2010-01-01"}, "end_date"),
    # Blood pressure has its own shape (record.observation-bp-only / -bp-required) and every
    # other kind needs a value with a unit (record.observation-value-required).
    ("bp-with-a-value", "observations",
     {"kind": "blood-pressure", "systolic": 120, "diastolic": 80, "value": 120,
      "effective_at": NOW_UTC}, "value"),
    ("systolic-on-heart-rate", "observations",
     {"kind": "heart-rate", "value": 70, "unit": "/min", "systolic": 120,
      "effective_at": NOW_UTC}, "systolic"),
    ("bp-without-diastolic", "observations",
     {"kind": "blood-pressure", "systolic": 120, "effective_at": NOW_UTC}, "systolic"),
    ("heart-rate-without-value", "observations",
     {"kind": "heart-rate", "unit": "/min", "effective_at": NOW_UTC}, "value"),
    ("weight-without-unit", "observations",
     {"kind": "body-weight", "value": 60, "effective_at": NOW_UTC}, "value"),
    # Code lists and patterns.
    ("medication-unknown-reason", "medications",
     {"name": "Metformin", "start_date": YESTERDAY, "reason_code": "X99.99"}, "reason_code"),
    ("lab-bad-loinc", "lab-results",
     {"test_name": "HbA1c", "loinc_code": "4548", "value": "7.2", "issued_on": YESTERDAY},
     "loinc_code"),
    ("exam-bad-diagnosis", "examinations",
     {"exam_type": "periodic", "examined_on": YESTERDAY, "diagnosis_codes": ["I10", "ZZZ"]},
     "diagnosis_codes.1"),
    ("family-unknown-icd10", "family-history",
     {"relationship": "father", "icd10_code": "X99.99"}, "icd10_code"),
    ("family-neither-code-nor-text", "family-history",
     {"relationship": "father", "onset_age": 60}, "icd10_code"),
    # Before the person's birth (the patient was born on 1961-03-14), one per kind of date
    # field: a date (`_date`), a moment (`_at`) and a day something was done (`_on`).
    ("allergy-onset-before-birth", "allergies",
     {"substance": "Tôm", "category": "food", "onset_date": "1950-01-01"}, "onset_date"),
    ("medication-start-before-birth", "medications",
     {"name": "Metformin", "start_date": "1961-03-13"}, "start_date"),
    ("observation-before-birth", "observations",
     {"kind": "heart-rate", "value": 70, "unit": "/min",
      "effective_at": "1950-01-01T08:00:00+07:00"}, "effective_at"),
    ("lab-issued-before-birth", "lab-results",
     {"test_name": "HbA1c", "value": "7.2", "issued_on": "1950-01-01"}, "issued_on"),
    ("exam-before-birth", "examinations",
     {"exam_type": "periodic", "examined_on": "1950-01-01"}, "examined_on"),
]

# Corrections that must be refused whole: (id, section, patch, field named in `errors`). Each
# is applied to an entry created from SAMPLES[section][0].
BAD_PATCHES: list[tuple[str, str, dict, str]] = [
    ("patch-systolic-900", "observations", {"systolic": 900}, "systolic"),
    ("patch-unknown-field", "allergies", {"colour": "red"}, "colour"),
    ("patch-unknown-field-beside-a-good-one", "immunizations",
     {"lot_number": "TD-2611-09", "batch_colour": "blue"}, "batch_colour"),
    ("patch-source", "allergies", {"source": "imported"}, "source"),
    ("patch-bad-sensitivity", "allergies", {"sensitivity": "secret"}, "sensitivity"),
    ("patch-end-before-start", "medications", {"end_date": "2019-12-31"}, "end_date"),
    ("patch-before-birth", "lab-results", {"issued_on": "1950-01-01"}, "issued_on"),
    ("patch-unknown-icd10", "conditions", {"icd10_code": "X99.99"}, "icd10_code"),
]

# Identity fields a citizen may not change on PATCH /citizens/{id} (record.field-station-only),
# with a value the schema itself accepts.
STATION_ONLY_FIELDS: dict[str, object] = {
    "full_name": "Ai Khác",
    "date_of_birth": "1961-03-15",
    "sex": "female",
    "ethnicity": "Tày",
}


def body_for(section: str, born: dt.date) -> dict:
    """SAMPLES[section]'s create body with every date moved to no earlier than `born` (a
    body valid for a child, whose record cannot hold dates from before their birth)."""
    body = dict(SAMPLES[section][0])
    for name, value in body.items():
        if not isinstance(value, str) or not name.endswith(("_date", "_at", "_on")):
            continue
        if dt.date.fromisoformat(value[:10]) < born:
            day = born.isoformat()
            body[name] = day if len(value) == 10 else f"{day}T08:00:00+07:00"
    return body
