"""The vaccine catalogue: generic vaccine codes, their antigens, route and programme membership."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from registry.reference._data import load_json
from registry.reference.durations import Duration


@dataclass(frozen=True, slots=True)
class Antigen:
    """What a vaccine protects against ("measles", "hepb", ...), with names for people."""

    code: str
    name_vi: str
    name_en: str

    def name(self, lang: str = "vi") -> str:
        """Return the name in ``lang`` ("vi" or "en")."""
        return self.name_en if lang == "en" else self.name_vi


@dataclass(frozen=True, slots=True)
class Vaccine:
    """A catalogue entry; ``series_doses``/``max_age`` only where the product fixes them."""

    code: str
    name_vi: str
    name_en: str
    antigens: tuple[str, ...]
    route: str
    is_epi: bool
    combination: bool
    examples: tuple[str, ...] = ()
    series_doses: int | None = None
    max_age: Duration | None = None

    def name(self, lang: str = "vi") -> str:
        """Return the name in ``lang`` ("vi" or "en")."""
        return self.name_en if lang == "en" else self.name_vi


@cache
def antigens() -> Mapping[str, Antigen]:
    """Return every antigen code of the catalogue with its names."""
    rows = load_json("vaccines.json")["antigens"]
    return {row["code"]: Antigen(row["code"], row["name_vi"], row["name_en"]) for row in rows}


@cache
def vaccine_catalogue() -> Mapping[str, Vaccine]:
    """Return the catalogue keyed by vaccine code, in the order of the data file."""
    known_antigens = antigens()
    catalogue: dict[str, Vaccine] = {}
    for row in load_json("vaccines.json")["vaccines"]:
        vaccine = _vaccine_from_row(row)
        unknown = set(vaccine.antigens) - known_antigens.keys()
        if unknown:
            raise ValueError(f"vaccine {vaccine.code} names unknown antigens {sorted(unknown)}")
        catalogue[vaccine.code] = vaccine
    return catalogue


@lru_cache(maxsize=1024)
def get_vaccine(code: str) -> Vaccine | None:
    """Return the catalogue entry for ``code`` (case-insensitive), or None."""
    # Cached: a commune's worklist asks millions of times for a few dozen codes.
    return vaccine_catalogue().get(code.strip().upper())


def vaccines_containing(antigen: str) -> list[Vaccine]:
    """Return the vaccines that protect against ``antigen``."""
    return [vaccine for vaccine in vaccine_catalogue().values() if antigen in vaccine.antigens]


def vaccine_catalogue_source() -> Mapping[str, str]:
    """Return where the catalogue comes from (``source``, ``version``, ``note``)."""
    document = load_json("vaccines.json")
    return {key: document[key] for key in ("source", "version", "note")}


def _vaccine_from_row(row: Mapping[str, Any]) -> Vaccine:
    max_age = row.get("max_age")
    return Vaccine(
        code=row["code"],
        name_vi=row["name_vi"],
        name_en=row["name_en"],
        antigens=tuple(row["antigens"]),
        route=row["route"],
        is_epi=bool(row["is_epi"]),
        combination=bool(row["combination"]),
        examples=tuple(row.get("examples", ())),
        series_doses=row.get("series_doses"),
        max_age=Duration.parse(max_age) if max_age else None,
    )
