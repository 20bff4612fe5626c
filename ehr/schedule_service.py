"""A citizen's immunization schedule from the national programme and their recorded doses."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from core.encryption import ERASED
from ehr.citizen_reports import is_unverified_report
from ehr.views import iso
from registry.models import Citizen
from registry.reference.schedule import (
    DOSE_STATUS_LABELS,
    GivenDose,
    NotCountedDose,
    NotCountedReason,
    ScheduledDoseStatus,
    compute_schedule,
)

if TYPE_CHECKING:  # the doses come from the records repository
    from ehr.record_models import RecordEntry


# The status a dose the person reported and no station has verified yet is given to the
# schedule: anything but "completed" is not counted (DESIGN.md §2: only a recorded dose counts).
UNVERIFIED = "unverified"


def given_doses(entries: Iterable[RecordEntry]) -> list[GivenDose]:
    doses = []
    for entry in entries:
        content = entry.content
        if content is ERASED or not isinstance(content, dict):
            continue
        if entry.status != "current":
            status = entry.status
        elif is_unverified_report(entry):
            status = UNVERIFIED
        else:
            status = "completed"
        doses.append(GivenDose(
            vaccine_code=content["vaccine_code"],
            occurrence_date=dt.date.fromisoformat(content["occurrence_date"]),
            entry_id=str(entry.id),
            status=status,
        ))
    return doses


def _with_unverified(person: dict[str, Any], doses: list[GivenDose],
                     counted: list[ScheduledDoseStatus], today: dt.date
                     ) -> list[ScheduledDoseStatus]:
    """List each unverified dose as not counted, with the reason "unverified", under the
    scheduled dose it would complete once verified (the schedule as if it were verified): the
    person sees their report is known and what it waits for, and the schedule counts only
    verified doses."""
    unverified = {d.entry_id: d for d in doses if d.status == UNVERIFIED}
    if not unverified:
        return counted
    as_if = compute_schedule(
        **person, today=today,
        doses=[replace(d, status="completed") if d.entry_id in unverified else d
               for d in doses])
    would_complete = {item.item_id: item for item in as_if}
    result = []
    for item in counted:
        hypothetical = would_complete.get(item.item_id)
        waiting = () if hypothetical is None or str(item.status) == "completed" else tuple(
            unverified[entry_id] for entry_id in hypothetical.completed_entry_ids
            if entry_id in unverified)
        if waiting:
            item = replace(item, not_counted=(*item.not_counted, *(
                NotCountedDose(entry_id=d.entry_id, vaccine_code=d.vaccine_code,
                               occurrence_date=d.occurrence_date,
                               reason=NotCountedReason.UNVERIFIED)
                for d in waiting)))
        result.append(item)
    return result


# The expanded programme is a childhood schedule: from this age on, missing childhood doses are
# history, not something due (adult vaccination is advised case by case, not by this table).
CHILDHOOD_SCHEDULE_UNTIL_YEARS = 16


def schedule_for(citizen: Citizen, entries: Iterable[RecordEntry], *, today: dt.date
                 ) -> list[ScheduledDoseStatus]:
    birth = citizen.date_of_birth
    if not isinstance(birth, dt.date):
        return []
    given = given_doses(entries)
    person = schedule_person(citizen, birth)
    doses = compute_schedule(**person, doses=given, today=today)
    doses = _with_unverified(person, given, doses, today)
    if age_years(birth, today) >= CHILDHOOD_SCHEDULE_UNTIL_YEARS:
        return [d for d in doses if str(d.status) == "completed"]
    return doses


def schedule_person(citizen: Citizen, birth: dt.date) -> dict[str, Any]:
    """What the schedule needs of the person: the date of birth, and the sex and province that
    decide targeted rows (HPV for girls of the pilot provinces)."""
    address = citizen.address if isinstance(citizen.address, dict) else {}
    sex = citizen.sex
    return {"date_of_birth": birth, "sex": sex if isinstance(sex, str) else None,
            "province_code": address.get("province_code")}


def age_years(birth: dt.date, today: dt.date) -> int:
    """Completed years of age on `today`."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def dose_view(dose: ScheduledDoseStatus, lang: str) -> dict[str, Any]:
    return {
        "item_id": dose.item_id,
        "series": dose.series,
        "dose_number": dose.dose_number,
        "antigens": list(dose.antigens),
        "name": dose.name_en if lang == "en" else dose.name_vi,
        "status": str(dose.status),
        "due_date": iso(dose.due_date),
        "earliest_date": iso(dose.earliest_date),
        "overdue_date": iso(dose.overdue_date),
        "latest_date": iso(dose.latest_date),
        "completed_date": iso(dose.completed_date),
        "status_label": DOSE_STATUS_LABELS[str(dose.status)][lang],
        "due_soon": dose.due_soon,
        "completed_entry_ids": list(dose.completed_entry_ids),
        "not_counted": [
            {"entry_id": n.entry_id, "vaccine_code": n.vaccine_code,
             "occurrence_date": iso(n.occurrence_date), "reason": str(n.reason)}
            for n in dose.not_counted
        ],
    }


def next_due(doses: list[ScheduledDoseStatus]) -> ScheduledDoseStatus | None:
    """The most pressing dose: overdue first, then due, then the earliest upcoming."""
    for wanted in ("overdue", "due", "upcoming"):
        candidates = [d for d in doses if str(d.status) == wanted]
        if candidates:
            return min(candidates, key=lambda d: d.due_date)
    return None


def schedule_view(doses: list[ScheduledDoseStatus], *, citizen_id: uuid.UUID, today: dt.date,
                  lang: str) -> dict[str, Any]:
    upcoming = next_due(doses)
    counts: dict[str, int] = {}
    for dose in doses:
        counts[str(dose.status)] = counts.get(str(dose.status), 0) + 1
    return {
        "citizen_id": str(citizen_id),
        "as_of": today.isoformat(),
        "counts": counts,
        "next_due": dose_view(upcoming, lang) if upcoming else None,
        "doses": [dose_view(d, lang) for d in doses],
    }
