"""Quiet hours in Vietnam's time: when a non-urgent message must wait, and until when."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    VIETNAM: dt.tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except (ImportError, ZoneInfoNotFoundError):  # pragma: no cover - a system without tzdata
    # Vietnam has kept UTC+7 without daylight saving since 1975.
    VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window [start, end) in local time; it may wrap past midnight."""

    start: dt.time
    end: dt.time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: dt.datetime) -> bool:
        """Whether the aware ``moment`` falls inside the window."""
        local = moment.astimezone(VIETNAM).time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def release_at(self, moment: dt.datetime) -> dt.datetime:
        """When a message held at ``moment`` may go: the window's end (UTC), or ``moment``."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(VIETNAM)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += dt.timedelta(days=1)
        return end.astimezone(dt.UTC)


def parse_quiet_hours(raw: str | None) -> QuietHours | None:
    """Parse "21:00-07:00"; an empty value means no quiet hours. ValueError when malformed."""
    value = (raw or "").strip()
    if not value:
        return None
    match = _WINDOW.fullmatch(value)
    if match is None:
        raise ValueError("quiet hours must look like 21:00-07:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = dt.time(h1, m1), dt.time(h2, m2)
    if start == end:
        raise ValueError("quiet hours must not start and end at the same time")
    return QuietHours(start, end)
