"""A commune station's vaccination worklist: the children of its catchment due or overdue for
a dose of the expanded programme, grouped by village, ready to print and to upload.

Who is a candidate: the children of the facility's commune, found through the cohort blind
index (commune and birth year, `registry/cohorts.py`) for the birth years the childhood
schedule still covers, plus the people the facility registered itself. Only those rows are
decrypted. Each child considered is one audited decision (`immunization-worklist`, appended
together); only permitted children are read further, their doses through the records
repository, their schedule computed on the session day.

Which doses: on the session day (`from`), every dose of the children's schedule that is
overdue, due, or falls due by `to` while the dose before it in its series is given. Doses past
their age limit (`missed`) are never listed: they are no longer given.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

import ehr.worklist_messages  # noqa: F401  (registers the worklist's texts)
from consent.guardians import guardians_in_force
from consent.models import Guardianship as GuardianshipRow
from consent.pdp import preload_facts
from consent.policy import birthday
from core.encryption import ERASED, keyring
from core.errors import Forbidden, Message, NotFound, ValidationFailed
from core.i18n import translate
from ehr.access import RecordAccess
from ehr.repository import immunization_doses_of
from ehr.schedule_service import CHILDHOOD_SCHEDULE_UNTIL_YEARS, given_doses
from registry.caller import Caller
from registry.cohorts import cohort_indexes
from registry.models import Citizen, Facility
from registry.reference.schedule import (
    DOSE_STATUS_LABELS,
    ScheduledDoseStatus,
    compute_schedule,
    load_schedule,
)
from registry.reference.text import fold
from registry.reference.vaccines import get_vaccine, vaccine_catalogue

if TYPE_CHECKING:  # the doses come from the records repository
    from ehr.record_models import RecordEntry

TARGET = "immunization-worklist"
DEFAULT_DAYS = 30
MAX_DAYS = 92  # a quarter: the longest planning horizon of a commune's sessions
CLIENT_ITEM_PREFIX = "WL"


# --- the request --------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    start: dt.date  # the session day
    end: dt.date


def parse_range(raw_from: str | None, raw_to: str | None, *, today: dt.date) -> DateRange:
    """`from` (default today in Viet Nam) and `to` (default `from` + 30 days); 422 with the
    fields at fault for a malformed date, an end before the start or a range over 92 days."""
    errors: dict[str, list[Message | str]] = {}
    start = _date(raw_from, "from", errors) if raw_from is not None else today
    end = None
    if raw_to is not None:
        end = _date(raw_to, "to", errors)
    if errors or start is None:
        raise ValidationFailed(errors=errors)
    end = end or start + dt.timedelta(days=DEFAULT_DAYS)
    if end < start:
        raise ValidationFailed(errors={"to": [Message("worklist.range-order")]})
    if (end - start).days > MAX_DAYS:
        raise ValidationFailed(errors={"to": [Message("worklist.range-too-long", days=MAX_DAYS)]})
    return DateRange(start=start, end=end)


def _date(raw: str, name: str, errors: dict[str, list[Message | str]]) -> dt.date | None:
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        errors[name] = [Message("worklist.date-invalid")]
        return None


# --- the result ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WorklistDose:
    status: ScheduledDoseStatus
    listed_as: str  # "due" or "overdue"
    vaccine_code: str | None
    client_item_id: str


@dataclass(frozen=True)
class Contact:
    name: str | None
    relationship: str | None  # None: the phone given at the child's registration
    phone: str | None


@dataclass
class WorklistChild:
    citizen_id: uuid.UUID
    full_name: str
    date_of_birth: dt.date
    sex: str | None
    village: str | None
    doses: list[WorklistDose]
    last_dose: RecordEntry | None = None
    contacts: list[Contact] = field(default_factory=list)


@dataclass
class Worklist:
    facility: Facility
    range: DateRange
    children: list[WorklistChild]
    considered: int
    permitted: int
    facilities: dict[uuid.UUID, Facility] = field(default_factory=dict)

    def villages(self) -> list[tuple[str | None, list[WorklistChild]]]:
        """The children by village, villages by name (the unknown village last), children by
        name within each."""
        groups: dict[str | None, list[WorklistChild]] = {}
        for child in self.children:
            groups.setdefault(child.village, []).append(child)
        order = sorted(groups, key=lambda v: (v is None, fold(v or ""), v or ""))
        return [(village, sorted(groups[village], key=_child_order)) for village in order]

    def vaccine_counts(self) -> list[tuple[str, int]]:
        counts = Counter(d.vaccine_code for c in self.children for d in c.doses
                         if d.vaccine_code is not None)
        return sorted(counts.items())


def _child_order(child: WorklistChild) -> tuple[str, dt.date, str]:
    return fold(child.full_name), child.date_of_birth, str(child.citizen_id)


# --- the service --------------------------------------------------------------------------


def build_worklist(
    session: Session, caller: Caller, *, facility_id: uuid.UUID, dates: DateRange,
) -> Worklist:
    """The worklist of `facility_id` for `dates`: 404 for no such facility, 403 to anyone but
    that facility's own station (staff or system). Appends one audit event per child
    considered; the caller commits."""
    facility = session.get(Facility, facility_id)
    if facility is None:
        raise NotFound()
    if caller.role != "station" or facility_id not in caller.facility_ids:
        raise Forbidden(Message("worklist.not-your-facility"), code="not-your-facility")

    access = RecordAccess(session, caller)
    commune_cohorts = _commune_cohorts(facility, dates.start)
    candidates = _children_of_catchment(session, facility, commune_cohorts, dates.start)
    considered = sorted(candidates, key=lambda c: c.id)
    decisions = access.decide_list_reads([c.id for c in considered], target=TARGET) \
        if considered else []
    permitted = [c for c, d in zip(considered, decisions, strict=True) if d.permit]

    doses_by_child = immunization_doses_of(session, [c.id for c in permitted])
    children: list[WorklistChild] = []
    for citizen in permitted:
        entries = doses_by_child.get(citizen.id, [])
        born = citizen.date_of_birth
        sex = None if citizen.sex is ERASED else citizen.sex
        # Sex and province: some rows are for girls of some provinces only (HPV pilot). A
        # child of the commune lives in the facility's province: no address to decrypt yet.
        province = (facility.province_code if citizen.cohort_bidx in commune_cohorts
                    else _address(citizen).get("province_code"))
        statuses = compute_schedule(date_of_birth=born, doses=given_doses(entries),
                                    today=dates.start, sex=sex, province_code=province)
        doses = [
            WorklistDose(status=dose, listed_as=listed_as,
                         vaccine_code=vaccine_for(dose, statuses),
                         client_item_id=client_item_id(facility.id, citizen.id, dose.item_id,
                                                       dates.start))
            for dose, listed_as in worklist_doses(statuses, session_day=dates.start,
                                                  until=dates.end)
        ]
        if not doses:
            continue
        children.append(WorklistChild(
            citizen_id=citizen.id, full_name=str(citizen.full_name), date_of_birth=born,
            sex=sex, village=_village(_address(citizen)), doses=doses,
            last_dose=_last_dose(entries),
        ))
    _add_contacts(session, children, {c.id: c for c in permitted}, now=access.now)
    facilities = _facilities_of(session, children, facility)
    return Worklist(facility=facility, range=dates, children=children,
                    considered=len(considered), permitted=len(permitted),
                    facilities=facilities)


def _commune_cohorts(facility: Facility, session_day: dt.date) -> frozenset[bytes]:
    """The cohort indexes of the facility's commune for the birth years the childhood
    schedule still covers on the session day (none for a facility without a commune)."""
    if not facility.commune_code:
        return frozenset()
    years = range(session_day.year - CHILDHOOD_SCHEDULE_UNTIL_YEARS, session_day.year + 1)
    return frozenset(cohort_indexes(facility.commune_code, years))


def _address(citizen: Citizen) -> dict[str, Any]:
    address = citizen.address
    return address if isinstance(address, dict) else {}


def _children_of_catchment(
    session: Session, facility: Facility, cohorts: frozenset[bytes], session_day: dt.date
) -> list[Citizen]:
    """The children the schedule still covers on the session day: of the facility's commune
    (by cohort index) or registered by the facility. Decrypts only these rows' birth dates."""
    conditions = [Citizen.registered_by_facility_id == facility.id]
    if cohorts:
        conditions.append(Citizen.cohort_bidx.in_(sorted(cohorts)))
    rows = list(session.scalars(
        select(Citizen).where(or_(*conditions), Citizen.status == "active")))
    keyring(session).preload(row.id for row in rows)
    children = []
    for row in rows:
        born = row.date_of_birth
        if not isinstance(born, dt.date) or born > session_day:
            continue
        if session_day < birthday(born, CHILDHOOD_SCHEDULE_UNTIL_YEARS):
            children.append(row)
    return children


def worklist_doses(
    statuses: Sequence[ScheduledDoseStatus], *, session_day: dt.date, until: dt.date
) -> list[tuple[ScheduledDoseStatus, str]]:
    """The doses to list, with how: overdue or due on the session day as computed, and doses
    falling due by `until` whose previous dose in the series is given (the next one of a
    series waits for its interval after the one before)."""
    listed: list[tuple[ScheduledDoseStatus, str]] = []
    previous_given: dict[str, bool] = {}
    for dose in statuses:
        status = str(dose.status)
        series_open = previous_given.get(dose.series, True)
        previous_given[dose.series] = status == "completed"
        if status in ("overdue", "due"):
            listed.append((dose, status))
        elif status == "upcoming" and series_open and session_day <= dose.due_date <= until:
            listed.append((dose, "due"))
    return listed


def vaccine_for(dose: ScheduledDoseStatus, statuses: Sequence[ScheduledDoseStatus]
                ) -> str | None:
    """The vaccine to give for `dose`: a product-specific series continues with the product
    already used (a rotavirus series started with Rotarix ends with it), otherwise the series'
    default, otherwise the programme's vaccine for the row's antigens."""
    schedule = load_schedule()
    series = schedule.series[dose.series]
    if series.product_specific:
        used = [code for d in statuses if d.series == dose.series
                for code in d.completed_vaccine_codes]
        for code in used:
            vaccine = get_vaccine(code)
            if vaccine is not None and vaccine.series_doses is not None:
                return vaccine.code
    if series.default_vaccine:
        return series.default_vaccine
    return programme_vaccine(dose.item_id)


@cache
def programme_vaccine(item_id: str) -> str | None:
    """The programme's (EPI) vaccine for a schedule row: the one with exactly the row's
    antigens among those its series accepts, else the smallest one covering them."""
    schedule = load_schedule()
    row = next(r for r in schedule.rows if r.id == item_id)
    allowed = schedule.series[row.series].vaccines
    candidates = [
        v for v in vaccine_catalogue().values()
        if v.is_epi and (allowed is None or v.code in allowed) and row.antigens <= set(v.antigens)
    ]
    exact = [v for v in candidates if set(v.antigens) == row.antigens]
    chosen = exact or sorted(candidates, key=lambda v: len(v.antigens))
    return chosen[0].code if chosen else None


def client_item_id(facility_id: uuid.UUID, citizen_id: uuid.UUID, item_id: str,
                   session_day: dt.date) -> str:
    """The batch `client_item_id` of a dose at a session: the same facility, child, dose and
    day always give the same id, so uploading the session twice replays instead of adding."""
    digest = hashlib.sha256(
        f"{facility_id}|{citizen_id}|{item_id}|{session_day.isoformat()}".encode()).hexdigest()
    return f"{CLIENT_ITEM_PREFIX}-{session_day:%Y%m%d}-{digest[:32]}"


def _village(address: dict[str, Any]) -> str | None:
    village = address.get("village")
    if isinstance(village, str) and village.strip():
        return " ".join(village.split())
    return None


def _last_dose(entries: Sequence[RecordEntry]) -> RecordEntry | None:
    dated = [e for e in entries if isinstance(e.content, dict) and e.clinical_date is not None]
    return max(dated, key=lambda e: (e.clinical_date, e.created_at)) if dated else None


def _add_contacts(session: Session, children: list[WorklistChild],
                  citizens: dict[uuid.UUID, Citizen], *, now: dt.datetime) -> None:
    """The guardians in force of each child (name, relationship, phone); the phone given at
    registration for a child no guardian is linked to."""
    ids = [c.citizen_id for c in children]
    if not ids:
        return
    preload_facts(session, ids, now=now, parts=frozenset({"citizen", "guardianships"}))
    in_force = {cid: guardians_in_force(session, cid, now) for cid in ids}
    guardian_ids = {g for gs in in_force.values() for g in gs}
    relationships: dict[tuple[uuid.UUID, uuid.UUID], str] = {}
    people: dict[uuid.UUID, Citizen] = {}
    if guardian_ids:
        for dependant, guardian, relationship in session.execute(
            select(GuardianshipRow.dependant_citizen_id, GuardianshipRow.guardian_citizen_id,
                   GuardianshipRow.relationship)
            .where(GuardianshipRow.dependant_citizen_id.in_(ids),
                   GuardianshipRow.revoked_at.is_(None))
        ):
            relationships[(dependant, guardian)] = relationship
        people = {p.id: p for p in session.scalars(
            select(Citizen).where(Citizen.id.in_(guardian_ids)))}
        keyring(session).preload(people)
    for child in children:
        for guardian_id in in_force[child.citizen_id]:
            person = people.get(guardian_id)
            if person is None:
                continue
            name, phone = person.full_name, person.phone
            child.contacts.append(Contact(
                name=None if name is ERASED else name,
                relationship=relationships.get((child.citizen_id, guardian_id), "other"),
                phone=None if phone is ERASED else phone))
        if not child.contacts:
            phone = citizens[child.citizen_id].phone
            if phone and phone is not ERASED:
                child.contacts.append(Contact(name=None, relationship=None, phone=phone))


def _facilities_of(session: Session, children: Iterable[WorklistChild],
                   own: Facility) -> dict[uuid.UUID, Facility]:
    wanted = {c.last_dose.facility_id for c in children
              if c.last_dose is not None and c.last_dose.facility_id is not None}
    found = {own.id: own}
    wanted.discard(own.id)
    if wanted:
        found.update({f.id: f for f in session.scalars(
            select(Facility).where(Facility.id.in_(wanted)))})
    return found


# --- views --------------------------------------------------------------------------------


def _dose_name(dose: ScheduledDoseStatus, lang: str) -> str:
    return dose.name(lang)


def _vaccine_name(code: str | None, lang: str) -> str | None:
    vaccine = get_vaccine(code) if code else None
    return vaccine.name(lang) if vaccine is not None else None


def batch_item(worklist: Worklist, child: WorklistChild, dose: WorklistDose) -> dict[str, Any]:
    """The dose as an item of `POST /immunizations/batch`, all but what only the vaccinator
    knows on the day (`lot_number`, and optionally `expiry_date` and `site`)."""
    item: dict[str, Any] = {
        "client_item_id": dose.client_item_id,
        "citizen_id": str(child.citizen_id),
        "vaccine_code": dose.vaccine_code,
        "dose_number": dose.status.dose_number,
        "occurrence_date": worklist.range.start.isoformat(),
        "facility_code": worklist.facility.code,
    }
    vaccine = get_vaccine(dose.vaccine_code) if dose.vaccine_code else None
    if vaccine is not None:
        item["route"] = vaccine.route
    return item


def _last_dose_view(worklist: Worklist, entry: RecordEntry | None, lang: str
                    ) -> dict[str, Any] | None:
    if entry is None:
        return None
    code = entry.content.get("vaccine_code")
    facility = worklist.facilities.get(entry.facility_id) if entry.facility_id else None
    return {
        "date": entry.clinical_date.isoformat() if entry.clinical_date else None,
        "vaccine_code": code,
        "vaccine_name": _vaccine_name(code, lang),
        "facility": None if facility is None else {
            "id": str(facility.id), "code": facility.code, "name": facility.name},
    }


def _child_view(worklist: Worklist, child: WorklistChild, lang: str) -> dict[str, Any]:
    guardians = [c for c in child.contacts if c.relationship is not None]
    registration = next((c.phone for c in child.contacts if c.relationship is None), None)
    return {
        "child": {
            "id": str(child.citizen_id), "full_name": child.full_name,
            "date_of_birth": child.date_of_birth.isoformat(), "sex": child.sex,
        },
        "doses": [
            {
                "item_id": d.status.item_id,
                "name": _dose_name(d.status, lang),
                "dose_number": d.status.dose_number,
                "status": d.listed_as,
                "due_date": d.status.due_date.isoformat(),
                "earliest_date": (d.status.earliest_date.isoformat()
                                  if d.status.earliest_date else None),
                "vaccine_code": d.vaccine_code,
                "vaccine_name": _vaccine_name(d.vaccine_code, lang),
                "batch_item": batch_item(worklist, child, d),
            }
            for d in child.doses
        ],
        "last_dose": _last_dose_view(worklist, child.last_dose, lang),
        "contact": {
            "guardians": [{"name": g.name, "relationship": g.relationship, "phone": g.phone}
                          for g in guardians],
            "registration_phone": registration,
        },
    }


def worklist_view(worklist: Worklist, lang: str) -> dict[str, Any]:
    facility = worklist.facility
    villages = worklist.villages()
    return {
        "facility": {"id": str(facility.id), "code": facility.code, "name": facility.name,
                     "commune_code": facility.commune_code},
        "from": worklist.range.start.isoformat(),
        "to": worklist.range.end.isoformat(),
        "session_date": worklist.range.start.isoformat(),
        "summary": {
            "children": len(worklist.children),
            "doses": sum(len(c.doses) for c in worklist.children),
            "vaccines": [{"vaccine_code": code, "name": _vaccine_name(code, lang),
                          "doses": count} for code, count in worklist.vaccine_counts()],
        },
        "villages": [
            {"village": village,
             "label": village if village is not None
             else translate("worklist.unknown-village", lang),
             "children": [_child_view(worklist, child, lang) for child in children]}
            for village, children in villages
        ],
    }


CSV_COLUMNS = ("village", "child", "date_of_birth", "sex", "dose", "dose_number", "status",
               "due_date", "vaccine", "last_dose_date", "last_dose_vaccine", "contact",
               "phone", "given")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str | None) -> str:
    """A text cell a spreadsheet shows as text: one starting like a formula is quoted."""
    text = value or ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _national_phone(phone: str | None) -> str:
    """+84912345678 as people write it, grouped (0912 345 678): a spreadsheet keeps the
    leading zero of a cell with spaces, and does not read a leading + as a formula."""
    if not phone:
        return ""
    if phone.startswith("+84") and len(phone) == 12:
        local = "0" + phone[3:]
        return f"{local[:4]} {local[4:7]} {local[7:]}"
    return phone.lstrip("+")


def _contact_cells(child: WorklistChild, lang: str) -> tuple[str, str]:
    names, phones = [], []
    for contact in child.contacts:
        if contact.relationship is None:
            names.append(translate("worklist.registration-phone", lang))
        else:
            relationship = translate(f"worklist.relationship.{contact.relationship}", lang) \
                if contact.relationship in _RELATIONSHIPS else contact.relationship
            names.append(f"{contact.name or ''} ({relationship})".strip())
        phones.append(_national_phone(contact.phone))
    return "; ".join(names), "; ".join(p for p in phones if p)


_RELATIONSHIPS = frozenset({"mother", "father", "parent", "grandparent", "sibling",
                            "legal-guardian", "spouse", "child", "relative", "other"})


def worklist_csv(worklist: Worklist, lang: str) -> str:
    """The printable session list: a header in `lang`, then one row per child and dose,
    village by village; starts with a byte-order mark so Excel reads it as UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([translate(f"worklist.column.{name}", lang) for name in CSV_COLUMNS])
    unknown = translate("worklist.unknown-village", lang)
    for village, children in worklist.villages():
        for child in children:
            contact, phone = _contact_cells(child, lang)
            last = child.last_dose
            last_date = last.clinical_date.isoformat() if last and last.clinical_date else ""
            last_vaccine = str(last.content.get("vaccine_code") or "") if last else ""
            sex = translate(f"worklist.sex.{child.sex}", lang) \
                if child.sex in ("male", "female", "other") else ""
            for dose in child.doses:
                writer.writerow([
                    _cell(village if village is not None else unknown),
                    _cell(child.full_name), child.date_of_birth.isoformat(), sex,
                    _cell(_dose_name(dose.status, lang)), str(dose.status.dose_number),
                    DOSE_STATUS_LABELS[dose.listed_as][lang],
                    dose.status.due_date.isoformat(), dose.vaccine_code or "",
                    last_date, last_vaccine, _cell(contact), phone, "",
                ])
    return "\ufeff" + out.getvalue()
