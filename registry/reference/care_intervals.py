"""How long a chronic condition may go without its follow-up measurement (data, with sources).

The family doctor's panel flags a registered person whose active condition (hypertension,
diabetes...) has had no qualifying measurement within the rule's interval. The rules are data
(`data/care_intervals.json`) like the EPI schedule: each carries its source and confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from registry.reference._data import load_json
from registry.reference.durations import Duration

CARE_INTERVALS_FILE = "care_intervals.json"


@dataclass(frozen=True, slots=True)
class CareInterval:
    """One follow-up rule: conditions it applies to, measurements that satisfy it, interval."""

    id: str
    icd10_categories: frozenset[str]
    observation_kinds: frozenset[str]
    interval: Duration
    condition_name_vi: str
    condition_name_en: str
    measurement_name_vi: str
    measurement_name_en: str
    confidence: str
    source: str

    def applies_to(self, icd10_code: str) -> bool:
        """Whether a diagnosis code ("I10", "E11.9") falls in the rule's categories."""
        return icd10_code.strip().upper()[:3] in self.icd10_categories

    def condition_name(self, lang: str = "vi") -> str:
        return self.condition_name_en if lang == "en" else self.condition_name_vi

    def measurement_name(self, lang: str = "vi") -> str:
        return self.measurement_name_en if lang == "en" else self.measurement_name_vi


@cache
def care_intervals() -> tuple[CareInterval, ...]:
    """Every follow-up rule of the data file, checked."""
    document = load_json(CARE_INTERVALS_FILE)
    levels = document["confidence_levels"]
    rules = []
    for row in document["rules"]:
        if row["confidence"] not in levels:
            raise ValueError(f"{row['id']}: unknown confidence {row['confidence']!r}")
        if not row.get("source"):
            raise ValueError(f"{row['id']}: a rule needs its source")
        rules.append(CareInterval(
            id=row["id"], icd10_categories=frozenset(row["icd10_categories"]),
            observation_kinds=frozenset(row["observation_kinds"]),
            interval=Duration.parse(row["interval"]),
            condition_name_vi=row["condition_name_vi"], condition_name_en=row["condition_name_en"],
            measurement_name_vi=row["measurement_name_vi"],
            measurement_name_en=row["measurement_name_en"],
            confidence=row["confidence"], source=row["source"],
        ))
    return tuple(rules)


def care_intervals_source() -> dict[str, str]:
    """The version of the rules, for views that cite them."""
    document = load_json(CARE_INTERVALS_FILE)
    return {"version": document["version"]}
