"""The family doctor's panel: the people registered with a practitioner, each with flags.

"Every citizen has a personal doctor" means a doctor who looks after a list of people. The
panel lists the people whose current family-doctor registration names the caller, paged in a
stable order, each with what needs the doctor's attention and why:

- `vaccination-overdue`: a child's scheduled dose is overdue (the EPI schedule, as the
  schedule route computes it);
- `measurement-missing`: an active chronic condition without its follow-up measurement within
  the interval of `registry/reference/data/care_intervals.json` (sourced data);
- `periodic-exam-due`: the next periodic examination set at the latest one falls due within
  the reminders' notice, or has passed.

Each person examined is one audited decision (target `care-panel`), appended together like a
station's batch; their entries come from the records repository, each within the caller's
scope of its section (restricted entries stay out unless a consent names their category).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from core.encryption import keyring
from core.i18n import translate
from ehr import panel_messages  # noqa: F401  (registers the panel's texts)
from ehr.access import RecordAccess
from ehr.repository import EntryRow, RecordRepository
from ehr.schedule_service import CHILDHOOD_SCHEDULE_UNTIL_YEARS, age_years, schedule_for
from registry.models import Citizen, FamilyDoctorAssignment
from registry.reference.care_intervals import CareInterval, care_intervals
from registry.reference.durations import Duration

PANEL_FLAGS = ("vaccination-overdue", "measurement-missing", "periodic-exam-due")
PANEL_SECTIONS = ("conditions", "observations", "examinations", "immunizations")
# Told two weeks ahead, as the periodic-exam reminders are (ehr.PERIODIC_EXAM_NOTICE).
EXAM_NOTICE = dt.timedelta(days=14)
# A filtered page looks through at most this many people before answering with a cursor, so
# one request stays bounded however rare the flag is.
FILTERED_SCAN = 400
_ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})


@dataclass(frozen=True, slots=True)
class Flag:
    """Something about a person that needs the doctor's attention, and why."""

    code: str
    reason: str
    date: dt.date | None
    rule: str


@dataclass(slots=True)
class PanelPerson:
    citizen: Citizen
    registered_since: dt.datetime
    facility_id: uuid.UUID
    flags: list[Flag] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PanelPage:
    people: list[PanelPerson]
    # The last registration looked at, when more may follow.
    next_after: uuid.UUID | None


def panel_page(
    access: RecordAccess, *, practitioner_id: uuid.UUID, limit: int,
    after: uuid.UUID | None, flag: str | None, today: dt.date, lang: str,
) -> PanelPage:
    """One page of the practitioner's panel, in the order of the people's ids."""
    people: list[PanelPerson] = []
    scanned = 0
    cursor = after
    while True:
        chunk = limit - len(people) if flag is None else max(limit, 50)
        rows = _registrations(access, practitioner_id, cursor, chunk + 1)
        more = len(rows) > chunk
        rows = rows[:chunk]
        if not rows:
            return PanelPage(people, None)
        examined = _examine(access, rows, today=today, lang=lang)
        for position, row in enumerate(rows):
            cursor = row.citizen_id
            scanned += 1
            person = examined.get(row.citizen_id)
            if person is not None and (flag is None or any(f.code == flag for f in person.flags)):
                people.append(person)
            if len(people) == limit:
                has_more = more or position < len(rows) - 1
                return PanelPage(people, cursor if has_more else None)
        if not more:
            return PanelPage(people, None)
        if scanned >= FILTERED_SCAN:
            return PanelPage(people, cursor)


def _registrations(
    access: RecordAccess, practitioner_id: uuid.UUID, after: uuid.UUID | None, count: int,
) -> list[Any]:
    query = select(FamilyDoctorAssignment.citizen_id, FamilyDoctorAssignment.started_at,
                   FamilyDoctorAssignment.facility_id).where(
        FamilyDoctorAssignment.practitioner_id == practitioner_id,
        FamilyDoctorAssignment.ended_at.is_(None),
    )
    if after is not None:
        query = query.where(FamilyDoctorAssignment.citizen_id > after)
    return list(access.session.execute(
        query.order_by(FamilyDoctorAssignment.citizen_id).limit(count)).all())


def _examine(
    access: RecordAccess, rows: Sequence[Any], *, today: dt.date, lang: str
) -> dict[uuid.UUID, PanelPerson]:
    """Decide (and audit) each person, then flag those the caller may see on the panel."""
    ids = [row.citizen_id for row in rows]
    decisions = access.decide_list_reads(ids, target="care-panel")
    permitted = [cid for cid, decision in zip(ids, decisions, strict=True) if decision.permit]
    if not permitted:
        return {}
    keyring(access.session).preload(permitted)
    citizens = {c.id: c for c in access.session.scalars(
        select(Citizen).where(Citizen.id.in_(permitted)))}
    repository = RecordRepository(access)
    # Only recent measurements can satisfy a follow-up interval, and only children have a
    # schedule: the selection stays small (and so does the decryption).
    window = max((rule.interval for rule in care_intervals()),
                 key=lambda interval: interval.after(today))
    entries = repository.care_list_entries(
        citizen_ids=permitted, sections=("conditions", "observations", "examinations"),
        since={"observations": _before(today, window)})
    children = [cid for cid in permitted if cid in citizens
                and _is_child(citizens[cid].date_of_birth, today)]
    for citizen_id, doses in repository.care_list_entries(
            citizen_ids=children, sections=("immunizations",)).items():
        entries[citizen_id].extend(doses)
    by_id = {row.citizen_id: row for row in rows}
    people = {}
    for citizen_id in permitted:
        citizen = citizens.get(citizen_id)
        if citizen is None:
            continue
        row = by_id[citizen_id]
        person = PanelPerson(citizen=citizen, registered_since=row.started_at,
                             facility_id=row.facility_id)
        person.flags = person_flags(citizen, entries.get(citizen_id, []), today=today, lang=lang)
        people[citizen_id] = person
    return people


def person_flags(
    citizen: Citizen, entries: Iterable[EntryRow], *, today: dt.date, lang: str
) -> list[Flag]:
    """The flags of one person from their entries (oldest first), in PANEL_FLAGS order."""
    by_section: dict[str, list[EntryRow]] = {section: [] for section in PANEL_SECTIONS}
    for entry in entries:
        by_section.setdefault(entry.section, []).append(entry)
    flags: list[Flag] = []
    flags.extend(_vaccination_flags(citizen, by_section["immunizations"], today, lang))
    flags.extend(_measurement_flags(by_section["conditions"], by_section["observations"],
                                    today, lang))
    flags.extend(_exam_flags(by_section["examinations"], today, lang))
    return flags


def _vaccination_flags(
    citizen: Citizen, doses: list[EntryRow], today: dt.date, lang: str
) -> list[Flag]:
    if not _is_child(citizen.date_of_birth, today):
        return []
    overdue = [dose for dose in schedule_for(citizen, doses, today=today)
               if str(dose.status) == "overdue"]
    if not overdue:
        return []
    first = min(overdue, key=lambda dose: dose.overdue_date)
    reason = translate("panel.flag.vaccination-overdue", lang, dose=first.name(lang),
                       since=first.overdue_date.isoformat(), count=len(overdue))
    return [Flag("vaccination-overdue", reason, first.overdue_date, f"schedule:{first.item_id}")]


def _measurement_flags(
    conditions: list[EntryRow], observations: list[EntryRow], today: dt.date, lang: str
) -> list[Flag]:
    active_codes = []
    for entry in conditions:
        content = entry.content if isinstance(entry.content, dict) else {}
        code = content.get("icd10_code")
        if isinstance(code, str) and content.get("clinical_status", "active") in _ACTIVE_CONDITION:
            active_codes.append(code)
    if not active_codes:
        return []
    latest: dict[str, dt.date] = {}
    for entry in observations:
        content = entry.content if isinstance(entry.content, dict) else {}
        kind = content.get("kind")
        if isinstance(kind, str) and entry.clinical_date is not None:
            latest[kind] = max(latest.get(kind, entry.clinical_date), entry.clinical_date)
    flags = []
    for rule in care_intervals():
        if not any(rule.applies_to(code) for code in active_codes):
            continue
        measured = [latest[kind] for kind in rule.observation_kinds if kind in latest]
        last = max(measured, default=None)
        if last is not None and rule.interval.after(last) > today:
            continue
        flags.append(Flag("measurement-missing", _measurement_reason(rule, last, lang), last,
                          f"care-interval:{rule.id}"))
    return flags


def _measurement_reason(rule: CareInterval, last: dt.date | None, lang: str) -> str:
    if last is None:
        return translate("panel.flag.measurement-never", lang,
                         condition=rule.condition_name(lang),
                         measurement=rule.measurement_name(lang),
                         interval=_in_words(rule.interval, lang))
    return translate("panel.flag.measurement-missing", lang, condition=rule.condition_name(lang),
                     measurement=rule.measurement_name(lang),
                     interval=_in_words(rule.interval, lang), last=last.isoformat())


def _in_words(duration: Duration, lang: str) -> str:
    units = (("years", "năm", "year"), ("months", "tháng", "month"), ("weeks", "tuần", "week"),
             ("days", "ngày", "day"))
    parts = []
    for name, vi, en in units:
        value = getattr(duration, name)
        if value:
            parts.append(f"{value} {vi}" if lang != "en" else
                         f"{value} {en}{'s' if value != 1 else ''}")
    return " ".join(parts)


def _exam_flags(exams: list[EntryRow], today: dt.date, lang: str) -> list[Flag]:
    dated = [entry for entry in exams if isinstance(entry.content, dict)]
    if not dated:
        return []
    latest = max(dated, key=lambda e: (e.clinical_date or dt.date.min, e.created_at))
    raw = latest.content.get("next_exam_due")
    if not raw:
        return []
    due = dt.date.fromisoformat(raw)
    if due > today + EXAM_NOTICE:
        return []
    key = "panel.flag.exam-overdue" if due < today else "panel.flag.exam-due"
    return [Flag("periodic-exam-due", translate(key, lang, due=due.isoformat()), due,
                 "periodic-exam")]


def _is_child(birth: object, today: dt.date) -> bool:
    """Whether the childhood schedule still applies (as the schedule route decides)."""
    return isinstance(birth, dt.date) and age_years(birth, today) < CHILDHOOD_SCHEDULE_UNTIL_YEARS


def _before(today: dt.date, duration: Duration) -> dt.date:
    """The day `duration` before `today` (the first day a measurement still counts)."""
    day = today
    while duration.after(day) > today:
        day -= dt.timedelta(days=1)
    return day + dt.timedelta(days=1)
