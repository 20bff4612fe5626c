"""Names beside codes: what a person reads next to "BCG", "E11.9" or "heart-rate".

Pure lookups in the reference lists, so every route that renders an entry (lists, single reads,
versions, summary, export, batch results) names the same codes the same way. A code the lists
do not know (a legacy value, a code retired from the catalogue) simply gets no name: the stored
code still shows, and reading a record never fails because a list changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.reference.icd10 import lookup_icd10
from registry.reference.observations import observation_display
from registry.reference.vaccines import get_vaccine

LANGUAGES = ("vi", "en")

# The code lists a content field may draw from.
ICD10 = "icd10"
VACCINE = "vaccine"
OBSERVATION_KIND = "observation-kind"

# Which content fields of which section hold a code, and from which list. A test checks this
# against the validators of ehr/section_schemas.py, so a new coded field cannot be forgotten.
CODED_FIELDS: Mapping[str, Mapping[str, str]] = {
    "conditions": {"icd10_code": ICD10},
    "family-history": {"icd10_code": ICD10},
    "medications": {"reason_code": ICD10},
    "encounters": {"diagnosis_codes": ICD10},
    "examinations": {"diagnosis_codes": ICD10},
    "immunizations": {"vaccine_code": VACCINE},
    "observations": {"kind": OBSERVATION_KIND},
}

# A coded field's name means the same list in every section that has it (the test checks this
# too), so content whose section is not at hand (an earlier version) is named by field alone.
_ANY_SECTION: Mapping[str, str] = {
    name: system for fields in CODED_FIELDS.values() for name, system in fields.items()
}

Named = tuple[str, str]  # (name, language of the name)


@dataclass(frozen=True, slots=True)
class DisplayNames:
    """Names of the coded fields of one entry, and the language each name is written in.

    Both map a content field to a string, or, for a list of codes, to a list aligned with it
    (None where a code has no name). A field whose codes have no name at all is left out.
    """

    names: dict[str, Any] = field(default_factory=dict)
    languages: dict[str, Any] = field(default_factory=dict)


def display_names(section: str | None, content: Mapping[str, Any] | None,
                  lang: str = "vi") -> DisplayNames:
    """Return the names of the codes ``content`` of ``section`` holds, in ``lang`` ("vi"/"en").

    With ``section`` None the coded fields are recognised by name alone. Names fall back to
    English where no Vietnamese name exists (most ICD-10 codes); ``languages`` says so. An
    unknown ``lang`` is treated as Vietnamese, the default.
    """
    lang = lang if lang in LANGUAGES else "vi"
    result = DisplayNames()
    if not content:
        return result
    coded = _ANY_SECTION if section is None else CODED_FIELDS.get(section, {})
    for name, system in coded.items():
        value = content.get(name)
        namer = _NAMERS[system]
        if isinstance(value, list):
            named = [namer(item, lang) if isinstance(item, str) else None for item in value]
            if any(item is not None for item in named):
                result.names[name] = [item[0] if item else None for item in named]
                result.languages[name] = [item[1] if item else None for item in named]
        elif isinstance(value, str):
            found = namer(value, lang)
            if found is not None:
                result.names[name], result.languages[name] = found
    return result


def _icd10_name(code: str, lang: str) -> Named | None:
    entry = lookup_icd10(code)
    return None if entry is None else (entry.title(lang), entry.title_language(lang))


def _vaccine_name(code: str, lang: str) -> Named | None:
    vaccine = get_vaccine(code)
    return None if vaccine is None else (vaccine.name(lang), lang)


def _observation_kind_name(kind: str, lang: str) -> Named | None:
    name = observation_display(kind, lang)
    return None if name is None else (name, lang)


_NAMERS: Mapping[str, Callable[[str, str], Named | None]] = {
    ICD10: _icd10_name,
    VACCINE: _vaccine_name,
    OBSERVATION_KIND: _observation_kind_name,
}
