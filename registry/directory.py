"""The directory of practitioners and facilities: the public professional register, searchable.

A citizen finds here the practitioner to grant a consent to or to choose as family doctor; a
clinic finds a facility. Only register data leaves (names, professions, practising-certificate
numbers, which the law publishes; facility codes, kinds and units): nothing about citizens.
Inactive practitioners and facilities, and ended memberships, are not shown.

Names are matched accent-insensitively on their folded form (`search_name`, kept by
registry/services.py): "huong" finds "Hương", "Hường" and "HƯƠNG". Lists are ordered by that
folded name, then id, and paged by keyset so that a page boundary never repeats or skips a row.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from registry.models import Facility, Practitioner, PractitionerMembership
from registry.reference import admin_units
from registry.reference.text import fold

MAX_QUERY_WORDS = 8


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ends: the last row's folded name and id."""

    name: str
    id: uuid.UUID

    def as_cursor(self) -> dict[str, str]:
        """What a cursor carries (the JSON list's and the FHIR search's alike)."""
        return {"name": self.name, "id": str(self.id)}

    @classmethod
    def from_cursor(cls, data: Mapping[str, Any]) -> Position:
        """The position a decoded cursor names; KeyError or ValueError for another list's."""
        return cls(name=str(data["name"]), id=uuid.UUID(str(data["id"])))


@dataclass(frozen=True, slots=True)
class DirectoryFilter:
    """What a list is narrowed to; every field optional. Codes are current codes."""

    q: str | None = None
    commune_code: str | None = None
    province_code: str | None = None
    facility_id: uuid.UUID | None = None
    kind: str | None = None
    profession: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any] = field(default_factory=list)
    next_position: Position | None = None


def query_words(q: str | None) -> list[str]:
    """The folded words of a search text ("Nguyễn  HƯƠNG" -> ["nguyen", "huong"])."""
    return fold(q or "").split()[:MAX_QUERY_WORDS]


def _like_any(column: ColumnElement[str | None], word: str) -> ColumnElement[bool]:
    # The words are the user's: % and _ match literally, never as wildcards.
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


def _sort_name(column: ColumnElement[str | None]) -> ColumnElement[str]:
    return func.coalesce(column, "")


def _after(sort: ColumnElement[str], id_column: ColumnElement[uuid.UUID],
           position: Position | None) -> list[ColumnElement[bool]]:
    if position is None:
        return []
    return [or_(sort > position.name, and_(sort == position.name, id_column > position.id))]


def _current_membership(today: dt.date) -> list[ColumnElement[bool]]:
    return [
        PractitionerMembership.ended_on.is_(None),
        PractitionerMembership.started_on <= today,
        Facility.active.is_(True),
    ]


def current_memberships(
    session: Session, practitioner_ids: Sequence[uuid.UUID], *, today: dt.date
) -> dict[uuid.UUID, list[tuple[PractitionerMembership, Facility]]]:
    """The memberships in force today of each practitioner, at active facilities."""
    found: dict[uuid.UUID, list[tuple[PractitionerMembership, Facility]]] = {
        pid: [] for pid in practitioner_ids}
    if not practitioner_ids:
        return found
    rows = session.execute(
        select(PractitionerMembership, Facility)
        .join(Facility, Facility.id == PractitionerMembership.facility_id)
        .where(PractitionerMembership.practitioner_id.in_(list(practitioner_ids)),
               *_current_membership(today))
        .order_by(func.coalesce(Facility.search_name, ""), Facility.id)
    ).all()
    for membership, facility in rows:
        found[membership.practitioner_id].append((membership, facility))
    return found


def list_practitioners(
    session: Session, *, filters: DirectoryFilter, limit: int, after: Position | None,
    today: dt.date,
) -> Page:
    """Active practitioners matching `filters`, `limit` per page, after `after`.

    The place filters (commune, province, facility, facility kind) hold for a membership in
    force today: a practitioner is found where they work now.
    """
    sort = _sort_name(Practitioner.search_name)
    conditions: list[ColumnElement[bool]] = [Practitioner.active.is_(True)]
    conditions += [_like_any(Practitioner.search_name, w) for w in query_words(filters.q)]
    if filters.profession:
        conditions.append(Practitioner.profession == filters.profession)
    place: list[ColumnElement[bool]] = []
    if filters.facility_id is not None:
        place.append(PractitionerMembership.facility_id == filters.facility_id)
    if filters.commune_code:
        place.append(Facility.commune_code == filters.commune_code)
    if filters.province_code:
        place.append(Facility.province_code == filters.province_code)
    if filters.kind:
        place.append(Facility.kind == filters.kind)
    if place:
        conditions.append(exists(
            select(PractitionerMembership.id)
            .join(Facility, Facility.id == PractitionerMembership.facility_id)
            .where(PractitionerMembership.practitioner_id == Practitioner.id,
                   *_current_membership(today), *place)
        ))
    rows = list(session.scalars(
        select(Practitioner)
        .where(*conditions, *_after(sort, Practitioner.id, after))
        .order_by(sort, Practitioner.id)
        .limit(limit + 1)
    ))
    return _page(rows, limit, lambda p: p.search_name)


def list_facilities(
    session: Session, *, filters: DirectoryFilter, limit: int, after: Position | None,
) -> Page:
    """Active facilities matching `filters` (name words, commune, province, kind)."""
    sort = _sort_name(Facility.search_name)
    conditions: list[ColumnElement[bool]] = [Facility.active.is_(True)]
    conditions += [_like_any(Facility.search_name, w) for w in query_words(filters.q)]
    if filters.commune_code:
        conditions.append(Facility.commune_code == filters.commune_code)
    if filters.province_code:
        conditions.append(Facility.province_code == filters.province_code)
    if filters.kind:
        conditions.append(Facility.kind == filters.kind)
    rows = list(session.scalars(
        select(Facility)
        .where(*conditions, *_after(sort, Facility.id, after))
        .order_by(sort, Facility.id)
        .limit(limit + 1)
    ))
    return _page(rows, limit, lambda f: f.search_name)


def _page(rows: list[Any], limit: int, name_of: Callable[[Any], str | None]) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    position = None
    if more and rows:
        last = rows[-1]
        position = Position(name=name_of(last) or "", id=last.id)
    return Page(items=rows, next_position=position)


def get_practitioner(session: Session, practitioner_id: uuid.UUID) -> Practitioner | None:
    """An active practitioner of the register, else None."""
    practitioner = session.get(Practitioner, practitioner_id)
    return practitioner if practitioner is not None and practitioner.active else None


def get_facility(session: Session, facility_id: uuid.UUID) -> Facility | None:
    """An active facility of the register, else None."""
    facility = session.get(Facility, facility_id)
    return facility if facility is not None and facility.active else None


def facility_view(facility: Facility) -> dict[str, object]:
    """A facility as the directory shows it: register data and its current units' names."""
    province = admin_units.province(facility.province_code)
    commune = admin_units.commune(facility.commune_code) if facility.commune_code else None
    return {
        "id": str(facility.id),
        "code": facility.code,
        "kind": facility.kind,
        "name": facility.name,
        "province_code": facility.province_code,
        "province_name": province.name if province is not None else None,
        "commune_code": facility.commune_code,
        "commune_name": commune.name if commune is not None else None,
    }


def practitioner_view(
    practitioner: Practitioner, memberships: Sequence[tuple[PractitionerMembership, Facility]]
) -> dict[str, object]:
    """A practitioner as the directory shows it: the register entry and where they work now."""
    return {
        "id": str(practitioner.id),
        "full_name": practitioner.full_name,
        "profession": practitioner.profession,
        "practising_certificate": practitioner.practising_certificate,
        "memberships": [
            {"title": membership.title, "facility": facility_view(facility)}
            for membership, facility in memberships
        ],
    }
