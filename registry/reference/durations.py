"""Calendar durations ("P2M", "P6W", "P1Y") used by the schedule data for ages and intervals."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

_ISO_DATE_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")


@dataclass(frozen=True, slots=True)
class Duration:
    """A date-based ISO 8601 duration: whole years, months, weeks and days."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse "P1Y", "P2M", "P6W", "P28D", "P1Y6M" (no time part, no negatives)."""
        match = _ISO_DATE_DURATION.match(text)
        if match is None or text == "P":
            raise ValueError(f"not a date duration: {text!r}")
        years, months, weeks, days = (int(group or 0) for group in match.groups())
        return cls(years=years, months=months, weeks=weeks, days=days)

    def after(self, start: date) -> date:
        """Return the date this duration after ``start`` (calendar months, end-of-month clamped)."""
        # A commune's worklist asks this ~100,000 times for a few thousand distinct pairs.
        return _after(self, start)

    def __str__(self) -> str:
        parts = [(self.years, "Y"), (self.months, "M"), (self.weeks, "W"), (self.days, "D")]
        text = "".join(f"{value}{unit}" for value, unit in parts if value)
        return f"P{text or '0D'}"


@lru_cache(maxsize=65_536)
def _after(duration: Duration, start: date) -> date:
    # "Fully 2 months old" counts calendar months: born 31 Dec -> 28/29 Feb, as people count.
    total_months = start.month - 1 + duration.months + 12 * duration.years
    year = start.year + total_months // 12
    month = total_months % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day) + timedelta(weeks=duration.weeks, days=duration.days)
