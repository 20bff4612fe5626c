"""Observation kinds: units, plausibility ranges and conversions."""

import math
import re
from decimal import Decimal

import pytest

from registry.reference.observations import (
    OBSERVATION_KINDS,
    OBSERVATION_MESSAGES,
    Measurement,
    ObservationError,
    compute_bmi,
    observation_message,
    to_canonical,
    validate_blood_pressure,
    validate_observation,
)

EXPECTED_KINDS = {
    # kind: (LOINC, canonical UCUM unit)
    "systolic-bp": ("8480-6", "mm[Hg]"),
    "diastolic-bp": ("8462-4", "mm[Hg]"),
    "heart-rate": ("8867-4", "/min"),
    "body-temperature": ("8310-5", "Cel"),
    "body-weight": ("29463-7", "kg"),
    "body-height": ("8302-2", "cm"),
    "bmi": ("39156-5", "kg/m2"),
    "blood-glucose": ("15074-8", "mmol/L"),
    "spo2": ("59408-5", "%"),
    "respiratory-rate": ("9279-1", "/min"),
    "waist-circumference": ("8280-0", "cm"),
    "hba1c": ("4548-4", "%"),
}


def _loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit (the Luhn algorithm over the part before the hyphen)."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return (10 - total % 10) % 10


def test_kinds_carry_loinc_codes_and_ucum_units():
    assert set(OBSERVATION_KINDS) == set(EXPECTED_KINDS)
    for kind, (loinc, unit) in EXPECTED_KINDS.items():
        definition = OBSERVATION_KINDS[kind]
        assert definition.loinc == loinc
        assert definition.unit == unit
        assert definition.unit in definition.units
        assert definition.display("vi")
        assert definition.display("en")
        number, check = re.fullmatch(r"(\d+)-(\d)", definition.loinc).groups()
        assert _loinc_check_digit(number) == int(check), kind


@pytest.mark.parametrize(
    ("kind", "value", "unit", "expected"),
    [
        ("systolic-bp", 120, "mm[Hg]", []),
        ("systolic-bp", 900, "mm[Hg]", ["out-of-range"]),
        ("systolic-bp", 49, "mm[Hg]", ["out-of-range"]),
        ("systolic-bp", 50, "mm[Hg]", []),
        ("systolic-bp", 260, "mm[Hg]", []),
        ("systolic-bp", 260.5, "mm[Hg]", ["out-of-range"]),
        ("systolic-bp", 120, "mmHg", []),
        ("systolic-bp", 16, "kPa", ["unit"]),
        ("diastolic-bp", 80, "mm[Hg]", []),
        ("diastolic-bp", 29, "mm[Hg]", ["out-of-range"]),
        ("heart-rate", 72, "/min", []),
        ("heart-rate", 72, "bpm", []),
        ("heart-rate", 24, "/min", ["out-of-range"]),
        ("heart-rate", 251, "/min", ["out-of-range"]),
        ("body-temperature", 37.2, "Cel", []),
        ("body-temperature", 46, "Cel", ["out-of-range"]),
        ("body-temperature", 98.6, "[degF]", []),
        ("body-temperature", 98.6, "°F", []),
        ("body-temperature", 37, "[degF]", ["out-of-range"]),
        ("body-weight", 3.2, "kg", []),
        ("body-weight", 0.2, "kg", ["out-of-range"]),
        ("body-weight", 3200, "g", []),
        ("body-weight", 351, "kg", ["out-of-range"]),
        ("body-height", 165, "cm", []),
        ("body-height", 1.65, "m", []),
        ("body-height", 1.65, "cm", ["out-of-range"]),
        ("bmi", 22.5, "kg/m2", []),
        ("bmi", 7.9, "kg/m2", ["out-of-range"]),
        ("blood-glucose", 5.5, "mmol/L", []),
        ("blood-glucose", 0.9, "mmol/L", ["out-of-range"]),
        ("blood-glucose", 100, "mg/dL", []),
        ("blood-glucose", 18, "mg/dL", []),
        ("blood-glucose", 900, "mg/dL", []),
        ("blood-glucose", 950, "mg/dL", ["out-of-range"]),
        ("spo2", 98, "%", []),
        ("spo2", 101, "%", ["out-of-range"]),
        ("spo2", 49, "%", ["out-of-range"]),
        ("respiratory-rate", 18, "/min", []),
        ("respiratory-rate", 4, "/min", ["out-of-range"]),
        ("waist-circumference", 85, "cm", []),
        ("hba1c", 6.5, "%", []),
        ("hba1c", 21, "%", ["out-of-range"]),
        ("hba1c", 48, "mmol/mol", []),
        ("heart-rate", Decimal("72.5"), "/min", []),
        ("heart-rate", "72", "/min", ["not-a-number"]),
        ("heart-rate", None, "/min", ["not-a-number"]),
        ("heart-rate", True, "/min", ["not-a-number"]),
        ("heart-rate", math.nan, "/min", ["not-a-number"]),
        ("heart-rate", math.inf, "/min", ["not-a-number"]),
        ("heart-rate", "fast", "kg", ["unit", "not-a-number"]),
        ("pulse-pressure", 40, "mm[Hg]", ["unknown-kind"]),
    ],
)
def test_validate_observation(kind, value, unit, expected):
    assert validate_observation(kind, value, unit) == expected


@pytest.mark.parametrize(
    ("kind", "value", "unit", "expected"),
    [
        ("blood-glucose", 100, "mg/dL", Measurement("blood-glucose", 5.6, "mmol/L")),
        ("blood-glucose", 180, "mg/dl", Measurement("blood-glucose", 10.0, "mmol/L")),
        ("blood-glucose", 5.55, "mmol/L", Measurement("blood-glucose", 5.55, "mmol/L")),
        ("body-temperature", 98.6, "[degF]", Measurement("body-temperature", 37.0, "Cel")),
        ("body-temperature", 37.25, "Cel", Measurement("body-temperature", 37.25, "Cel")),
        ("body-weight", 3250, "g", Measurement("body-weight", 3.25, "kg")),
        ("body-height", 1.655, "m", Measurement("body-height", 165.5, "cm")),
        ("hba1c", 48, "mmol/mol", Measurement("hba1c", 6.5, "%")),
        ("hba1c", 53, "mmol/mol", Measurement("hba1c", 7.0, "%")),
        ("systolic-bp", 120, "mmHg", Measurement("systolic-bp", 120.0, "mm[Hg]")),
    ],
)
def test_to_canonical_converts_accepted_units(kind, value, unit, expected):
    assert to_canonical(kind, value, unit) == expected


def test_to_canonical_refuses_invalid_values():
    with pytest.raises(ValueError, match="out-of-range"):
        to_canonical("systolic-bp", 900, "mm[Hg]")
    with pytest.raises(ValueError, match="unit"):
        to_canonical("blood-glucose", 5, "g/L")


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"),
    [
        (120, 80, {}),
        (120, 119, {}),
        (120, 120, {"diastolic": ["diastolic-not-below-systolic"]}),
        (120, 130, {"diastolic": ["diastolic-not-below-systolic"]}),
        (900, 80, {"systolic": ["out-of-range"]}),
        (120, "eighty", {"diastolic": ["not-a-number"]}),
        (40, 20, {"systolic": ["out-of-range"], "diastolic": ["out-of-range"]}),
    ],
)
def test_validate_blood_pressure(systolic, diastolic, expected):
    assert validate_blood_pressure(systolic=systolic, diastolic=diastolic) == expected


def test_validate_blood_pressure_unit_applies_to_both():
    assert validate_blood_pressure(systolic=120, diastolic=80, unit="kPa") == {
        "systolic": [ObservationError.UNIT],
        "diastolic": [ObservationError.UNIT],
    }


@pytest.mark.parametrize(
    ("weight", "height", "bmi"),
    [(70, 175, 22.9), (50, 160, 19.5), (100, 170, 34.6), (3.3, 50, 13.2)],
)
def test_compute_bmi(weight, height, bmi):
    value = compute_bmi(weight_kg=weight, height_cm=height)
    assert value == bmi
    assert validate_observation("bmi", value, "kg/m2") == []


def test_compute_bmi_needs_positive_measurements():
    with pytest.raises(ValueError, match="positive"):
        compute_bmi(weight_kg=70, height_cm=0)


def test_every_error_has_both_languages():
    for code in ObservationError:
        assert OBSERVATION_MESSAGES[code]["vi"]
        assert OBSERVATION_MESSAGES[code]["en"]
    assert observation_message("out-of-range", "en").startswith("The value is outside")
    assert observation_message("unit") == OBSERVATION_MESSAGES["unit"]["vi"]
