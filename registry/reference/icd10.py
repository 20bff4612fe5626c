"""The shipped ICD-10 subset: lookup, default sensitivity labels and accent-insensitive search."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from registry.reference._data import load_json
from registry.reference.text import fold

SENSITIVITY_LABELS = (
    "normal",
    "mental-health",
    "hiv-sti",
    "reproductive",
    "substance-use",
    "genetic",
)
LANGUAGES = ("vi", "en")

_CODE = re.compile(r"^[A-Z]\d{2}(?:\d{1,2})?$")
_CODE_PREFIX = re.compile(r"^[A-Z]\d{0,4}$")

# First match wins: HIV in pregnancy (O98.7) is labelled hiv-sti, the narrower category.
# Each rule is (label, ranges of 3-character categories, exact codes with their subdivisions).
_SENSITIVITY_RULES: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]], ...] = (
    (
        "hiv-sti",
        (("B20", "B24"), ("A50", "A64"), ("Z21", "Z21"), ("R75", "R75")),
        # HIV screening, exposure and counselling, HIV disease complicating pregnancy.
        ("Z11.4", "Z20.6", "Z71.7", "O98.7"),
    ),
    (
        "substance-use",
        (("F10", "F19"),),
        # Alcohol and drug counselling, drug use.
        ("Z71.4", "Z71.5", "Z72.2"),
    ),
    (
        "mental-health",
        # X60-X84 is intentional self-harm.
        (("F00", "F99"), ("X60", "X84")),
        # Suicidal ideation sits in R45.8; personal history of self-harm.
        ("R45.8", "Z91.5"),
    ),
    (
        "genetic",
        # Chromosomal abnormalities, genetic carrier and genetic susceptibility.
        (("Q90", "Q99"), ("Z14", "Z15")),
        (),
    ),
    (
        "reproductive",
        # Pregnancy, childbirth and the puerperium; contraception, procreation, pregnancy care;
        # male and female infertility and recurrent pregnancy loss.
        (("O00", "O99"), ("Z30", "Z39"), ("N46", "N46"), ("N96", "N97")),
        (),
    ),
)


@dataclass(frozen=True, slots=True)
class Icd10Code:
    """One ICD-10 code of the shipped list with its titles and default sensitivity label."""

    code: str
    title_vi: str
    title_en: str
    sensitivity: str

    def title(self, lang: str = "vi") -> str:
        """Return the title in ``lang`` ("vi" or "en")."""
        return self.title_en if lang == "en" else self.title_vi


def normalize_icd10_code(code: str) -> str | None:
    """Return the dotted upper-case form ("e119" -> "E11.9"), or None when malformed."""
    text = code.strip().upper()
    if "." in text and text.index(".") != 3:
        return None
    compact = text.replace(".", "", 1)
    if not _CODE.match(compact):
        return None
    return compact if len(compact) == 3 else f"{compact[:3]}.{compact[3:]}"


@cache
def icd10_codes() -> Mapping[str, Icd10Code]:
    """Return the shipped codes keyed by dotted code."""
    rows = load_json("icd10.json")["codes"]
    return {
        row["code"]: Icd10Code(row["code"], row["vi"], row["en"], row["sensitivity"])
        for row in rows
    }


def icd10_source() -> Mapping[str, str]:
    """Return where the shipped list comes from (``source``, ``version``, ``note``)."""
    document = load_json("icd10.json")
    return {key: document[key] for key in ("source", "version", "note")}


def lookup_icd10(code: str) -> Icd10Code | None:
    """Find a code of the shipped list, accepting any case and an optional dot."""
    normalized = normalize_icd10_code(code)
    return None if normalized is None else icd10_codes().get(normalized)


def default_sensitivity(code: str) -> str:
    """Return the default sensitivity label of any well-formed ICD-10 code, listed or not."""
    normalized = normalize_icd10_code(code)
    if normalized is None:
        raise ValueError(f"not an ICD-10 code: {code!r}")
    category = normalized[:3]
    for label, ranges, exact_codes in _SENSITIVITY_RULES:
        if any(first <= category <= last for first, last in ranges):
            return label
        if any(normalized.startswith(exact) for exact in exact_codes):
            return label
    return "normal"


def search_icd10(text: str, lang: str = "vi", *, limit: int = 20) -> list[Icd10Code]:
    """Find codes by code prefix or by words of the title, ignoring case and accents."""
    # Every word must occur in the title. Order: code-prefix matches, titles holding the words
    # as one phrase, then the rest; by code within each group.
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, not {lang!r}")
    phrase = fold(text)
    words = phrase.split()
    if not words or limit <= 0:
        return []
    code_prefix = text.strip().upper().replace(".", "", 1)
    searching_code = bool(_CODE_PREFIX.match(code_prefix))
    by_code: list[Icd10Code] = []
    by_phrase: list[Icd10Code] = []
    by_words: list[Icd10Code] = []
    for entry, compact_code, folded_title in _search_index(lang):
        if searching_code and compact_code.startswith(code_prefix):
            by_code.append(entry)
        elif phrase in folded_title:
            by_phrase.append(entry)
        elif all(word in folded_title for word in words):
            by_words.append(entry)
    return (by_code + by_phrase + by_words)[:limit]


@cache
def _search_index(lang: str) -> tuple[tuple[Icd10Code, str, str], ...]:
    entries = sorted(icd10_codes().values(), key=lambda entry: entry.code)
    return tuple((entry, entry.code.replace(".", ""), fold(entry.title(lang))) for entry in entries)
