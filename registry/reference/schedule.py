"""The national immunization schedule (data) and each person's completed, due and overdue doses.

Rules (also stated in the data file): a dose is due from max(recommended age, previous dose +
recommended interval); overdue once the row's grace (default 1 month) has passed after that;
"missed" from the row's or product's maximum age on. A given dose counts for a row only if it is
on or after the minimum age, at least the minimum interval after the previous counted dose of the
same series, and contains every antigen of the row. Doses given on the same day are combined, so
a DTaP-IPV-Hib plus a hepatitis B injection count like a hexavalent dose. Only doses with status
"completed" count; entered-in-error (and not-done) doses are ignored.
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
DEFAULT_SCHEDULE_ID = "vn-epi-children-2024"
PREGNANCY_SCHEDULE_ID = "vn-epi-tetanus-pregnancy-2024"
ANCHORS = ("birth", "pregnancy")
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

    def name(self, lang: str = "vi") -> str:
        """Return the dose's name in ``lang`` ("vi" or "en")."""
        return self.name_en if lang == "en" else self.name_vi


@dataclass(frozen=True, slots=True)
class _Event:
    """The doses of one series given on one day, combined."""

    occurred: date
    doses: tuple[GivenDose, ...]
    antigens: frozenset[str]


def schedule_ids() -> tuple[str, ...]:
    """Return the ids of the schedules in the data file."""
    return tuple(item["id"] for item in load_json(SCHEDULE_FILE)["schedules"])


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
) -> list[ScheduledDoseStatus]:
    """Return the state of every scheduled dose on ``today``, in schedule order."""
    # anchor_date is required by schedules not anchored on birth: the start of the pregnancy
    # for the tetanus schedule of pregnant women.
    schedule = schedule or load_schedule()
    anchor = _anchor(schedule, date_of_birth=date_of_birth, anchor_date=anchor_date)
    counted_doses = [dose for dose in doses if dose.status == COUNTED_DOSE_STATUS]
    by_item: dict[str, ScheduledDoseStatus] = {}
    for series in schedule.series.values():
        rows = [row for row in schedule.rows if row.series == series.key]
        for result in _evaluate_series(schedule, series, rows, counted_doses, anchor, today):
            by_item[result.item_id] = result
    return [by_item[row.id] for row in schedule.rows if row.id in by_item]


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


def _anchor(schedule: Schedule, *, date_of_birth: date, anchor_date: date | None) -> date:
    if schedule.anchor == "birth":
        return date_of_birth
    if anchor_date is None:
        raise ValueError(f"schedule {schedule.id} is anchored on {schedule.anchor}: anchor_date")
    return anchor_date


def _evaluate_series(
    schedule: Schedule,
    series: SeriesDefinition,
    rows: list[ScheduleRow],
    doses: list[GivenDose],
    anchor: date,
    today: date,
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
    counted, not_counted = _count(rows, events, anchor)
    product_max_age = product.max_age if product is not None else None

    results: list[ScheduledDoseStatus] = []
    previous_date: date | None = None
    previous_completed = True
    for row in rows:
        max_age = product_max_age or row.max_age
        dates = _row_dates(schedule, row, anchor, previous_date, max_age)
        event = counted.get(row.id)
        if event is not None:
            status = DoseStatus.COMPLETED
        else:
            status = _open_status(dates, today, previous_completed=previous_completed)
        window = row.due_soon_window_days or schedule.default_due_soon_window_days
        due_soon = status is DoseStatus.UPCOMING and 0 <= (dates.due - today).days <= window
        results.append(
            _dose_status(row, status, dates, event, tuple(not_counted.get(row.id, ())), due_soon)
        )
        if event is not None:
            previous_date = event.occurred
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
    event: _Event | None,
    not_counted: tuple[NotCountedDose, ...],
    due_soon: bool,
) -> ScheduledDoseStatus:
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
        completed_entry_ids=tuple(dose.entry_id for dose in event.doses) if event else (),
        completed_vaccine_codes=tuple(dose.vaccine_code for dose in event.doses) if event else (),
        not_counted=not_counted,
        due_soon=due_soon,
    )


def _row_dates(
    schedule: Schedule,
    row: ScheduleRow,
    anchor: date,
    previous_date: date | None,
    max_age: Duration | None,
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

    # The dose is no longer given from max_age on, so the last day is the day before.
    latest = max_age.after(anchor) - _ONE_DAY if max_age is not None else None
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


def _count(
    rows: list[ScheduleRow], events: list[_Event], anchor: date
) -> tuple[dict[str, _Event], dict[str, list[NotCountedDose]]]:
    counted: dict[str, _Event] = {}
    not_counted: dict[str, list[NotCountedDose]] = defaultdict(list)
    position = 0
    previous: date | None = None
    for event in events:
        if position >= len(rows):
            break  # doses beyond the schedule are extra, neither counted nor blamed
        row = rows[position]
        reason, missing = _rejection(row, event, anchor, previous)
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
        counted[row.id] = event
        previous = event.occurred
        position += 1
    return counted, not_counted


def _rejection(
    row: ScheduleRow, event: _Event, anchor: date, previous: date | None
) -> tuple[NotCountedReason | None, tuple[str, ...]]:
    if row.min_age is not None and event.occurred < row.min_age.after(anchor):
        return NotCountedReason.BEFORE_MINIMUM_AGE, ()
    if (
        previous is not None
        and row.min_interval is not None
        and event.occurred < row.min_interval.after(previous)
    ):
        return NotCountedReason.BEFORE_MINIMUM_INTERVAL, ()
    missing = row.antigens - event.antigens
    if missing:
        return NotCountedReason.MISSING_ANTIGENS, tuple(sorted(missing))
    return None, ()


def _duration(value: str | None) -> Duration | None:
    return Duration.parse(value) if value else None


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
    )


def _check_schedule(schedule: Schedule) -> None:
    """Refuse a data file whose rows could not be evaluated consistently."""
    if schedule.anchor not in ANCHORS:
        raise ValueError(f"{schedule.id}: anchor must be one of {ANCHORS}")
    known_antigens = antigens().keys()
    catalogue = vaccine_catalogue()
    if len({row.id for row in schedule.rows}) != len(schedule.rows):
        raise ValueError(f"{schedule.id}: duplicate row ids")
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
    if any(row.series not in schedule.series for row in schedule.rows):
        raise ValueError(f"{schedule.id}: a row names an unknown series")


DEFAULT_SCHEDULE: Schedule = load_schedule()
