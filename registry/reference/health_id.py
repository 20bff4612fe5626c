"""The 12-digit personal identification number (số định danh cá nhân) and the 10-digit BHXH code.

Structure of the personal identification number (Circular 07/2016/TT-BCA, article 7, amended by
Circular 59/2021/TT-BCA): digits 1-3 the province code of birth registration, digit 4 the
century and sex code, digits 5-6 the last two digits of the year of birth, digits 7-12 random.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache

from registry.reference._data import load_json

HEALTH_ID_LENGTH = 12
SOCIAL_INSURANCE_CODE_LENGTH = 10
# Digit 4: 0/1 = 1900s male/female, 2/3 = 2000s, 4/5 = 2100s, 6/7 = 2200s, 8/9 = 2300s.
FIRST_ENCODED_YEAR = 1900
LAST_ENCODED_YEAR = 2399
SERIAL_MAX = 999_999

_ASCII_DIGITS = frozenset("0123456789")
_ENCODED_SEXES = ("male", "female")
_SEXES_WITHOUT_CHECK = ("other", "unknown")


class HealthIdError(StrEnum):
    """Machine codes of a personal identification number that fails validation."""

    LENGTH = "length"
    NON_DIGIT = "non-digit"
    PROVINCE = "province"
    CENTURY_SEX = "century-sex"
    BIRTH_YEAR = "birth-year"
    SEX_MISMATCH = "sex-mismatch"
    FUTURE_BIRTH_YEAR = "future-birth-year"


class SocialInsuranceCodeError(StrEnum):
    """Machine codes of a social-insurance code (mã số BHXH) that fails validation."""

    LENGTH = "length"
    NON_DIGIT = "non-digit"


HEALTH_ID_MESSAGES: Mapping[str, Mapping[str, str]] = {
    "length": {
        "vi": "Số định danh cá nhân phải gồm đúng 12 chữ số.",
        "en": "The personal identification number must have exactly 12 digits.",
    },
    "non-digit": {
        "vi": "Số định danh cá nhân chỉ được chứa chữ số (0-9).",
        "en": "The personal identification number may contain only digits (0-9).",
    },
    "province": {
        "vi": "Ba chữ số đầu không phải là mã tỉnh, thành phố nơi đăng ký khai sinh.",
        "en": "The first three digits are not a province code of birth registration.",
    },
    "century-sex": {
        "vi": "Chữ số thứ tư (mã thế kỷ và giới tính) không khớp với thế kỷ của năm sinh.",
        "en": "The fourth digit (century and sex code) does not match the century of birth.",
    },
    "birth-year": {
        "vi": "Chữ số thứ năm và thứ sáu không khớp với hai số cuối của năm sinh.",
        "en": "The fifth and sixth digits do not match the last two digits of the year of birth.",
    },
    "sex-mismatch": {
        "vi": "Chữ số thứ tư (mã thế kỷ và giới tính) không khớp với giới tính.",
        "en": "The fourth digit (century and sex code) does not match the sex.",
    },
    "future-birth-year": {
        "vi": "Năm sinh thể hiện trong số định danh cá nhân nằm ở tương lai.",
        "en": "The year of birth encoded in the number is in the future.",
    },
}

SOCIAL_INSURANCE_MESSAGES: Mapping[str, Mapping[str, str]] = {
    "length": {
        "vi": "Mã số bảo hiểm xã hội phải gồm đúng 10 chữ số.",
        "en": "The social-insurance code must have exactly 10 digits.",
    },
    "non-digit": {
        "vi": "Mã số bảo hiểm xã hội chỉ được chứa chữ số (0-9).",
        "en": "The social-insurance code may contain only digits (0-9).",
    },
}


@dataclass(frozen=True, slots=True)
class Province:
    """A province-level code of birth registration (digits 1-3 of the number)."""

    code: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class HealthIdParts:
    """What a well-formed personal identification number encodes."""

    province_code: str
    sex: str
    birth_year: int
    serial: str


@cache
def province_codes() -> Mapping[str, Province]:
    """Return the 63 province codes of birth registration, keyed by 3-digit code."""
    rows = load_json("province_codes.json")["codes"]
    return {row["code"]: Province(row["code"], row["name"], row["kind"]) for row in rows}


def normalize_health_id(value: str) -> str:
    """Return ``value`` without the spaces people type between digit groups."""
    return "".join(value.split())


def parse_health_id(value: str) -> HealthIdParts | None:
    """Decode a 12-digit number (None when it is not 12 ASCII digits); does not validate it."""
    if len(value) != HEALTH_ID_LENGTH or _has_non_digit(value):
        return None
    century_sex = int(value[3])
    return HealthIdParts(
        province_code=value[:3],
        sex=_ENCODED_SEXES[century_sex % 2],
        birth_year=FIRST_ENCODED_YEAR + (century_sex // 2) * 100 + int(value[4:6]),
        serial=value[6:],
    )


def validate_health_id(
    value: str,
    *,
    date_of_birth: date | None,
    sex: str | None,
    today: date | None = None,
) -> list[HealthIdError]:
    """Return what is wrong with a personal identification number; an empty list means valid."""
    # No date of birth: century and year are unchecked. Sex "other", "unknown" or None: the
    # parity is unchecked (the century still is). ``today`` enables the future-year check.
    _check_sex_argument(sex)
    shape_errors: list[HealthIdError] = []
    if len(value) != HEALTH_ID_LENGTH:
        shape_errors.append(HealthIdError.LENGTH)
    if _has_non_digit(value):
        shape_errors.append(HealthIdError.NON_DIGIT)
    parts = parse_health_id(value)
    if parts is None:
        # Positional checks would only repeat the same mistake in other words.
        return shape_errors

    errors: list[HealthIdError] = []
    if parts.province_code not in province_codes():
        errors.append(HealthIdError.PROVINCE)
    if date_of_birth is not None:
        if date_of_birth.year // 100 != parts.birth_year // 100:
            errors.append(HealthIdError.CENTURY_SEX)
        if date_of_birth.year % 100 != parts.birth_year % 100:
            errors.append(HealthIdError.BIRTH_YEAR)
    if sex in _ENCODED_SEXES and sex != parts.sex:
        errors.append(HealthIdError.SEX_MISMATCH)
    if today is not None and parts.birth_year > today.year:
        errors.append(HealthIdError.FUTURE_BIRTH_YEAR)
    return errors


def make_health_id(*, province_code: str, date_of_birth: date, sex: str, serial: int) -> str:
    """Build a valid personal identification number (demo data and tests)."""
    if province_code not in province_codes():
        raise ValueError(f"unknown province code {province_code!r}")
    if sex not in _ENCODED_SEXES:
        raise ValueError("the number encodes only sex 'male' or 'female'")
    if not FIRST_ENCODED_YEAR <= date_of_birth.year <= LAST_ENCODED_YEAR:
        raise ValueError(f"year of birth outside {FIRST_ENCODED_YEAR}-{LAST_ENCODED_YEAR}")
    if not 0 <= serial <= SERIAL_MAX:
        raise ValueError(f"serial must be between 0 and {SERIAL_MAX}")
    century_index = (date_of_birth.year - FIRST_ENCODED_YEAR) // 100
    century_sex = century_index * 2 + _ENCODED_SEXES.index(sex)
    return f"{province_code}{century_sex}{date_of_birth.year % 100:02d}{serial:06d}"


def validate_social_insurance_code(value: str) -> list[SocialInsuranceCodeError]:
    """Return what is wrong with a legacy social-insurance code (mã số BHXH, 10 digits)."""
    errors: list[SocialInsuranceCodeError] = []
    if len(value) != SOCIAL_INSURANCE_CODE_LENGTH:
        errors.append(SocialInsuranceCodeError.LENGTH)
    if _has_non_digit(value):
        errors.append(SocialInsuranceCodeError.NON_DIGIT)
    return errors


def health_id_message(code: str, lang: str = "vi") -> str:
    """Return the message for a health-ID error code in ``lang`` (Vietnamese by default)."""
    messages = HEALTH_ID_MESSAGES[code]
    return messages.get(lang, messages["vi"])


def social_insurance_message(code: str, lang: str = "vi") -> str:
    """Return the message for a social-insurance-code error in ``lang`` (Vietnamese by default)."""
    messages = SOCIAL_INSURANCE_MESSAGES[code]
    return messages.get(lang, messages["vi"])


def _has_non_digit(value: str) -> bool:
    # str.isdigit() also accepts other scripts' digits and superscripts, which are not IDs.
    return any(ch not in _ASCII_DIGITS for ch in value)


def _check_sex_argument(sex: str | None) -> None:
    if sex is not None and sex not in _ENCODED_SEXES + _SEXES_WITHOUT_CHECK:
        raise ValueError(f"sex must be male, female, other, unknown or None, not {sex!r}")
