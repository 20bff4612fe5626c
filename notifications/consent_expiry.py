"""Consents about to expire (DESIGN §6): found by the reminder run, told once per consent and
expiry, to the audience the consent layer names for that consent.

The audience is `consent.guardians.audience` with the consent's categories: the person (an
adult, or a minor from 12), and the guardians and proxies in force who may see what the consent
names. So a teen's consent naming a restricted category is told to the teen alone, never to a
guardian (DESIGN §5: from 12 such consents belong to the teen), while the general fan-out of
`notifications.recipients` would tell every guardian.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from consent.guardians import audience
from consent.models import Consent
from core.db import utcnow
from notifications import triggers
from notifications.outbox import NotificationRequest
from notifications.quiet_hours import VIETNAM
from notifications.recipients import Recipient


@dataclass(frozen=True, slots=True)
class ExpiringConsent:
    consent_id: uuid.UUID
    citizen_id: uuid.UUID
    categories: tuple[str, ...]
    expires_at: dt.datetime


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=VIETNAM).astimezone(dt.UTC)


@functools.cache
def _expiring_query() -> Any:
    return select(Consent.id, Consent.citizen_id, Consent.categories, Consent.expires_at).where(
        Consent.citizen_id.in_(bindparam("ids", expanding=True)),
        Consent.revoked_at.is_(None),
        Consent.expires_at >= bindparam("start"),
        Consent.expires_at < bindparam("end"),
    ).order_by(Consent.citizen_id, Consent.expires_at, Consent.id)


def consents_expiring(
    session: Session, citizen_ids: Sequence[uuid.UUID], *, today: dt.date, days: int
) -> list[ExpiringConsent]:
    """Unrevoked consents of these citizens expiring from ``today`` to ``today + days``
    (Vietnam dates, both included)."""
    if not citizen_ids:
        return []
    rows = session.execute(_expiring_query(), {
        "ids": list(citizen_ids), "start": _midnight(today),
        "end": _midnight(today + dt.timedelta(days=days + 1)),
    })
    return [ExpiringConsent(consent_id=row.id, citizen_id=row.citizen_id,
                            categories=tuple(row.categories or ()), expires_at=row.expires_at)
            for row in rows]


def expiring_notices(
    session: Session, citizen_ids: Sequence[uuid.UUID], *, today: dt.date, days: int
) -> list[NotificationRequest]:
    """One `consent-expiring` notice per consent, expiry and person of its audience. The key
    holds the expiry, so a consent extended later is told again before its new end."""
    now = utcnow()  # who is in force and who is 12 now, as the notice is written
    requests: list[NotificationRequest] = []
    for consent in consents_expiring(session, citizen_ids, today=today, days=days):
        expires = consent.expires_at.astimezone(VIETNAM)  # the date people read is local
        people = audience(session, consent.citizen_id, now=now, labels=consent.categories)
        # A young child with nobody in force: the child's own inbox keeps it for later.
        for person in people or [consent.citizen_id]:
            requests.append(NotificationRequest(
                trigger=triggers.CONSENT_EXPIRING, subject_citizen_id=consent.citizen_id,
                recipient=Recipient.citizen(person),
                natural_key=f"consent:{consent.consent_id}:{expires.isoformat()}",
                params={"consent_id": str(consent.consent_id),
                        "expires_at": expires.isoformat()},
            ))
    return requests
