"""FHIR search over record sections: parameters, filters and paging on the JSON API's pages.

A search of a type made of several sections (Encounter: encounters and examinations;
Observation: observations, lab results, personal history) reads each section through
`RecordRepository.page` — the list's own audited decision and SQL filter, one per section —
and merges the pages in the list's order (clinical date newest first, then id; with
`_lastUpdated`, the delta-sync order: last change oldest first, then id). The `next` link's
cursor holds, per section, the position after the last entry this page examined, in the
repository's own cursor form, so every entry is examined exactly once across pages.

`date`, `code` and `category` (and `_lastUpdated` upper bounds) are applied here, over the
entries each page examined: a page may then hold fewer than `_count` entries (even none) and
still have a `next` link; paging stays exact. A section whose scope the caller is denied is
absent from a multi-section search (its denial audited); when every section is denied the
search answers as the list does (403, or 404 to a caller unrelated to the person).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.errors import BadRequest, Forbidden, Message, NotFound, Problem
from core.pagination import decode_cursor, encode_cursor
from ehr.repository import RecordRepository

if TYPE_CHECKING:
    from ehr.record_models import RecordEntry

    Matcher = Callable[[RecordEntry], bool]

MAX_COUNT = 200
DEFAULT_COUNT = 50
# How many entries of a section one page examines when filters apply in Python: larger than
# `_count` so a narrow filter fills a page in one query more often.
FILTER_SCAN = 100

_DATE = re.compile(r"^(eq|ne|ge|gt|le|lt)?(\d{4})(?:-(\d{2})(?:-(\d{2})"
                   r"(T[0-9:.]+(?:Z|[+-]\d{2}:\d{2}))?)?)?$")


@dataclass(frozen=True)
class DateRange:
    """A `date` parameter: a prefix and the period its value stands for (day precision)."""

    prefix: str
    start: dt.date
    end: dt.date

    def matches(self, day: dt.date | None) -> bool:
        if day is None:
            return False
        if self.prefix == "eq":
            return self.start <= day <= self.end
        if self.prefix == "ne":
            return not self.start <= day <= self.end
        if self.prefix == "ge":
            return day >= self.start
        if self.prefix == "gt":
            return day > self.end
        if self.prefix == "le":
            return day <= self.end
        return day < self.start  # lt

    def passed(self, day: dt.date | None) -> bool:
        """Whether, in newest-first order, nothing after `day` can match any more."""
        if day is None:
            return True  # undated entries come last and never match a date
        return (self.prefix in ("eq", "ge") and day < self.start) or (
            self.prefix == "gt" and day <= self.end)


@dataclass(frozen=True)
class InstantRange:
    """A `_lastUpdated` parameter as an interval of instants."""

    prefix: str
    start: dt.datetime
    end: dt.datetime  # exclusive

    def matches(self, stamp: dt.datetime) -> bool:
        if self.prefix in ("eq",):
            return self.start <= stamp < self.end
        if self.prefix == "ne":
            return not self.start <= stamp < self.end
        if self.prefix == "ge":
            return stamp >= self.start
        if self.prefix == "gt":
            return stamp >= self.end
        if self.prefix == "le":
            return stamp < self.end
        return stamp < self.start  # lt

    def lower(self) -> dt.datetime | None:
        """The exclusive lower bound the repository's `updated_since` can carry."""
        tick = dt.timedelta(microseconds=1)
        if self.prefix in ("eq", "ge"):
            return self.start - tick
        if self.prefix == "gt":
            return self.end - tick
        return None


def parse_date(raw: str) -> DateRange:
    match = _DATE.match(raw.strip())
    if not match:
        raise BadRequest(Message("fhir.invalid-date", value=raw[:40]), code="invalid-date")
    prefix = match.group(1) or "eq"
    year, month, day = match.group(2), match.group(3), match.group(4)
    try:
        if day:
            start = end = dt.date(int(year), int(month), int(day))
        elif month:
            start = dt.date(int(year), int(month), 1)
            end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
        else:
            start, end = dt.date(int(year), 1, 1), dt.date(int(year), 12, 31)
    except ValueError:
        raise BadRequest(Message("fhir.invalid-date", value=raw[:40]),
                         code="invalid-date") from None
    return DateRange(prefix, start, end)


def parse_instant(raw: str) -> InstantRange:
    match = _DATE.match(raw.strip())
    if not match:
        raise BadRequest(Message("fhir.invalid-date", value=raw[:40]), code="invalid-date")
    prefix = match.group(1) or "eq"
    if match.group(5):
        text = raw.strip()[len(match.group(1) or ""):]
        try:
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
        except ValueError:
            raise BadRequest(Message("fhir.invalid-date", value=raw[:40]),
                             code="invalid-date") from None
        return InstantRange(prefix, stamp, stamp + dt.timedelta(microseconds=1))
    days = parse_date(raw)
    # A date without time is a day of Viet Nam's calendar (UTC+7).
    zone = dt.timezone(dt.timedelta(hours=7))
    start = dt.datetime.combine(days.start, dt.time(), zone).astimezone(dt.UTC)
    end = dt.datetime.combine(days.end + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    return InstantRange(prefix, start, end)


@dataclass(frozen=True)
class Token:
    system: str | None  # None: any system
    code: str | None  # None: any code of the system

    @classmethod
    def parse(cls, raw: str) -> Token:
        text = raw.strip()
        if not text or len(text) > 200:
            raise BadRequest(Message("fhir.invalid-token", value=text[:40]), code="invalid-token")
        if "|" in text:
            system, code = text.split("|", 1)
            return cls(system, code or None)
        return cls(None, text)

    def matches(self, codings: Iterable[Mapping[str, Any]]) -> bool:
        for coding in codings:
            if self.system is not None and coding.get("system", "") != self.system:
                continue
            if self.code is None or str(coding.get("code", "")).upper() == self.code.upper():
                return True
        return False


def parse_tokens(raw: str) -> list[Token]:
    """`a,b` is a or b."""
    return [Token.parse(part) for part in raw.split(",")]


def parse_count(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_COUNT
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 3 or not 1 <= int(raw) <= MAX_COUNT:
        raise BadRequest(Message("fhir.invalid-count", max=MAX_COUNT), code="invalid-count")
    return int(raw)


@dataclass
class Filters:
    dates: list[DateRange] = field(default_factory=list)
    codes: list[list[Token]] = field(default_factory=list)  # AND of ORs
    categories: list[list[Token]] = field(default_factory=list)
    updated: list[InstantRange] = field(default_factory=list)

    @property
    def in_python(self) -> bool:
        return bool(self.dates or self.codes or self.categories
                    or any(r.lower() is None or r.prefix == "eq" for r in self.updated))

    def updated_since(self) -> dt.datetime | None:
        bounds = [b for b in (r.lower() for r in self.updated) if b is not None]
        return max(bounds) if bounds else None


@dataclass(frozen=True)
class SearchPage:
    entries: list[RecordEntry]
    next_state: dict[str, Any] | None  # per section: repository position, {} for its start


def search_sections(
    repository: RecordRepository, *, citizen_id: uuid.UUID, sections: tuple[str, ...],
    count: int, state: Mapping[str, Any] | None, filters: Filters,
    matches: Matcher,
) -> SearchPage:
    """One page of a search over `sections` (see the module's docstring)."""
    updated_since = filters.updated_since()
    has_updated = bool(filters.updated)
    order = "updated" if has_updated else "clinical"
    if updated_since is None and has_updated:
        # Only upper bounds: the whole delta-sync order from the beginning.
        updated_since = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    positions: dict[str, Any] = ({s: {} for s in sections} if state is None
                                 else {s: state[s] for s in sections if s in state})
    fetch = max(count, FILTER_SCAN) if filters.in_python else count
    buffers: dict[str, list[RecordEntry]] = {}
    more: dict[str, Any] = {}
    denied: list[Problem] = []
    for section, position in positions.items():
        try:
            page = repository.page(citizen_id=citizen_id, section=section, limit=fetch,
                                   position=position or None, updated_since=updated_since,
                                   include_entered_in_error=False)
        except (Forbidden, NotFound) as problem:
            if len(sections) == 1:
                raise
            denied.append(problem)  # its audit event is committed; absent from the bundle
            continue
        buffers[section] = list(page.entries)
        more[section] = page.next_position
    if not buffers and denied:
        raise _strongest(denied)
    found: list[RecordEntry] = []
    last: dict[str, RecordEntry] = {}
    finished: set[str] = set()
    while len(found) < count:
        candidates = [s for s, rows in buffers.items() if rows and s not in finished]
        if not candidates:
            break
        section = min(candidates, key=lambda s: _sort_key(buffers[s][0], order))
        # Merging is exact only while every other section with more to come has entries in
        # its buffer that could come before this one: stop at the first empty one.
        blocked = any(not buffers[s] and more.get(s) and s not in finished
                      for s in buffers if s != section)
        if blocked:
            break
        entry = buffers[section].pop(0)
        last[section] = entry
        if filters.dates and order == "clinical" and any(
                d.passed(entry.clinical_date) for d in filters.dates):
            finished.add(section)
            continue
        if matches(entry):
            found.append(entry)
    next_state: dict[str, Any] = {}
    for section in buffers:
        if section in finished:
            continue
        if buffers[section]:
            next_state[section] = (_position_of(last[section], order) if section in last
                                   else positions[section])
        elif more.get(section):
            next_state[section] = (_position_of(last[section], order) if section in last
                                   else positions[section])
    return SearchPage(entries=found, next_state=next_state or None)


def _strongest(denied: list[Problem]) -> Problem:
    # A caller unrelated to the person is told 404 by every section: the same answer here.
    return next((p for p in denied if isinstance(p, Forbidden)), denied[0])


def _sort_key(entry: RecordEntry, order: str) -> tuple[Any, ...]:
    """The repository's order as an ascending key: (updated, id) ascending for delta sync;
    clinical date newest first with undated last, then id descending."""
    if order == "updated":
        return (entry.updated_at, entry.id.int)
    day = entry.clinical_date
    return (day is None, -(day.toordinal() if day else 0), -entry.id.int)


def _position_of(entry: RecordEntry, order: str) -> dict[str, Any]:
    # The repository's own cursor positions (RecordRepository.page: next_position).
    if order == "updated":
        return {"o": "u", "t": entry.updated_at.isoformat(), "id": str(entry.id)}
    return {"o": "c", "d": entry.clinical_date.isoformat() if entry.clinical_date else None,
            "id": str(entry.id)}


def encode_state(resource_type: str, state: Mapping[str, Any]) -> str:
    return encode_cursor({"fhir": resource_type, "s": dict(state)})


def decode_state(resource_type: str, raw: str) -> dict[str, Any]:
    position = decode_cursor(raw)
    state = position.get("s")
    if position.get("fhir") != resource_type or not isinstance(state, dict):
        raise BadRequest(Message("problem.invalid-cursor.detail"), code="invalid-cursor")
    return state
