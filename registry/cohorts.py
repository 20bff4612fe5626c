"""The commune/birth-year cohort of a citizen, as a blind index (`citizens.cohort_bidx`).

A commune station lists the children of its commune (the vaccination worklist) without
decrypting everyone: the index is an HMAC of `"{commune_code}|{birth_year}"`, so the station
asks for the few values its commune and the schedule's birth years give and decrypts only the
rows that match. Like every blind index it supports exact lookup only, and it reveals nothing
without the blind-index key.

The listeners below keep it whenever a citizen is written through the ORM; rows written before
(or by statements that bypass the ORM) are filled by `flask registry reindex-cohorts`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, event, inspect, select, update
from sqlalchemy.orm import Session

from core.encryption import compute_blind_index, drop_keyring, keyring
from core.vault.errors import VaultError
from registry.models import Citizen

COHORT_FIELD = "citizen.cohort"
# The columns a cohort is computed from: a write touching neither keeps the index as it is.
_SOURCE_COLUMNS = ("address_ct", "date_of_birth_ct")


def commune_of(address: Any) -> str | None:
    """The (current) commune code of an address, or None when it names none."""
    if not isinstance(address, dict):
        return None
    commune = address.get("commune_code")
    if not isinstance(commune, str) or not commune.strip():
        return None
    return commune.strip()


def cohort_index(commune_code: str, birth_year: int) -> bytes:
    """The blind index of one cohort: the people of `commune_code` born in `birth_year`."""
    return compute_blind_index(COHORT_FIELD, f"{commune_code.strip()}|{int(birth_year)}")


def cohort_indexes(commune_code: str, birth_years: Iterable[int]) -> list[bytes]:
    """The indexes of a commune's cohorts for several birth years (a worklist's query)."""
    return [cohort_index(commune_code, year) for year in sorted(set(birth_years))]


def cohort_of(citizen: Citizen) -> bytes | None:
    """The citizen's cohort index from their decrypted address and birth date; None without a
    commune or a birth date (an erased citizen reads as neither)."""
    commune = commune_of(citizen.address)
    born = citizen.date_of_birth
    if commune is None or not isinstance(born, dt.date):
        return None
    return cohort_index(commune, born.year)


@event.listens_for(Citizen, "before_insert")
def _index_new_citizen(mapper: Any, connection: Any, target: Citizen) -> None:
    target.cohort_bidx = cohort_of(target)


@event.listens_for(Citizen, "before_update")
def _reindex_changed_citizen(mapper: Any, connection: Any, target: Citizen) -> None:
    # Only a new address or birth date moves a person to another cohort; other writes (a new
    # phone) must not cost a decryption of both fields.
    state = inspect(target)
    if any(state.attrs[name].history.has_changes() for name in _SOURCE_COLUMNS):
        target.cohort_bidx = cohort_of(target)


# --- filling rows written before --------------------------------------------------------------


@dataclass
class ReindexCounts:
    checked: int = 0
    indexed: int = 0
    without_commune: int = 0
    changed: int = 0
    failed: int = 0
    last_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "indexed": self.indexed,
                "without_commune": self.without_commune, "changed": self.changed,
                "failed": self.failed, "last_id": self.last_id}


_SET_COHORT = (
    update(Citizen.__table__)
    .where(Citizen.__table__.c.id == bindparam("row_id"))
    .values(cohort_bidx=bindparam("cohort"))
)


def reindex_cohorts(
    session: Session,
    *,
    batch_size: int = 500,
    after: uuid.UUID | None = None,
    only_missing: bool = True,
) -> ReindexCounts:
    """Compute the cohort index of citizens in id order, committing every `batch_size` rows.

    Resumable: by default only rows without an index are visited (an interrupted run starts
    again where it stopped, people without a commune are merely checked again), and `after`
    skips the ids before it. `only_missing=False` recomputes every row (after the blind-index
    key changed). A row that fails to decrypt is counted and left as it is.
    """
    counts = ReindexCounts()
    cursor = after
    while True:
        query = select(Citizen).order_by(Citizen.id).limit(batch_size)
        if only_missing:
            query = query.where(Citizen.cohort_bidx.is_(None))
        if cursor is not None:
            query = query.where(Citizen.id > cursor)
        rows = list(session.scalars(query))
        if not rows:
            break
        keyring(session).preload(row.id for row in rows)
        updates = []
        for row in rows:
            counts.checked += 1
            try:
                cohort = cohort_of(row)
            except VaultError:
                counts.failed += 1
                continue
            if cohort is None:
                counts.without_commune += 1
            else:
                counts.indexed += 1
            if cohort != row.cohort_bidx:
                counts.changed += 1
                updates.append({"row_id": row.id, "cohort": cohort})
        if updates:
            # A statement, not the ORM: filling an index is no change of the person (no new
            # version, no `updated_at`, nothing for delta sync to send again).
            session.execute(_SET_COHORT, updates)
        cursor = rows[-1].id
        counts.last_id = str(cursor)
        session.commit()
        # Each batch unwraps its own keys: a run over millions must not hold them all.
        session.expunge_all()
        drop_keyring(session)
    return counts
