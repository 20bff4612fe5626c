"""The national immunization schedule (data) and each person's completed, due and overdue doses.

Rules (also stated in the data file): a row applies on ``today`` only within its validity period
(its own ``valid_from``/``valid_until``; rows without dates follow the schedule) and only to the
sex and provinces it names. A dose is due from max(recommended age, previous dose + recommended
interval); overdue once the row's grace (default 1 month) has passed after that; "missed" from
the row's upper age on: the maximum age (the row's or the product's) or the catch-up limit,
whichever comes first. A given dose counts for a row only if it is on or after the minimum age,
before the maximum age, at least the minimum interval after the previous counted dose of the
same series, and contains every antigen of the row. The catch-up limit ends the offer, not the
validity: a dose given after it still counts. One dose fills one row: a recorded dose counts for
at most one scheduled row per antigen (series are filled in the order of the data file). Doses
given on the same day are combined, so a DTaP-IPV-Hib plus a hepatitis B injection count like a
hexavalent dose. Only doses with status "completed" count; entered-in-error (and not-done) doses
are ignored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from registry.reference._data import load_json
from registry.reference.durations import Duration
from registry.reference.vaccines import Vaccine, antigens, get_vaccine, vaccine_catalogue

SCHEDULE_FILE = "epi_schedule_2024.json"
ADULT_PROGRAMME_FILE = "epi_adults.json"
DEFAULT_SCHEDULE_ID = "vn-epi-children-2024"
PREGNANCY_SCHEDULE_ID = "vn-epi-tetanus-pregnancy-2024"
ANCHORS = ("birth", "pregnancy")
SEXES = ("female", "male")
LIMIT_MAXIMUM_AGE = "maximum-age"
LIMIT_CATCH_UP = "catch-up"
COUNTED_DOSE_STATUS = "completed"
_ONE_DAY = timedelta(days=1)


class DoseStatus(StrEnum):
    """Where a scheduled dose stands for one person on one day."""

    COMPLETED = "completed"
    DUE = "due"
    OVERDUE = "overdue"
    UPCOMING = "upcoming"
    # Past the maximum age without a counted dose: no longer given (e.g. rotavirus after 6 months).
    MISSED = "missed"


class NotCountedReason(StrEnum):
    """Why a recorded dose does not count for the scheduled dose it was matched against."""

    BEFORE_MINIMUM_AGE = "before-minimum-age"
    BEFORE_MINIMUM_INTERVAL = "before-minimum-interval"
    MISSING_ANTIGENS = "missing-antigens"
    # Given from the row's (or product's) maximum age on: e.g. rotavirus after 6 months, or a
    # hepatitis B dose after the first week for the birth-dose row.
    PAST_MAXIMUM_AGE = "past-maximum-age"
    # The dose's antigens needed here already count for another scheduled dose (one dose fills
    # one row per antigen).
    COUNTED_FOR_ANOTHER_DOSE = "counted-for-another-dose"
    # A dose the person reported that would count once station staff verify it (set by the
    # record's schedule service, never by compute_schedule, which counts verified doses only).
    UNVERIFIED = "unverified"


DOSE_STATUS_LABELS: Mapping[str, Mapping[str, str]] = {
    "completed": {"vi": "Đã tiêm", "en": "Completed"},
    "due": {"vi": "Đến lịch tiêm", "en": "Due"},
    "overdue": {"vi": "Quá hạn", "en": "Overdue"},
    "upcoming": {"vi": "Sắp tới", "en": "Upcoming"},
    "missed": {"vi": "Đã quá tuổi tiêm", "en": "Missed (past the age limit)"},
}

NOT_COUNTED_MESSAGES: Mapping[str, Mapping[str, str]] = {
    "before-minimum-age": {
        "vi": "Mũi tiêm được thực hiện trước độ tuổi tối thiểu nên không được tính.",
        "en": "The dose was given before the minimum age, so it does not count.",
    },
    "before-minimum-interval": {
        "vi": "Mũi tiêm quá sát mũi trước (chưa đủ khoảng cách tối thiểu) nên không được tính.",
        "en": "The dose was given too soon after the previous dose, so it does not count.",
    },
    "missing-antigens": {
        "vi": "Vắc xin đã tiêm không có đủ thành phần cần cho mũi này nên không được tính.",
        "en": "The vaccine given lacks a component this dose needs, so it does not count.",
    },
    "past-maximum-age": {
        "vi": "Mũi tiêm được thực hiện sau độ tuổi tối đa của mũi này nên không được tính.",
        "en": "The dose was given after the maximum age for this dose, so it does not count.",
    },
    "counted-for-another-dose": {
        "vi": "Mũi tiêm này đã được tính cho một mũi khác trong lịch nên không được tính lại.",
        "en": "This dose already counts for another scheduled dose, so it does not count again.",
    },
    "unverified": {
        "vi": "Mũi tiêm do người dân tự khai, sẽ được tính khi trạm y tế xác nhận.",
        "en": "A dose you reported: it counts once the health station verifies it.",
    },
}


@dataclass(frozen=True, slots=True)
class GivenDose:
    """A recorded immunization as the schedule needs it."""

    vaccine_code: str
    occurrence_date: date
    entry_id: str
    status: str = COUNTED_DOSE_STATUS


@dataclass(frozen=True, slots=True)
class SeriesDefinition:
    """A series of doses: which recorded vaccines take part in it."""

    key: str
    antigens: frozenset[str]
    # None: any vaccine containing the series' antigens; otherwise only these vaccine codes.
    vaccines: frozenset[str] | None
    # The number of doses and the age limit depend on the product (rotavirus).
    product_specific: bool
    default_vaccine: str | None


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """One scheduled dose; ages are offsets from the schedule's anchor date."""

    id: str
    series: str
    dose_number: int
    antigens: frozenset[str]
    name_vi: str
    name_en: str
    recommended_age: Duration | None
    min_age: Duration | None
    recommended_interval: Duration | None
    min_interval: Duration | None
    max_age: Duration | None
    grace: Duration | None
    due_soon_window_days: int | None
    min_product_series_doses: int | None
    confidence: str
    note: str
    # Defaults keep rows built elsewhere (tests, tools) working; the data file states them all.
    max_age_confidence: str | None = None
    # From this age on the programme no longer offers the dose ("missed"); unlike max_age a
    # dose given later still counts.
    catch_up_max_age: Duration | None = None
    catch_up_confidence: str = "service-decision"
    catch_up_note: str = ""
    # The row applies on dates within [valid_from, valid_until]; None: no bound of its own.
    valid_from: date | None = None
    valid_until: date | None = None
    source_ref: str = ""
    # Only for this sex ("female"/"male") and these provinces (GSO codes); None: everyone.
    sex: str | None = None
    provinces: frozenset[str] | None = None

    def applies(self, today: date, *, sex: str | None, province_code: str | None) -> bool:
        """Whether the row is in force on ``today`` for a person of ``sex`` in ``province_code``."""
        if self.valid_from is not None and today < self.valid_from:
            return False
        if self.valid_until is not None and today > self.valid_until:
            return False
        # An unknown sex or province never receives a targeted dose: a boy must not be told
        # an HPV dose is due, nor a child outside a pilot province.
        if self.sex is not None and sex != self.sex:
            return False
        return self.provinces is None or _province_key(province_code) in self.provinces


@dataclass(frozen=True, slots=True)
class Schedule:
    """A versioned schedule loaded from the data file."""

    id: str
    name_vi: str
    name_en: str
    anchor: str
    version: str
    source: str
    series: Mapping[str, SeriesDefinition]
    rows: tuple[ScheduleRow, ...]
    default_grace: Duration
    default_due_soon_window_days: int
    valid_from: date | None = None
    valid_until: date | None = None
    source_ref: str = ""
    validity_confidence: str = "circular"
    validity_note: str = ""

    def valid_on(self, day: date) -> bool:
        """Whether ``day`` falls in the schedule's validity period."""
        return (self.valid_from is None or day >= self.valid_from) and (
            self.valid_until is None or day <= self.valid_until
        )


@dataclass(frozen=True, slots=True)
class NotCountedDose:
    """A recorded dose that did not count for a scheduled dose, and why."""

    entry_id: str
    vaccine_code: str
    occurrence_date: date
    reason: NotCountedReason
    missing_antigens: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScheduledDoseStatus:
    """The state of one scheduled dose for one person on ``today``."""

    item_id: str
    series: str
    dose_number: int
    antigens: tuple[str, ...]
    name_vi: str
    name_en: str
    status: DoseStatus
    # When the dose is (or was) recommended; projected when an earlier dose is still missing.
    due_date: date
    # The first day a dose would count (None when nothing but the order limits it).
    earliest_date: date | None
    overdue_date: date
    # The last day the dose is still given (None: no upper age).
    latest_date: date | None
    completed_date: date | None = None
    completed_entry_ids: tuple[str, ...] = ()
    completed_vaccine_codes: tuple[str, ...] = ()
    not_counted: tuple[NotCountedDose, ...] = ()
    due_soon: bool = False
    # What ends the dose at latest_date: "maximum-age" (later doses do not count) or "catch-up"
    # (the programme stops offering it), with the limit's confidence and why; None: no limit.
    limit_kind: str | None = None
    limit_confidence: str | None = None
    limit_note: str = ""
    # The row's own confidence and the legal source it rests on (ids of legal_sources()).
    rule_confidence: str = ""
    rule_source: str = ""

    def name(self, lang: str = "vi") -> str:
        """Return the dose's name in ``lang`` ("vi" or "en")."""
        return self.name_en if lang == "en" else self.name_vi


@dataclass(frozen=True, slots=True)
class _Event:
    """The doses of one series given on one day, combined."""

    occurred: date
    doses: tuple[GivenDose, ...]
    antigens: frozenset[str]


@dataclass(frozen=True, slots=True)
class LegalSource:
    """A text a schedule or rule rests on, with its validity and how sure we are of it."""

    id: str
    title: str
    valid_from: date | None
    valid_until: date | None
    confidence: str
    note: str


@dataclass(frozen=True, slots=True)
class AdultRecommendation:
    """A programme schedule for adults and who it is for."""

    id: str
    schedule_id: str
    sex: str | None
    requires: str | None
    source_ref: str
    confidence: str
    note: str


@dataclass(frozen=True, slots=True)
class OmittedAdultVaccine:
    """A vaccine adults may want that the programme does not have, and why it is left out."""

    antigen: str
    who: str
    reason: str


@dataclass(frozen=True, slots=True)
class AdultProgramme:
    """The national programme's doses for adults (data), and what it leaves out."""

    source: str
    version: str
    recommendations: tuple[AdultRecommendation, ...]
    omitted: tuple[OmittedAdultVaccine, ...]


# The levels a row, limit or source may carry (the data file explains each).
CONFIDENCE_LEVELS: tuple[str, ...] = tuple(load_json(SCHEDULE_FILE)["confidence_levels"])


def schedule_ids() -> tuple[str, ...]:
    """Return the ids of the schedules in the data file."""
    return tuple(item["id"] for item in load_json(SCHEDULE_FILE)["schedules"])


@cache
def legal_sources() -> Mapping[str, LegalSource]:
    """Return the circulars, decisions and other sources the schedules cite, by id."""
    return {
        item["id"]: LegalSource(
            id=item["id"],
            title=item["title"],
            valid_from=_date(item.get("valid_from")),
            valid_until=_date(item.get("valid_until")),
            confidence=item["confidence"],
            note=item["note"],
        )
        for item in load_json(SCHEDULE_FILE)["sources"]
    }


@cache
def load_schedule(schedule_id: str = DEFAULT_SCHEDULE_ID) -> Schedule:
    """Load and check one schedule of the data file."""
    document = load_json(SCHEDULE_FILE)
    for item in document["schedules"]:
        if item["id"] == schedule_id:
            schedule = _schedule_from_data(document, item)
            _check_schedule(schedule)
            return schedule
    raise KeyError(f"unknown schedule {schedule_id!r}")


def compute_schedule(
    *,
    date_of_birth: date,
    doses: Iterable[GivenDose],
    today: date,
    schedule: Schedule | None = None,
    anchor_date: date | None = None,
    sex: str | None = None,
    province_code: str | None = None,
) -> list[ScheduledDoseStatus]:
    """Return the state of every scheduled dose on ``today``, in schedule order.

    Only the rows in force on ``today`` are listed (a dose a later circular adds is absent
    before it applies), and rows for one sex or some provinces (HPV for girls in the pilot
    provinces) only when ``sex`` and ``province_code`` (GSO code, "66" or "066") match.
    """
    # anchor_date is required by schedules not anchored on birth: the start of the pregnancy
    # for the tetanus schedule of pregnant women.
    schedule = schedule or load_schedule()
    anchor = _anchor(schedule, date_of_birth=date_of_birth, anchor_date=anchor_date)
    counted_doses = [dose for dose in doses if dose.status == COUNTED_DOSE_STATUS]
    applicable = [
        row
        for row in schedule.rows
        if row.applies(today, sex=sex, province_code=province_code)
    ]
    # entry id -> antigens it already counts for: one dose fills one row per antigen.
    used: dict[str, set[str]] = defaultdict(set)
    by_item: dict[str, ScheduledDoseStatus] = {}
    for series in schedule.series.values():
        rows = [row for row in applicable if row.series == series.key]
        if not rows:
            continue
        for result in _evaluate_series(schedule, series, rows, counted_doses, anchor, today, used):
            by_item[result.item_id] = result
    return [by_item[row.id] for row in applicable if row.id in by_item]


def adult_programme() -> AdultProgramme:
    """Return the programme's doses for adults and the vaccines it leaves out (data)."""
    document = load_json(ADULT_PROGRAMME_FILE)
    return AdultProgramme(
        source=document["source"],
        version=document["version"],
        recommendations=tuple(
            AdultRecommendation(
                id=item["id"],
                schedule_id=item["schedule"],
                sex=item.get("sex"),
                requires=item.get("requires"),
                source_ref=item["source_ref"],
                confidence=item["confidence"],
                note=item["note"],
            )
            for item in document["recommendations"]
        ),
        omitted=tuple(
            OmittedAdultVaccine(antigen=item["antigen"], who=item["who"], reason=item["reason"])
            for item in document["omitted"]
        ),
    )


def adult_recommendations(
    *,
    date_of_birth: date,
    sex: str | None,
    doses: Iterable[GivenDose],
    today: date,
    pregnancy_start: date | None = None,
) -> list[ScheduledDoseStatus]:
    """Return the doses the national programme recommends for this adult on ``today``.

    The programme's only adult doses are tetanus-containing doses for pregnant women
    (``epi_adults.json``): for a woman with ``pregnancy_start`` (the start of the current
    pregnancy) the result is the tetanus schedule anchored on it, each dose with its status as
    in ``compute_schedule`` (earlier TT/Td/Tdap doses count, possibly years back). For anyone
    else it is empty: vaccines outside the programme are not recommended by this service
    (``adult_programme().omitted`` lists them, with why).
    """
    given = list(doses)
    results: list[ScheduledDoseStatus] = []
    for item in adult_programme().recommendations:
        if item.sex is not None and sex != item.sex:
            continue
        if item.requires == "pregnancy" and pregnancy_start is None:
            continue
        schedule = load_schedule(item.schedule_id)
        if schedule.valid_until is not None and today > schedule.valid_until:
            continue  # a schedule whose period has ended recommends nothing any more
        results.extend(
            compute_schedule(
                date_of_birth=date_of_birth,
                doses=given,
                today=today,
                schedule=schedule,
                anchor_date=pregnancy_start,
                sex=sex,
            )
        )
    return results


def next_due_dose(statuses: Sequence[ScheduledDoseStatus]) -> ScheduledDoseStatus | None:
    """Return the dose to give next: the earliest due date among overdue, due and upcoming."""
    pending = [
        item
        for item in statuses
        if item.status in (DoseStatus.OVERDUE, DoseStatus.DUE, DoseStatus.UPCOMING)
    ]
    return min(pending, key=lambda item: item.due_date, default=None)


def dose_status_label(status: str, lang: str = "vi") -> str:
    """Return a person-facing label for a dose status in ``lang``."""
    labels = DOSE_STATUS_LABELS[status]
    return labels.get(lang, labels["vi"])


def not_counted_message(reason: str, lang: str = "vi") -> str:
    """Return the explanation of a not-counted reason in ``lang``."""
    messages = NOT_COUNTED_MESSAGES[reason]
    return messages.get(lang, messages["vi"])


def _province_key(code: str | None) -> str | None:
    # Addresses and facilities write "066", the data "66": compare the number.
    if code is None or not code.strip().isdigit():
        return None
    return str(int(code))


def _anchor(schedule: Schedule, *, date_of_birth: date, anchor_date: date | None) -> date:
    if schedule.anchor == "birth":
        return date_of_birth
    if anchor_date is None:
        raise ValueError(f"schedule {schedule.id} is anchored on {schedule.anchor}: anchor_date")
    return anchor_date


@dataclass(frozen=True, slots=True)
class _Limit:
    """The upper age of a row: when it falls, which kind it is, and its source."""

    age: Duration
    kind: str
    confidence: str
    note: str


def _limits(
    row: ScheduleRow, product: Vaccine | None
) -> tuple[Duration | None, _Limit | None]:
    """Return the row's maximum age for counting and the earliest of its upper limits."""
    limits = []
    max_age = product.max_age if product is not None and product.max_age else row.max_age
    if max_age is not None:
        from_product = product is not None and product.max_age is not None
        limits.append(_Limit(
            max_age,
            LIMIT_MAXIMUM_AGE,
            "secondary" if from_product else (row.max_age_confidence or row.confidence),
            f"Upper age of {product.code} (product information)." if from_product and product
            else row.note,
        ))
    if row.catch_up_max_age is not None:
        limits.append(_Limit(
            row.catch_up_max_age, LIMIT_CATCH_UP, row.catch_up_confidence, row.catch_up_note
        ))
    # The earlier limit ends the dose; on a tie the maximum age (the stricter meaning) is shown.
    reference = date(2000, 1, 1)
    earliest = min(limits, key=lambda limit: limit.age.after(reference), default=None)
    return max_age, earliest


def _evaluate_series(
    schedule: Schedule,
    series: SeriesDefinition,
    rows: list[ScheduleRow],
    doses: list[GivenDose],
    anchor: date,
    today: date,
    used: dict[str, set[str]],
) -> list[ScheduledDoseStatus]:
    relevant = frozenset().union(*(row.antigens for row in rows))
    events = _events(series, doses, relevant)
    product = _series_product(series, events)
    if product is not None and product.series_doses is not None:
        rows = [
            row
            for row in rows
            if row.min_product_series_doses is None
            or row.min_product_series_doses <= product.series_doses
        ]
    limits = {row.id: _limits(row, product) for row in rows}
    counted, not_counted = _count(rows, events, anchor, limits, used)

    results: list[ScheduledDoseStatus] = []
    previous_date: date | None = None
    previous_completed = True
    for row in rows:
        limit = limits[row.id][1]
        dates = _row_dates(schedule, row, anchor, previous_date, limit)
        match = counted.get(row.id)
        if match is not None:
            status = DoseStatus.COMPLETED
        else:
            status = _open_status(dates, today, previous_completed=previous_completed)
        window = row.due_soon_window_days or schedule.default_due_soon_window_days
        # A dose whose predecessor is still missing has only a projected date, which moves
        # with every day the predecessor waits: it is not "soon" (no reminder) until then.
        due_soon = (status is DoseStatus.UPCOMING and previous_completed
                    and 0 <= (dates.due - today).days <= window)
        results.append(
            _dose_status(
                row, status, dates, match, tuple(not_counted.get(row.id, ())), due_soon, limit
            )
        )
        if match is not None:
            previous_date = match[0].occurred
        else:
            # Later doses are projected from when this one can still be given at the earliest.
            previous_completed = False
            projected = dates.due if status is DoseStatus.UPCOMING else max(dates.due, today)
            previous_date = projected
    return results


@dataclass(frozen=True, slots=True)
class _RowDates:
    due: date
    earliest: date | None
    overdue: date
    latest: date | None


def _dose_status(
    row: ScheduleRow,
    status: DoseStatus,
    dates: _RowDates,
    match: tuple[_Event, tuple[GivenDose, ...]] | None,
    not_counted: tuple[NotCountedDose, ...],
    due_soon: bool,
    limit: _Limit | None,
) -> ScheduledDoseStatus:
    event, contributing = match if match is not None else (None, ())
    return ScheduledDoseStatus(
        item_id=row.id,
        series=row.series,
        dose_number=row.dose_number,
        antigens=tuple(sorted(row.antigens)),
        name_vi=row.name_vi,
        name_en=row.name_en,
        status=status,
        due_date=dates.due,
        earliest_date=dates.earliest,
        overdue_date=dates.overdue,
        latest_date=dates.latest,
        completed_date=event.occurred if event else None,
        completed_entry_ids=tuple(dose.entry_id for dose in contributing),
        completed_vaccine_codes=tuple(dose.vaccine_code for dose in contributing),
        not_counted=not_counted,
        due_soon=due_soon,
        limit_kind=limit.kind if limit else None,
        limit_confidence=limit.confidence if limit else None,
        limit_note=limit.note if limit else "",
        rule_confidence=row.confidence,
        rule_source=row.source_ref,
    )


def _row_dates(
    schedule: Schedule,
    row: ScheduleRow,
    anchor: date,
    previous_date: date | None,
    limit: _Limit | None,
) -> _RowDates:
    lower_limits = []
    if row.min_age is not None:
        lower_limits.append(row.min_age.after(anchor))
    if previous_date is not None and row.min_interval is not None:
        lower_limits.append(row.min_interval.after(previous_date))
    earliest = max(lower_limits) if lower_limits else None

    recommended = [anchor]
    if row.recommended_age is not None:
        recommended.append(row.recommended_age.after(anchor))
    if previous_date is not None and row.recommended_interval is not None:
        recommended.append(row.recommended_interval.after(previous_date))
    due = max(recommended + ([earliest] if earliest else []))

    # The dose is no longer given from the limit on, so the last day is the day before.
    latest = limit.age.after(anchor) - _ONE_DAY if limit is not None else None
    if latest is not None and due > latest and (earliest is None or earliest <= latest):
        due = latest
    overdue = (row.grace or schedule.default_grace).after(due) + _ONE_DAY
    return _RowDates(due=due, earliest=earliest, overdue=overdue, latest=latest)


def _open_status(dates: _RowDates, today: date, *, previous_completed: bool) -> DoseStatus:
    if dates.latest is not None and (
        today > dates.latest or (dates.earliest is not None and dates.earliest > dates.latest)
    ):
        return DoseStatus.MISSED
    if not previous_completed or today < dates.due:
        return DoseStatus.UPCOMING
    if today >= dates.overdue:
        return DoseStatus.OVERDUE
    return DoseStatus.DUE


def _events(
    series: SeriesDefinition, doses: list[GivenDose], relevant_antigens: frozenset[str]
) -> list[_Event]:
    by_day: dict[date, list[tuple[GivenDose, Vaccine]]] = defaultdict(list)
    for dose in doses:
        vaccine = get_vaccine(dose.vaccine_code)
        if vaccine is None or (series.vaccines is not None and vaccine.code not in series.vaccines):
            continue
        if relevant_antigens.intersection(vaccine.antigens):
            by_day[dose.occurrence_date].append((dose, vaccine))
    events = []
    for day in sorted(by_day):
        group = sorted(by_day[day], key=lambda pair: pair[0].entry_id)
        combined = frozenset().union(*(vaccine.antigens for _, vaccine in group))
        # A lone hepatitis B dose is no DTP dose: the day must cover the series' own antigens.
        if series.antigens <= combined:
            events.append(_Event(day, tuple(dose for dose, _ in group), combined))
    return events


def _series_product(series: SeriesDefinition, events: list[_Event]) -> Vaccine | None:
    if not series.product_specific:
        return None
    products = [
        vaccine
        for event in events
        for dose in event.doses
        if (vaccine := get_vaccine(dose.vaccine_code)) is not None
        and vaccine.series_doses is not None
    ]
    if products:
        # If any dose was of a longer series (RotaTeq: 3), the whole series follows it.
        return max(products, key=lambda vaccine: vaccine.series_doses or 0)
    return get_vaccine(series.default_vaccine) if series.default_vaccine else None


def _dose_antigens(dose: GivenDose) -> frozenset[str]:
    vaccine = get_vaccine(dose.vaccine_code)
    return frozenset(vaccine.antigens) if vaccine is not None else frozenset()


def _count(
    rows: list[ScheduleRow],
    events: list[_Event],
    anchor: date,
    limits: Mapping[str, tuple[Duration | None, _Limit | None]],
    used: dict[str, set[str]],
) -> tuple[dict[str, tuple[_Event, tuple[GivenDose, ...]]], dict[str, list[NotCountedDose]]]:
    counted: dict[str, tuple[_Event, tuple[GivenDose, ...]]] = {}
    not_counted: dict[str, list[NotCountedDose]] = defaultdict(list)
    position = 0
    previous: date | None = None
    for event in events:
        if position >= len(rows):
            break  # doses beyond the schedule are extra, neither counted nor blamed
        row = rows[position]
        reason, missing, contributing = _rejection(
            row, event, anchor, previous, limits[row.id][0], used
        )
        if reason is not None:
            not_counted[row.id].extend(
                NotCountedDose(
                    entry_id=dose.entry_id,
                    vaccine_code=dose.vaccine_code,
                    occurrence_date=event.occurred,
                    reason=reason,
                    missing_antigens=missing,
                )
                for dose in event.doses
            )
            continue
        for dose in contributing:
            used[dose.entry_id].update(_dose_antigens(dose) & row.antigens)
        counted[row.id] = (event, contributing)
        previous = event.occurred
        position += 1
    return counted, not_counted


def _rejection(
    row: ScheduleRow,
    event: _Event,
    anchor: date,
    previous: date | None,
    max_age: Duration | None,
    used: Mapping[str, set[str]],
) -> tuple[NotCountedReason | None, tuple[str, ...], tuple[GivenDose, ...]]:
    if row.min_age is not None and event.occurred < row.min_age.after(anchor):
        return NotCountedReason.BEFORE_MINIMUM_AGE, (), ()
    if max_age is not None and event.occurred >= max_age.after(anchor):
        return NotCountedReason.PAST_MAXIMUM_AGE, (), ()
    if (
        previous is not None
        and row.min_interval is not None
        and event.occurred < row.min_interval.after(previous)
    ):
        return NotCountedReason.BEFORE_MINIMUM_INTERVAL, (), ()
    missing = row.antigens - event.antigens
    if missing:
        return NotCountedReason.MISSING_ANTIGENS, tuple(sorted(missing)), ()
    # What each dose still brings to this row once the antigens it already counts for elsewhere
    # are taken out.
    fresh = {
        dose.entry_id: (_dose_antigens(dose) & row.antigens) - used.get(dose.entry_id, set())
        for dose in event.doses
    }
    available = frozenset().union(*fresh.values())
    taken = row.antigens - available
    if taken:
        return NotCountedReason.COUNTED_FOR_ANOTHER_DOSE, tuple(sorted(taken)), ()
    contributing = tuple(dose for dose in event.doses if fresh[dose.entry_id])
    return None, (), contributing


def _duration(value: str | None) -> Duration | None:
    return Duration.parse(value) if value else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _schedule_from_data(document: Mapping[str, Any], item: Mapping[str, Any]) -> Schedule:
    series = {
        entry["series"]: SeriesDefinition(
            key=entry["series"],
            antigens=frozenset(entry["antigens"]),
            vaccines=frozenset(entry["vaccines"]) if "vaccines" in entry else None,
            product_specific=bool(entry.get("product_specific", False)),
            default_vaccine=entry.get("default_vaccine"),
        )
        for entry in item["series"]
    }
    source_ref = item.get("source_ref", "")
    rows = tuple(
        ScheduleRow(
            id=entry["id"],
            series=entry["series"],
            dose_number=int(entry["dose"]),
            antigens=frozenset(entry["antigens"]),
            name_vi=entry["name_vi"],
            name_en=entry["name_en"],
            recommended_age=_duration(entry.get("recommended_age")),
            min_age=_duration(entry.get("min_age")),
            recommended_interval=_duration(entry.get("recommended_interval")),
            min_interval=_duration(entry.get("min_interval")),
            max_age=_duration(entry.get("max_age")),
            grace=_duration(entry.get("grace")),
            due_soon_window_days=entry.get("due_soon_window_days"),
            min_product_series_doses=entry.get("min_product_series_doses"),
            confidence=entry["confidence"],
            note=entry.get("note", ""),
            max_age_confidence=entry.get("max_age_confidence"),
            catch_up_max_age=_duration(entry.get("catch_up_max_age")),
            catch_up_confidence=entry["catch_up_confidence"],
            catch_up_note=entry["catch_up_note"],
            valid_from=_date(entry.get("valid_from")),
            valid_until=_date(entry.get("valid_until")),
            source_ref=entry.get("source_ref", source_ref),
            sex=entry.get("sex"),
            provinces=frozenset(
                key for code in entry["provinces"] if (key := _province_key(code)) is not None
            ) if "provinces" in entry else None,
        )
        for entry in item["doses"]
    )
    return Schedule(
        id=item["id"],
        name_vi=item["name_vi"],
        name_en=item["name_en"],
        anchor=item["anchor"],
        version=document["version"],
        source=document["source"],
        series=series,
        rows=rows,
        default_grace=Duration.parse(document["default_grace"]),
        default_due_soon_window_days=int(document["default_due_soon_window_days"]),
        valid_from=_date(item.get("valid_from")),
        valid_until=_date(item.get("valid_until")),
        source_ref=source_ref,
        validity_confidence=item["validity_confidence"],
        validity_note=item["validity_note"],
    )


def _check_period(owner: str, start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise ValueError(f"{owner}: valid_until before valid_from")


def _check_schedule(schedule: Schedule) -> None:
    """Refuse a data file whose rows could not be evaluated consistently or lack a source."""
    if schedule.anchor not in ANCHORS:
        raise ValueError(f"{schedule.id}: anchor must be one of {ANCHORS}")
    known_antigens = antigens().keys()
    catalogue = vaccine_catalogue()
    sources = legal_sources()
    if len({row.id for row in schedule.rows}) != len(schedule.rows):
        raise ValueError(f"{schedule.id}: duplicate row ids")
    _check_period(schedule.id, schedule.valid_from, schedule.valid_until)
    if schedule.source_ref not in sources:
        raise ValueError(f"{schedule.id}: unknown source {schedule.source_ref!r}")
    if schedule.validity_confidence not in CONFIDENCE_LEVELS or not schedule.validity_note:
        raise ValueError(f"{schedule.id}: validity needs a confidence level and a note")
    for key, series in schedule.series.items():
        unknown = (series.vaccines or frozenset()) - catalogue.keys()
        if unknown or not series.antigens <= known_antigens:
            raise ValueError(f"{schedule.id}/{key}: unknown vaccines or antigens")
        if series.default_vaccine is not None and series.default_vaccine not in catalogue:
            raise ValueError(f"{schedule.id}/{key}: unknown default vaccine")
        rows = [row for row in schedule.rows if row.series == key]
        if [row.dose_number for row in rows] != list(range(1, len(rows) + 1)):
            raise ValueError(f"{schedule.id}/{key}: doses must be numbered 1..n in order")
        if any(not series.antigens <= row.antigens for row in rows):
            raise ValueError(f"{schedule.id}/{key}: a row lacks the series' antigens")
    for row in schedule.rows:
        _check_row(schedule, row, sources)


def _check_row(schedule: Schedule, row: ScheduleRow, sources: Mapping[str, LegalSource]) -> None:
    where = f"{schedule.id}/{row.id}"
    if row.series not in schedule.series:
        raise ValueError(f"{where}: unknown series")
    if row.confidence not in CONFIDENCE_LEVELS:
        raise ValueError(f"{where}: unknown confidence {row.confidence!r}")
    # Every upper age carries its source: a maximum age its confidence, every row a stated
    # catch-up limit (or the reason it has none).
    if row.max_age is not None and row.max_age_confidence not in CONFIDENCE_LEVELS:
        raise ValueError(f"{where}: max_age needs max_age_confidence")
    if row.catch_up_confidence not in CONFIDENCE_LEVELS or not row.catch_up_note:
        raise ValueError(f"{where}: catch-up limit needs a confidence level and a note")
    if row.source_ref not in sources:
        raise ValueError(f"{where}: unknown source {row.source_ref!r}")
    _check_period(where, row.valid_from, row.valid_until)
    if row.sex is not None and row.sex not in SEXES:
        raise ValueError(f"{where}: sex must be one of {SEXES}")
    if row.provinces is not None and not row.provinces:
        raise ValueError(f"{where}: provinces must list GSO province codes")


DEFAULT_SCHEDULE: Schedule = load_schedule()
