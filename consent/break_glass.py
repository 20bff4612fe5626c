"""Break-glass: emergency access to non-restricted sections, notified at once, reviewed later."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.access_requests import acting_facility_of
from consent.errors import field_problem
from consent.models import BreakGlassSession
from consent.pdp import (
    RequestContext,
    citizen_exists,
    facts_to_answer_denial,
    forget_facts,
    load_facts,
    policy_settings,
    raise_if_denied,
    record_decision,
)
from consent.policy import decide
from consent.policy_types import Actor, Decision, Target
from core.db import utcnow
from core.encryption import keyring
from core.errors import Forbidden, NotFound
from core.events import BREAK_GLASS_OPENED, DomainEvent, emit

MAX_REASON = 1000


def open_break_glass(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    reason: str,
    context: RequestContext,
    facility_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> BreakGlassSession:
    """Open an emergency window on a citizen's record; the citizen is told at once."""
    now = now or utcnow()
    reason = reason.strip()
    if not reason:
        raise field_problem("reason", "consent.reason-required")
    if len(reason) > MAX_REASON:
        raise field_problem("reason", "consent.reason-too-long", max=MAX_REASON)
    session_id = uuid.uuid4()
    facts = load_facts(session, citizen_id=citizen_id, now=now, actor=actor)
    target = Target(citizen_id=citizen_id, section="summary")
    decision = decide(actor=actor, target=target, action="break-glass", purpose="emergency",
                      facts=facts)
    reloaded = None if decision.permit else facts_to_answer_denial(session, actor, citizen_id,
                                                                   now)
    if reloaded is not None:  # a station: is the person of its catchment (403) or not (404)?
        facts = reloaded
        decision = decide(actor=actor, target=target, action="break-glass", purpose="emergency",
                          facts=facts)
    if decision.permit:
        # The audit event names the session it opened, so the access log can show the reason.
        decision = dataclasses.replace(decision, break_glass_id=session_id)
    record_decision(session, actor=actor, citizen_id=citizen_id, section="summary",
                    entry_id=None, action="break-glass", decision=decision, context=context,
                    now=now, facts=facts)
    raise_if_denied(session, decision, entry=False)
    if not citizen_exists(session, citizen_id):
        raise NotFound()
    facility = acting_facility_of(actor, facility_id)
    row = BreakGlassSession(
        id=session_id, citizen_id=citizen_id, practitioner_id=actor.practitioner_id,
        facility_id=facility, opened_at=now,
        expires_at=now + policy_settings().break_glass_window, reason=reason,
    )
    session.add(row)
    forget_facts(session, citizen_id)
    emit(session, DomainEvent(
        name=BREAK_GLASS_OPENED, citizen_id=citizen_id, occurred_at=now,
        data={"break_glass_id": str(row.id), "practitioner_id": str(actor.practitioner_id),
              "facility_id": str(facility), "expires_at": row.expires_at.isoformat()},
    ))
    return row


def _require_facility_reviewer(actor: Actor, facility_id: uuid.UUID) -> None:
    # The facility's own staff or system (station role) reviews its break-glass openings.
    if actor.role != "station" or facility_id not in actor.facility_ids:
        raise Forbidden()


def _audit_review(
    session: Session,
    *,
    actor: Actor,
    rows: list[BreakGlassSession],
    context: RequestContext,
    now: dt.datetime,
) -> None:
    """A reviewer reads reasons about citizens: each of them sees it in their access log."""
    decision = Decision(permit=True, rule="facility-review", purpose="public-health")
    for citizen_id in dict.fromkeys(row.citizen_id for row in rows):
        record_decision(session, actor=actor, citizen_id=citizen_id, section="access-log",
                        entry_id=None, action="read", decision=decision, context=context,
                        now=now)


def list_for_review(
    session: Session,
    *,
    actor: Actor,
    facility_id: uuid.UUID,
    context: RequestContext,
    unreviewed_only: bool = False,
    limit: int = 50,
    before: tuple[dt.datetime, uuid.UUID] | None = None,
    now: dt.datetime | None = None,
) -> list[BreakGlassSession]:
    """The facility's break-glass sessions, newest first, reasons decrypted for review."""
    _require_facility_reviewer(actor, facility_id)
    query = select(BreakGlassSession).where(BreakGlassSession.facility_id == facility_id)
    if unreviewed_only:
        query = query.where(BreakGlassSession.reviewed_at.is_(None))
    if before is not None:
        opened, row_id = before
        query = query.where(
            (BreakGlassSession.opened_at < opened)
            | ((BreakGlassSession.opened_at == opened) & (BreakGlassSession.id > row_id))
        )
    query = query.order_by(BreakGlassSession.opened_at.desc(), BreakGlassSession.id)
    rows = list(session.scalars(query.limit(limit)))
    keyring(session).preload(row.citizen_id for row in rows)  # one query for every key
    _audit_review(session, actor=actor, rows=rows, context=context, now=now or utcnow())
    return rows


def mark_reviewed(
    session: Session,
    *,
    actor: Actor,
    facility_id: uuid.UUID,
    break_glass_id: uuid.UUID,
    account_id: uuid.UUID | None,
    context: RequestContext,
    now: dt.datetime | None = None,
) -> BreakGlassSession:
    """Record that the facility reviewed one opening (idempotent)."""
    now = now or utcnow()
    _require_facility_reviewer(actor, facility_id)
    row = session.get(BreakGlassSession, break_glass_id)
    if row is None or row.facility_id != facility_id:
        raise NotFound()
    _audit_review(session, actor=actor, rows=[row], context=context, now=now)
    if row.reviewed_at is None:
        row.reviewed_at = now
        row.reviewed_by_account_id = account_id
    return row
