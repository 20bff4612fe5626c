"""Viet Nam's administrative units as they stand since 1 July 2025: provinces and communes.

Since that date local government has two levels (34 provinces and centrally-run cities; 3,321
communes, wards and special zones); districts are gone. The current units come from the
maintained `vietnam-provinces` package. Codes written before the reform are read through the
conversion table in ``data/admin_units_2025.json`` (its sources are cited there): every old
province became exactly one current province, and most old communes exactly one current commune;
an old commune split between several current ones cannot say where an address lies, so it is
refused with the candidates rather than guessed.

The 3-digit province code of the health ID is another thing (the province of birth
registration, old codes kept for life): see ``registry/reference/health_id.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from vietnam_provinces import Province as _PackageProvince
from vietnam_provinces import VietNamDivisionType, Ward

from registry.reference._data import load_json
from registry.reference.text import fold

CONVERSION_FILE = "admin_units_2025.json"
REFORM_DATE = "2025-07-01"

_COMMUNE_KINDS = {
    VietNamDivisionType.XA: "commune",
    VietNamDivisionType.PHUONG: "ward",
    VietNamDivisionType.DAC_KHU: "special-zone",
}


@dataclass(frozen=True, slots=True)
class Province:
    """A current province or centrally-run city; `code` has 2 digits ("24" is Bắc Ninh)."""

    code: str
    name: str
    folded: str


@dataclass(frozen=True, slots=True)
class Commune:
    """A current commune, ward or special zone; `code` has 5 digits."""

    code: str
    name: str
    folded: str
    province_code: str
    kind: str


@dataclass(frozen=True, slots=True)
class CommuneResolution:
    """What a commune code given by a client denotes today.

    `status`: "current" (a current code), "mapped" (an old code whose unit became `commune`),
    "split" (an old unit divided between `candidates`: the current code is needed), "unknown".
    """

    status: str
    commune: Commune | None = None
    candidates: tuple[Commune, ...] = ()


@cache
def provinces() -> Mapping[str, Province]:
    """The 34 current provinces by 2-digit code."""
    items = {}
    for item in _PackageProvince.iter_all():
        code = f"{int(item.code):02d}"
        items[code] = Province(code=code, name=item.name, folded=fold(item.name))
    return MappingProxyType(items)


@cache
def communes() -> Mapping[str, Commune]:
    """The current communes, wards and special zones by 5-digit code."""
    items = {}
    for item in Ward.iter_all():
        code = f"{int(item.code):05d}"
        items[code] = Commune(
            code=code, name=item.name, folded=fold(item.name),
            province_code=f"{int(item.province_code):02d}",
            kind=_COMMUNE_KINDS.get(item.division_type, "commune"),
        )
    return MappingProxyType(items)


@cache
def _conversion() -> tuple[Mapping[str, str], Mapping[str, str | tuple[str, ...]]]:
    document = load_json(CONVERSION_FILE)
    old_communes = {
        code: target if isinstance(target, str) else tuple(target)
        for code, target in document["communes"].items()
    }
    return MappingProxyType(dict(document["provinces"])), MappingProxyType(old_communes)


def conversion_source() -> str:
    """Where the old -> current table comes from (for documentation and problem texts)."""
    return str(load_json(CONVERSION_FILE)["source"])


def province(code: str) -> Province | None:
    """The current province of a current 2-digit code (no old codes), else None."""
    return provinces().get(code)


def commune(code: str) -> Commune | None:
    """The current commune of a current 5-digit code (no old codes), else None."""
    return communes().get(code)


def current_province(code: str) -> Province | None:
    """The current province a 2-digit code denotes: a current code, or an old one (every old
    province merged whole into one current province, Resolution 202/2025/QH15)."""
    found = provinces().get(code)
    if found is not None:
        return found
    old_provinces, _ = _conversion()
    target = old_provinces.get(code)
    return provinces().get(target) if target is not None else None


def resolve_commune(code: str, *, legacy: bool = False) -> CommuneResolution:
    """What a 5-digit commune code denotes today.

    Most current codes were old codes of one of the units merged into them, so a code alone
    does not say which scheme it was written in: it is read as current unless `legacy` says the
    address was written in the three-level units (it came with a district), and an old code is
    read through the conversion table only when it is not a current code, or under `legacy`.
    """
    current = communes().get(code)
    if current is not None and not legacy:
        return CommuneResolution("current", current)
    _, old_communes = _conversion()
    target = old_communes.get(code)
    if isinstance(target, str):
        mapped = communes().get(target)
        if mapped is not None:
            return CommuneResolution("current" if target == code else "mapped", mapped)
    elif target is not None:
        candidates = tuple(c for c in (communes().get(t) for t in target) if c is not None)
        return CommuneResolution("split", candidates=candidates)
    return CommuneResolution("unknown")


def current_commune(code: str, *, legacy: bool = False) -> Commune | None:
    """The current commune a 5-digit code denotes (current, or an old code mapped without
    ambiguity), else None; see :func:`resolve_commune`."""
    return resolve_commune(code, legacy=legacy).commune


class AdminUnitError(ValueError):
    """An address's codes do not name current units: `field` ("province_code" or
    "commune_code"), `reason` ("unknown", "split", "province-mismatch"), `candidates` (split)."""

    def __init__(self, field: str, reason: str, candidates: tuple[Commune, ...] = ()) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.candidates = candidates


def current_codes(
    *, province_code: str | None, commune_code: str | None, legacy: bool = False
) -> tuple[str, str | None]:
    """(province, commune) in current codes, or AdminUnitError.

    The province may be omitted when a commune is given (the commune implies it); an old
    province code is accepted and mapped; a province that is not the commune's is refused, since
    one of the two is wrong and nothing says which.
    """
    found_commune: Commune | None = None
    if commune_code:
        resolution = resolve_commune(commune_code, legacy=legacy)
        if resolution.commune is None:
            raise AdminUnitError("commune_code", resolution.status, resolution.candidates)
        found_commune = resolution.commune
    if province_code:
        found_province = current_province(province_code)
        if found_province is None:
            raise AdminUnitError("province_code", "unknown")
    elif found_commune is not None:
        found_province = provinces()[found_commune.province_code]
    else:
        raise AdminUnitError("province_code", "unknown")
    if found_commune is not None and found_commune.province_code != found_province.code:
        raise AdminUnitError("province_code", "province-mismatch")
    return found_province.code, found_commune.code if found_commune is not None else None
