"""Access requests: a practitioner asks, the citizen approves (a consent) or denies.

A request naming a teen's restricted category is the teen's alone, like the consent it would
become: their guardian neither hears of it nor sees or answers it (404)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.consents import ConsentTerms, create_consent, label_of, manage, shown_to
from consent.errors import conflict, field_problem
from consent.guardians import audience
from consent.models import (
    ACCESS_LEVELS,
    REQUEST_APPROVED,
    REQUEST_DENIED,
    REQUEST_PENDING,
    AccessRequest,
)
from consent.pdp import RequestContext, citizen_exists, require
from consent.policy_types import GRANTABLE_TARGETS, RESTRICTED_LABELS, Actor
from core.db import utcnow
from core.errors import NotFound
from core.events import ACCESS_REQUEST_ANSWERED, ACCESS_REQUESTED, DomainEvent, emit

# An approval without an expiry lasts this long: a request is for one episode of care.
DEFAULT_APPROVAL = dt.timedelta(days=30)
MAX_REASON = 500


def acting_facility_of(actor: Actor, facility_id: uuid.UUID | None) -> uuid.UUID:
    """The facility a practitioner acts at: the one named (theirs), or their only one."""
    if facility_id is not None:
        if facility_id not in actor.facility_ids:
            raise field_problem("facility_id", "consent.facility-not-member")
        return facility_id
    if len(actor.facility_ids) == 1:
        return next(iter(actor.facility_ids))
    raise field_problem("facility_id", "consent.facility-required")


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise field_problem("reason", "consent.reason-required")
    if len(reason) > MAX_REASON:
        raise field_problem("reason", "consent.reason-too-long", max=MAX_REASON)
    return reason


def request_access(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    sections: frozenset[str],
    reason: str,
    context: RequestContext,
    categories: frozenset[str] = frozenset(),
    access: str = "read",
    facility_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> AccessRequest:
    """A practitioner asks the citizen for access to chosen sections, with a reason."""
    now = now or utcnow()
    # Audited under the category it names: a teen's guardian does not see it in the log.
    require(session, actor=actor, citizen_id=citizen_id, target="access-requests",
            action="create", context=context, now=now, sensitivity=label_of(categories))
    if not citizen_exists(session, citizen_id):
        raise NotFound()
    if not sections:
        raise field_problem("sections", "consent.sections-required")
    if sections - GRANTABLE_TARGETS:
        raise field_problem("sections", "consent.section-unknown",
                            names=", ".join(sorted(sections - GRANTABLE_TARGETS)))
    if categories - RESTRICTED_LABELS:
        raise field_problem("categories", "consent.category-unknown",
                            names=", ".join(sorted(categories - RESTRICTED_LABELS)))
    if access not in ACCESS_LEVELS:
        raise field_problem("access", "consent.access-unknown")
    facility = acting_facility_of(actor, facility_id)
    pending = session.scalars(
        select(AccessRequest.id).where(
            AccessRequest.citizen_id == citizen_id,
            AccessRequest.practitioner_id == actor.practitioner_id,
            AccessRequest.status == REQUEST_PENDING,
        )
    ).first()
    if pending is not None:
        # One open question at a time: a citizen is not asked (and notified) over and over.
        raise conflict("access-request-pending")
    row = AccessRequest(
        id=uuid.uuid4(), citizen_id=citizen_id, practitioner_id=actor.practitioner_id,
        facility_id=facility, sections=sorted(sections), categories=sorted(categories),
        access=access, status=REQUEST_PENDING, created_at=now, reason=_reason(reason),
    )
    session.add(row)
    # Who answers: the citizen and the guardians in force who may see what it names.
    told = audience(session, citizen_id, now=now, labels=categories)
    emit(session, DomainEvent(
        name=ACCESS_REQUESTED, citizen_id=citizen_id, occurred_at=now,
        data={"request_id": str(row.id), "practitioner_id": str(actor.practitioner_id),
              "facility_id": str(facility), "citizens": [str(c) for c in told]},
    ))
    return row


def answer_access_request(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    request_id: uuid.UUID,
    approve: bool,
    context: RequestContext,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> AccessRequest:
    """The citizen (or guardian) approves, creating a consent, or denies; once."""
    now = now or utcnow()
    row = session.get(AccessRequest, request_id)
    named = row.categories or () if row is not None and row.citizen_id == citizen_id else ()
    manage(session, actor=actor, citizen_id=citizen_id, target="access-requests",
           categories=named, context=context, now=now, hidden=NotFound())
    if row is None or row.citizen_id != citizen_id or (
            set(row.categories or ()) - shown_to(session, actor, citizen_id, now)):
        raise NotFound()
    if row.status != REQUEST_PENDING:
        raise conflict("access-request-answered")
    if approve:
        terms = ConsentTerms(
            grantee_type="practitioner", grantee_id=row.practitioner_id,
            sections=frozenset(row.sections), categories=frozenset(row.categories),
            access=row.access, expires_at=expires_at or now + DEFAULT_APPROVAL,
        )
        consent = create_consent(session, citizen_id=citizen_id, terms=terms,
                                 granted_by=actor.citizen_id, now=now,
                                 access_request_id=row.id)
        session.flush()  # no ORM relationship orders the two inserts
        row.consent_id = consent.id
    row.status = REQUEST_APPROVED if approve else REQUEST_DENIED
    row.answered_at = now
    row.answered_by_citizen_id = actor.citizen_id
    session.flush()
    emit(session, DomainEvent(
        name=ACCESS_REQUEST_ANSWERED, citizen_id=citizen_id, occurred_at=now,
        data={"request_id": str(row.id), "decision": row.status,
              "practitioner_id": str(row.practitioner_id)},
    ))
    return row


def list_citizen_requests(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    context: RequestContext,
    status: str | None = None,
    now: dt.datetime | None = None,
) -> list[AccessRequest]:
    """Requests made to the citizen, newest first (the citizen's or guardian's view)."""
    now = now or utcnow()
    require(session, actor=actor, citizen_id=citizen_id, target="access-requests",
            action="read", context=context, now=now)
    query = select(AccessRequest).where(AccessRequest.citizen_id == citizen_id)
    if status is not None:
        query = query.where(AccessRequest.status == status)
    shown = shown_to(session, actor, citizen_id, now)
    return [row for row in session.scalars(
        query.order_by(AccessRequest.created_at.desc(), AccessRequest.id)
    ) if not set(row.categories or ()) - shown]


def list_practitioner_requests(
    session: Session,
    *,
    practitioner_id: uuid.UUID,
    status: str | None = None,
    limit: int = 50,
    before: tuple[dt.datetime, uuid.UUID] | None = None,
) -> list[AccessRequest]:
    """A practitioner's own requests and their answers, newest first (keyset by time, id)."""
    query = select(AccessRequest).where(AccessRequest.practitioner_id == practitioner_id)
    if status is not None:
        query = query.where(AccessRequest.status == status)
    if before is not None:
        created, row_id = before
        query = query.where(
            (AccessRequest.created_at < created)
            | ((AccessRequest.created_at == created) & (AccessRequest.id > row_id))
        )
    query = query.order_by(AccessRequest.created_at.desc(), AccessRequest.id).limit(limit)
    return list(session.scalars(query))
