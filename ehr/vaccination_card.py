"""A person's vaccination card: every dose by antigen, verified or not, and where the person
stands in the national programme (children's schedule, and adults' where it has one).

The doses are those the caller's immunizations list shows (the same repository query, one
audited section read: DESIGN.md §5 "no route shows more"), entered-in-error ones left out. The
schedule part is the schedule route's own answer, shown only to a caller the policy lets read
the schedule.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ehr import records
from ehr.access import RecordAccess
from ehr.citizen_reports import is_unverified_report
from ehr.repository import RecordRepository
from ehr.schedule_service import (
    CHILDHOOD_SCHEDULE_UNTIL_YEARS,
    age_years,
    dose_view,
    given_doses,
    schedule_for,
    schedule_view,
)
from ehr.views import citizen_view, iso
from registry.reference.schedule import adult_recommendations
from registry.reference.vaccines import antigens, get_vaccine

if TYPE_CHECKING:
    from ehr.record_models import RecordEntry
    from registry.models import Citizen

# One page of the list query holds everyone's doses (a lifetime is a few dozen); a longer
# record is read on in further pages, each one more audited read of the same section.
CARD_PAGE = 500


def card_for(access: RecordAccess, citizen_id: uuid.UUID, *, today: dt.date,
             lang: str) -> dict[str, Any]:
    """The card as the caller may see it (404 for nobody, 403/404 for a denied section)."""
    citizen = records.get_citizen(access, citizen_id)
    repository = RecordRepository(access)
    entries = _listed_doses(repository, citizen_id)
    schedule = None
    adult: list[dict[str, Any]] = []
    if access.quiet_scope(citizen_id=citizen_id, section="immunization-schedule").permit:
        counted = repository.schedule_doses(citizen_id=citizen_id)
        schedule = schedule_view(schedule_for(citizen, counted, today=today),
                                 citizen_id=citizen_id, today=today, lang=lang)
        adult = adult_schedule(citizen, counted, today=today, lang=lang)
    return {
        "citizen": citizen_view(citizen, full=False),
        "as_of": today.isoformat(),
        "antigens": by_antigen(access, entries, lang),
        "schedule": schedule,
        "adult_schedule": adult,
    }


def _listed_doses(repository: RecordRepository, citizen_id: uuid.UUID) -> list[RecordEntry]:
    """The current doses the immunizations list shows this caller, oldest first."""
    entries: list[RecordEntry] = []
    position = None
    while True:
        page = repository.page(citizen_id=citizen_id, section="immunizations", limit=CARD_PAGE,
                               position=position, updated_since=None,
                               include_entered_in_error=False)
        entries.extend(page.entries)
        if page.next_position is None:
            break
        position = page.next_position
    entries.reverse()  # the list is newest first; a card reads from the first dose on
    return entries


def by_antigen(access: RecordAccess, entries: list[RecordEntry], lang: str
               ) -> list[dict[str, Any]]:
    """Each antigen the doses protect against, in the catalogue's order, with its doses oldest
    first; a combination dose appears under each of its antigens."""
    views = _dose_views(access, entries, lang)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for view in views:
        vaccine = get_vaccine(str(view["vaccine_code"]))
        for antigen in vaccine.antigens if vaccine else ():
            grouped.setdefault(antigen, []).append(view)
    known = antigens()
    return [
        {"antigen": code, "name": known[code].name(lang), "doses": grouped[code]}
        for code in known if code in grouped
    ]


def _dose_views(access: RecordAccess, entries: list[RecordEntry], lang: str
                ) -> list[dict[str, Any]]:
    contents = [entry.content if isinstance(entry.content, dict) else {} for entry in entries]
    references = records.References(access.session)
    references.preload(contents)
    named_ids = {code: references.facility_id(code)
                 for content in contents if (code := content.get("facility_code"))}
    facility_ids = [*(e.facility_id for e in entries), *(e.verified_facility_id for e in entries),
                    *named_ids.values()]
    facilities = records.facility_names(access, facility_ids)
    views = []
    for entry, content in zip(entries, contents, strict=True):
        code = str(content.get("vaccine_code", ""))
        vaccine = get_vaccine(code)
        views.append({
            "entry_id": str(entry.id),
            "version": entry.version,
            "occurrence_date": content.get("occurrence_date"),
            "vaccine_code": code,
            "vaccine_name": vaccine.name(lang) if vaccine else None,
            "dose_number": content.get("dose_number"),
            "lot_number": content.get("lot_number"),
            "facility": _facility(entry, content, named_ids, facilities),
            "source": entry.source,
            "verification": {
                "status": "unverified" if is_unverified_report(entry) else "verified",
                "verified_at": iso(entry.verified_at),
                "verified_facility": _facility_ref(entry.verified_facility_id, facilities),
            },
        })
    return views


def _facility(entry: RecordEntry, content: dict[str, Any],
              named_ids: dict[str, uuid.UUID | None],
              facilities: dict[uuid.UUID, tuple[str, str]]) -> dict[str, Any] | None:
    """Where the dose was given: the facility named by code, the recording facility, or (for a
    dose the person reported) the name written in their book."""
    code = content.get("facility_code")
    facility_id = named_ids.get(code) if code else None
    ref = _facility_ref(facility_id or entry.facility_id, facilities)
    if ref is not None:
        return ref
    name = content.get("facility_name")
    return {"id": None, "code": None, "name": name} if name else None


def _facility_ref(facility_id: uuid.UUID | None,
                  facilities: dict[uuid.UUID, tuple[str, str]]) -> dict[str, Any] | None:
    if facility_id is None:
        return None
    code, name = facilities.get(facility_id, (None, None))
    return {"id": str(facility_id), "code": code, "name": name}


# --- the adult programme ---------------------------------------------------------------------
# The schedule module knows which doses the national programme recommends for adults (data: so
# far only tetanus-containing doses in pregnancy, which needs the pregnancy's start, not recorded
# here). The card shows whatever it recommends for this person.

def adult_schedule(citizen: Citizen, entries: Iterable[RecordEntry], *, today: dt.date,
                   lang: str) -> list[dict[str, Any]]:
    """Each recommended adult dose with its status (empty: the programme has none for this
    person, or the person is a child or of unknown age)."""
    birth = citizen.date_of_birth
    if not isinstance(birth, dt.date):
        return []
    if age_years(birth, today) < CHILDHOOD_SCHEDULE_UNTIL_YEARS:
        return []
    sex = citizen.sex
    statuses = adult_recommendations(date_of_birth=birth,
                                     sex=sex if isinstance(sex, str) else None,
                                     doses=given_doses(entries), today=today)
    return [dose_view(status, lang) for status in statuses]
