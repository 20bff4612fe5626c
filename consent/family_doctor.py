"""Family-doctor registration (DESIGN.md §2, §5): a relationship that opens the record.

The citizen (or their guardian in force) registers with a family doctor; so does the station
of the person's own catchment (the policy's catchment rule for stations). The practitioner must
be an active doctor or physician assistant with a current membership of the facility; the
previous registration ends and the history is kept. The decision is audited, and the change
is told to everyone whose access it changes: the person, their guardians in force, and the
new and the previous family doctor (on their staff accounts).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from consent.errors import field_problem
from consent.events import FAMILY_DOCTOR_CHANGED, tell
from consent.guardians import audience
from consent.pdp import RequestContext, citizen_exists, forget_facts, require
from consent.policy_types import Actor
from core.db import utcnow
from core.errors import NotFound
from registry.models import FamilyDoctorAssignment
from registry.services import (
    active_family_doctor,
    assign_family_doctor,
    family_doctor_history,
    family_doctor_membership,
)


def family_doctor_of(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    context: RequestContext,
    now: dt.datetime | None = None,
) -> list[FamilyDoctorAssignment]:
    """The citizen's family-doctor registrations, newest first (the active one has no end)."""
    if not citizen_exists(session, citizen_id):
        raise NotFound()  # before the decision: nothing to audit about nobody
    require(session, actor=actor, citizen_id=citizen_id, target="family-doctor", action="read",
            context=context, now=now or utcnow())
    return family_doctor_history(session=session, citizen_id=citizen_id)


def register_family_doctor(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    practitioner_id: uuid.UUID,
    facility_id: uuid.UUID,
    context: RequestContext,
    account_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> list[FamilyDoctorAssignment]:
    """Register the citizen with a family doctor at a facility; returns the history."""
    now = now or utcnow()
    if not citizen_exists(session, citizen_id):
        raise NotFound()  # before the decision: nothing to audit about nobody
    require(session, actor=actor, citizen_id=citizen_id, target="family-doctor",
            action="manage", context=context, now=now)
    if family_doctor_membership(session=session, practitioner_id=practitioner_id,
                                facility_id=facility_id) is None:
        raise field_problem("practitioner_id", "family-doctor.not-eligible")
    previous = active_family_doctor(session=session, citizen_id=citizen_id)
    unchanged = previous is not None and (previous.practitioner_id, previous.facility_id) == (
        practitioner_id, facility_id)
    if not unchanged:
        previous_doctor = previous.practitioner_id if previous is not None else None
        assign_family_doctor(session=session, citizen_id=citizen_id,
                             practitioner_id=practitioner_id, facility_id=facility_id,
                             changed_by=str(account_id or "-"), now=now)
        session.flush()
        forget_facts(session, citizen_id)
        tell(session, FAMILY_DOCTOR_CHANGED, citizen_id=citizen_id, now=now,
             citizens=audience(session, citizen_id, now=now),
             practitioners=[practitioner_id, previous_doctor],
             actor_citizen_id=actor.citizen_id, practitioner_id=practitioner_id,
             facility_id=facility_id,
             previous_practitioner_id=str(previous_doctor) if previous_doctor else None)
    return family_doctor_history(session=session, citizen_id=citizen_id)
