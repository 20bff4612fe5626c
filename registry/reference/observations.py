"""Observation kinds (vital signs, measurements): LOINC codes, UCUM units, plausibility ranges."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import cache
from numbers import Real
from typing import Any

from registry.reference._data import load_json


class ObservationError(StrEnum):
    """Machine codes of an observation value that fails validation."""

    UNKNOWN_KIND = "unknown-kind"
    UNIT = "unit"
    NOT_A_NUMBER = "not-a-number"
    OUT_OF_RANGE = "out-of-range"
    DIASTOLIC_NOT_BELOW_SYSTOLIC = "diastolic-not-below-systolic"


OBSERVATION_MESSAGES: Mapping[str, Mapping[str, str]] = {
    "unknown-kind": {
        "vi": "Loại chỉ số đo không được hỗ trợ.",
        "en": "This kind of observation is not supported.",
    },
    "unit": {
        "vi": "Đơn vị đo không phù hợp với loại chỉ số này.",
        "en": "The unit is not accepted for this kind of observation.",
    },
    "not-a-number": {
        "vi": "Giá trị đo phải là một số.",
        "en": "The value must be a number.",
    },
    "out-of-range": {
        "vi": "Giá trị đo nằm ngoài khoảng có thể có; vui lòng kiểm tra lại.",
        "en": "The value is outside the plausible range; please check it.",
    },
    "diastolic-not-below-systolic": {
        "vi": "Huyết áp tâm trương phải thấp hơn huyết áp tâm thu.",
        "en": "The diastolic pressure must be lower than the systolic pressure.",
    },
}


@dataclass(frozen=True, slots=True)
class UnitRule:
    """An accepted unit of a kind, its plausible range and its conversion to the canonical unit."""

    unit: str
    minimum: float
    maximum: float
    factor: float
    offset: float

    @property
    def is_canonical(self) -> bool:
        """Whether values in this unit need no conversion."""
        return self.factor == 1 and self.offset == 0


@dataclass(frozen=True, slots=True)
class ObservationKind:
    """A kind of observation: LOINC code, names, canonical UCUM unit and accepted units."""

    kind: str
    loinc: str
    display_vi: str
    display_en: str
    unit: str
    decimals: int
    units: Mapping[str, UnitRule]

    def display(self, lang: str = "vi") -> str:
        """Return the display name in ``lang`` ("vi" or "en")."""
        return self.display_en if lang == "en" else self.display_vi


@dataclass(frozen=True, slots=True)
class Measurement:
    """A validated value in the canonical unit of its kind."""

    kind: str
    value: float
    unit: str


@cache
def observation_kinds() -> Mapping[str, ObservationKind]:
    """Return every supported observation kind keyed by its code ("systolic-bp", ...)."""
    rows = load_json("observation_kinds.json")["kinds"]
    return {row["kind"]: _kind_from_row(row) for row in rows}


@cache
def unit_aliases() -> Mapping[str, str]:
    """Return the everyday spellings accepted for UCUM units ("mmHg" -> "mm[Hg]")."""
    return dict(load_json("observation_kinds.json")["unit_aliases"])


@dataclass(frozen=True, slots=True)
class ObservationPanel:
    """A kind recorded as one entry of several measurements ("blood-pressure")."""

    kind: str
    loinc: str
    display_vi: str
    display_en: str
    parts: tuple[str, ...]

    def display(self, lang: str = "vi") -> str:
        """Return the display name in ``lang`` ("vi" or "en")."""
        return self.display_en if lang == "en" else self.display_vi


@cache
def observation_panels() -> Mapping[str, ObservationPanel]:
    """Return the panel kinds ("blood-pressure") keyed by their code."""
    return {
        row["kind"]: ObservationPanel(str(row["kind"]), str(row["loinc"]), str(row["display_vi"]),
                                      str(row["display_en"]), tuple(row["parts"]))
        for row in load_json("observation_kinds.json")["panels"]
    }


def observation_display(kind: str, lang: str = "vi") -> str | None:
    """Return the name of a kind an observation entry may hold (panels too); None if unknown."""
    definition = observation_kinds().get(kind) or observation_panels().get(kind)
    return None if definition is None else definition.display(lang)


def validate_observation(kind: str, value: object, unit: str) -> list[ObservationError]:
    """Return what is wrong with ``value`` in ``unit`` for ``kind``; an empty list means valid."""
    definition = observation_kinds().get(kind)
    if definition is None:
        return [ObservationError.UNKNOWN_KIND]
    errors: list[ObservationError] = []
    rule = definition.units.get(_canonical_unit_spelling(unit))
    if rule is None:
        errors.append(ObservationError.UNIT)
    number = _as_number(value)
    if number is None:
        errors.append(ObservationError.NOT_A_NUMBER)
    elif rule is not None and not rule.minimum <= number <= rule.maximum:
        errors.append(ObservationError.OUT_OF_RANGE)
    return errors


def to_canonical(kind: str, value: object, unit: str) -> Measurement:
    """Return the value converted to the canonical unit of ``kind``; ValueError when invalid."""
    errors = validate_observation(kind, value, unit)
    if errors:
        raise ValueError(f"invalid {kind} observation: {', '.join(errors)}")
    definition = observation_kinds()[kind]
    rule = definition.units[_canonical_unit_spelling(unit)]
    number = _as_number(value)
    if number is None:  # unreachable after validation; keeps the type checker honest
        raise ValueError("not a number")
    if rule.is_canonical:
        # A value recorded in the canonical unit is kept exactly as measured.
        return Measurement(kind, number, definition.unit)
    converted = (number + rule.offset) * rule.factor
    return Measurement(kind, _round(converted, definition.decimals), definition.unit)


def validate_blood_pressure(
    *, systolic: object, diastolic: object, unit: str = "mm[Hg]"
) -> dict[str, list[ObservationError]]:
    """Validate a blood-pressure pair; errors keyed "systolic"/"diastolic" (empty dict = valid)."""
    errors = {
        "systolic": validate_observation("systolic-bp", systolic, unit),
        "diastolic": validate_observation("diastolic-bp", diastolic, unit),
    }
    if not errors["systolic"] and not errors["diastolic"]:
        systolic_number, diastolic_number = _as_number(systolic), _as_number(diastolic)
        if (
            systolic_number is not None
            and diastolic_number is not None
            and diastolic_number >= systolic_number
        ):
            errors["diastolic"].append(ObservationError.DIASTOLIC_NOT_BELOW_SYSTOLIC)
    return {field: field_errors for field, field_errors in errors.items() if field_errors}


def compute_bmi(*, weight_kg: float, height_cm: float) -> float:
    """Return the body mass index (kg/m2) rounded to one decimal."""
    if weight_kg <= 0 or height_cm <= 0:
        raise ValueError("weight and height must be positive")
    height_m = height_cm / 100
    return _round(weight_kg / (height_m * height_m), 1)


def observation_message(code: str, lang: str = "vi") -> str:
    """Return the message for an observation error code in ``lang`` (Vietnamese by default)."""
    messages = OBSERVATION_MESSAGES[code]
    return messages.get(lang, messages["vi"])


def _kind_from_row(row: Mapping[str, Any]) -> ObservationKind:
    units = {
        item["unit"]: UnitRule(
            unit=item["unit"],
            minimum=float(item["min"]),
            maximum=float(item["max"]),
            factor=float(item["factor"]),
            offset=float(item["offset"]),
        )
        for item in row["units"]
    }
    return ObservationKind(
        kind=str(row["kind"]),
        loinc=str(row["loinc"]),
        display_vi=str(row["display_vi"]),
        display_en=str(row["display_en"]),
        unit=str(row["unit"]),
        decimals=int(row["decimals"]),
        units=units,
    )


def _canonical_unit_spelling(unit: str) -> str:
    return unit_aliases().get(unit, unit)


def _as_number(value: object) -> float | None:
    # bool is an int subclass; True is not a measurement.
    if isinstance(value, bool) or not isinstance(value, Real | Decimal):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _round(value: float, decimals: int) -> float:
    # Decimal rounding: float round() turns 5.55 into 5.5 because of binary representation.
    quantum = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP))


OBSERVATION_KINDS: Mapping[str, ObservationKind] = observation_kinds()
