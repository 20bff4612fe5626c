"""How the record pages write dates, times, numbers, units and vaccination statuses in the
reader's language (Vietnamese: 12/03/2026, 7,1; English: 12 March 2026, 7.1).

Times are shown in Viet Nam's time (UTC+7 all year, no daylight saving), as the API's
`as_of` dates are.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import portal.record_messages  # noqa: F401 - registers the catalogue
from core.i18n import translate

VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")

# UCUM spellings as people write them.
_UNITS = {"mm[Hg]": "mmHg", "Cel": "°C", "[degF]": "°F", "kg/m2": "kg/m²"}


def today() -> dt.date:
    return dt.datetime.now(VIETNAM).date()


def _as_date(value: str | dt.date | None) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(VIETNAM).date()
    if isinstance(value, dt.date):
        return value
    try:
        if "T" in value:
            return dt.datetime.fromisoformat(value).astimezone(VIETNAM).date()
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def day(value: str | dt.date | None, lang: str) -> str:
    """A calendar date: "12/03/2026" or "12 March 2026" ("" when missing)."""
    found = _as_date(value)
    if found is None:
        return ""
    if lang == "en":
        month = translate(f"portal.record.month.{found.month}", lang)
        return f"{found.day} {month} {found.year}"
    return found.strftime("%d/%m/%Y")


def local_time(value: str | dt.datetime | None) -> dt.datetime | None:
    """An RFC 3339 instant as Viet Nam's wall-clock time."""
    if value is None or value == "":
        return None
    try:
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(VIETNAM)


def moment(value: str | dt.datetime | None, lang: str) -> str:
    """A date and time: "03/12/2026 08:30" or "3 December 2026, 08:30"."""
    local = local_time(value)
    if local is None:
        return ""
    separator = ", " if lang == "en" else " "
    return f"{day(local.date(), lang)}{separator}{local:%H:%M}"


def number(value: Any, lang: str) -> str:
    """7.1 -> "7,1" in Vietnamese; whole numbers without decimals (138.0 -> "138")."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "" if value is None else str(value)
    text = f"{value:.2f}".rstrip("0").rstrip(".") if not float(value).is_integer() \
        else str(int(value))
    return text.replace(".", ",") if lang == "vi" else text


def unit(value: str | None, lang: str) -> str:
    if not value:
        return ""
    if value == "/min":
        return translate("portal.record.unit.per-minute", lang)
    return _UNITS.get(value, value)


def observation_value(data: dict[str, Any], lang: str) -> str:
    """"138/86 mmHg", "7,1 mmol/L"."""
    if data.get("kind") == "blood-pressure":
        return (f"{number(data.get('systolic'), lang)}/{number(data.get('diastolic'), lang)} "
                f"{unit(data.get('unit') or 'mm[Hg]', lang)}")
    return f"{number(data.get('value'), lang)} {unit(data.get('unit'), lang)}".strip()


# --- vaccination statuses in words ------------------------------------------------------------

STATUS_CLASSES = {"overdue": "overdue", "due": "due", "completed": "ok", "missed": "overdue",
                  "upcoming": "muted"}


def dose_words(dose: dict[str, Any], lang: str) -> str:
    """Where a scheduled dose stands, with its date: "Quá hạn từ 10/11/2026"."""
    status = dose.get("status")
    if status == "overdue":
        return translate("portal.record.dose.overdue", lang,
                         date=day(dose.get("overdue_date"), lang))
    if status == "due":
        return translate("portal.record.dose.due", lang,
                         date=day(dose.get("overdue_date"), lang))
    if status == "completed":
        return translate("portal.record.dose.completed", lang,
                         date=day(dose.get("completed_date"), lang))
    if status == "missed":
        if dose.get("latest_date"):
            return translate("portal.record.dose.missed", lang,
                             date=day(dose.get("latest_date"), lang))
        return str(dose.get("status_label") or "")
    if dose.get("due_soon"):
        return translate("portal.record.dose.due-soon", lang, date=day(dose.get("due_date"), lang))
    return translate("portal.record.dose.upcoming", lang, date=day(dose.get("due_date"), lang))


NOT_COUNTED_REASONS = ("before-minimum-age", "before-minimum-interval", "missing-antigens",
                       "past-maximum-age", "counted-for-another-dose", "unverified")


def not_counted_words(item: dict[str, Any], lang: str) -> str:
    """Why a recorded dose does not count for a scheduled one, in a sentence."""
    reason = item.get("reason")
    key = reason if reason in NOT_COUNTED_REASONS else "other"
    return translate(f"portal.record.not-counted.{key}", lang,
                     date=day(item.get("occurrence_date"), lang))
