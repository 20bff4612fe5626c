"""The health station a child is brought to for vaccination, named in the reminder SMS.

The commune health station of the child: the facility that registered the child when it is a
commune station (the newborn's own station), else the commune station of the commune in the
child's (encrypted) address, else whatever facility registered the child. A facility's name is
public; the address is decrypted in memory only and never leaves this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.encryption import ERASED
from core.vault.errors import VaultError
from registry.models import Citizen, Facility

COMMUNE_STATION = "commune-health-station"


def _province(code: Any) -> str | None:
    # Addresses say "27", health IDs and facilities may say "027".
    text = str(code).strip().lstrip("0") if code else ""
    return text or None


def _commune_of(citizen: Citizen) -> tuple[str | None, str] | None:
    try:
        address = citizen.address
    except VaultError:
        return None
    if address is ERASED or not isinstance(address, dict) or not address.get("commune_code"):
        return None
    return _province(address.get("province_code")), str(address["commune_code"])


def stations_of(session: Session, children: Iterable[Citizen]) -> dict[uuid.UUID, uuid.UUID]:
    """{child id: facility id} for the children a station is known for (keys preloaded)."""
    people = list(children)
    registered = {c.id: c.registered_by_facility_id for c in people
                  if c.registered_by_facility_id is not None}
    facilities = {f.id: f for f in session.scalars(
        select(Facility).where(Facility.id.in_(set(registered.values()))))} if registered else {}
    answer: dict[uuid.UUID, uuid.UUID] = {}
    communes: dict[uuid.UUID, tuple[str | None, str]] = {}
    for child in people:
        facility = facilities.get(registered.get(child.id))  # type: ignore[arg-type]
        if facility is not None and facility.kind == COMMUNE_STATION and facility.active:
            answer[child.id] = facility.id
            continue
        commune = _commune_of(child)
        if commune is not None:
            communes[child.id] = commune
        elif facility is not None:
            answer[child.id] = facility.id
    if communes:
        stations = session.execute(
            select(Facility.id, Facility.province_code, Facility.commune_code).where(
                Facility.kind == COMMUNE_STATION, Facility.active.is_(True),
                Facility.commune_code.in_({code for _, code in communes.values()}))
            .order_by(Facility.code)
        ).all()
        for child_id, (province, code) in communes.items():
            found = next((s.id for s in stations if s.commune_code == code
                          and province in (None, _province(s.province_code))), None)
            fallback = registered.get(child_id)
            if found is not None or fallback is not None:
                answer[child_id] = found or fallback  # type: ignore[assignment]
    return answer


def facility_names(session: Session, facility_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Public names of these facilities."""
    ids = set(facility_ids)
    if not ids:
        return {}
    rows = session.execute(select(Facility.id, Facility.name).where(Facility.id.in_(ids)))
    return {row.id: row.name for row in rows}
