"""What push, SMS and e-mail say: generic words, except the vaccination SMS.

Push payloads and e-mails travel through third parties and show on lock screens, so they carry
no health details, names or ids (DESIGN §6); the app fetches the details over the authenticated
API. The one exception is the vaccination reminder by SMS: many parents in rural communes have
no app to open, so "open the app" tells them nothing. That SMS says what to do (the date, the
station, bring the child and the vaccination book) and still names nobody and no vaccine: a
date and a public facility name say no more than that some child of this phone is due at the
commune station.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

from core.i18n import translate
from notifications.triggers import EMAIL, PUSH, SMS

STAGE_OVERDUE = "overdue"

# GSM 03.38 basic character set: a message made only of these is 160 characters a segment
# (one character outside it makes the whole message UCS-2, 70 a segment).
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_PLAIN_LETTERS = str.maketrans({"đ": "d", "Đ": "D"})


def gsm7(text: str) -> str:
    """The text without Vietnamese diacritics (the carriers' brand-name convention), and any
    character still outside the GSM-7 basic set dropped."""
    decomposed = unicodedata.normalize("NFD", text.translate(_PLAIN_LETTERS))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join("".join(ch for ch in plain if ch in _GSM7).split())


@dataclass(frozen=True, slots=True)
class VisitNotice:
    """What a vaccination SMS may say: when, at which station, and whether it is late."""

    due_date: dt.date
    stage: str
    station: str | None = None


def _sms_date(day: dt.date, language: str) -> str:
    return f"{day.day} {day:%b} {day.year}" if language == "en" else f"{day:%d/%m/%Y}"


def visit_sms(visit: VisitNotice, *, language: str) -> str:
    """The vaccination SMS in one language, GSM-7 only."""
    station = gsm7(visit.station) if visit.station else ""
    where = (translate("notification.sms.visit.at", language, station=station) if station
             else translate("notification.sms.visit.at-station", language))
    key = "overdue" if visit.stage == STAGE_OVERDUE else "due"
    return gsm7(translate(f"notification.sms.visit.{key}", language,
                          date=_sms_date(visit.due_date, language), where=where))


def channel_texts(
    channel: str, *, language: str, urgent: bool, link: str, visit: VisitNotice | None = None,
) -> tuple[str, str]:
    """(title, body) for one channel in one language; ``visit`` only shapes an SMS."""
    suffix = ".urgent" if urgent else ""
    if channel == PUSH:
        return (
            translate("notification.push.title", language),
            translate("notification.push.body" + suffix, language),
        )
    if channel == SMS:
        if visit is not None:
            return "", visit_sms(visit, language=language)
        return "", translate("notification.sms.body" + suffix, language)
    if channel == EMAIL:
        return (
            translate("notification.email.subject" + suffix, language),
            translate("notification.email.body", language, link=link or "-"),
        )
    raise ValueError(f"unknown channel {channel!r}")
