"""Domain events of relationship changes (core/events.py carries the mechanism).

Every change of who may act on a record (a guardianship or proxy, a claim of a child, a
family-doctor registration, a consent, the review of a flag) is emitted in the transaction of
the change, with the audience the consent layer computed from the policy: `citizens` (citizen
ids: the person, from 12 for a minor, and the guardians in force who may see what changed) and
`practitioners` (practitioner ids, told on their staff accounts). The acting person is left
out. notifications/handlers.py turns them into outbox rows; consent never imports it.
Data: ids and codes only, never personal values.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from core.events import DomainEvent, emit

# data: claim_id, claimant_citizen_id, citizens
GUARDIAN_CLAIMED = "consent.guardian-claimed"
# data: claim_id, decision (approved|denied), citizens (the claimant)
GUARDIAN_CLAIM_ANSWERED = "consent.guardian-claim-answered"
# data: guardianship_id, change (added|ended), kind (minor|proxy), citizens
GUARDIANS_CHANGED = "consent.guardians-changed"
# data: practitioner_id, facility_id, previous_practitioner_id, citizens, practitioners
FAMILY_DOCTOR_CHANGED = "consent.family-doctor-changed"
# data: consent_id, citizens, practitioners
CONSENT_GRANTED = "consent.consent-granted"
CONSENT_REVOKED = "consent.consent-revoked"
# data: flag_id, event_id, outcome, citizens
ACCESS_FLAG_REVIEWED = "consent.access-flag-reviewed"

RELATIONSHIP_EVENTS = (GUARDIAN_CLAIMED, GUARDIAN_CLAIM_ANSWERED, GUARDIANS_CHANGED,
                       FAMILY_DOCTOR_CHANGED, CONSENT_GRANTED, CONSENT_REVOKED,
                       ACCESS_FLAG_REVIEWED)


def _ids(values: Iterable[uuid.UUID | None], leave_out: uuid.UUID | None) -> list[str]:
    return [str(v) for v in dict.fromkeys(values) if v is not None and v != leave_out]


def tell(
    session: Session,
    name: str,
    *,
    citizen_id: uuid.UUID,
    now: dt.datetime,
    citizens: Iterable[uuid.UUID | None] = (),
    practitioners: Iterable[uuid.UUID | None] = (),
    actor_citizen_id: uuid.UUID | None = None,
    **data: Any,
) -> None:
    """Emit a relationship event about `citizen_id` for this audience (the actor left out)."""
    payload = {key: (str(value) if isinstance(value, uuid.UUID) else value)
               for key, value in data.items()}
    payload["citizens"] = _ids(citizens, actor_citizen_id)
    payload["practitioners"] = _ids(practitioners, None)
    emit(session, DomainEvent(name=name, citizen_id=citizen_id, data=payload, occurred_at=now))
