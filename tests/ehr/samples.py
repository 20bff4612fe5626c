"""A valid create body and a correction for every section, and bad bodies for every rule."""

from __future__ import annotations

import datetime as dt

TODAY = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)).date()  # Vietnam's calendar
YESTERDAY = (TODAY - dt.timedelta(days=1)).isoformat()
TOMORROW = (TODAY + dt.timedelta(days=1)).isoformat()
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
]
