"""Guardians of minors and proxies of adults (DESIGN.md §5 "Relationships are the perimeter").

A guardianship opens a record, so it comes into force only by someone who may vouch for it:
the child's own commune station (station staff saw the papers; the policy's catchment rule),
a guardian in force (approving from their phone), or the newborn's registration naming the
parent. Knowing a child's health ID and birth date proves nothing (relatives and neighbours
hold the papers that print them): `claim_dependant` records a *pending* claim, tells the
child's guardians (and the child from 12), and opens nothing until one of them, or the
station, approves it.

Every creation and ending goes through `_create` / `_end`, which write the row, its domain
event and (through the decision point, by the caller) its audit event in one transaction.
Whether a guardianship is in force is the policy's question (revocation, validity, the age
limit, from the dependant's birth date): the helpers here ask it rather than repeat it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from consent.errors import conflict, field_problem
from consent.events import GUARDIAN_CLAIM_ANSWERED, GUARDIAN_CLAIMED, GUARDIANS_CHANGED, tell
from consent.models import (
    GUARDIAN_KINDS,
    REQUEST_APPROVED,
    REQUEST_DENIED,
    REQUEST_PENDING,
    GuardianClaim,
    GuardianClaimFailure,
)
from consent.models import Guardianship as GuardianshipRow
from consent.pdp import (
    RequestContext,
    citizen_exists,
    forget_facts,
    load_guardian_facts,
    policy_settings,
    preload_facts,
    record_decision,
    require,
    visible_labels,
)
from consent.policy import birthday, decide
from consent.policy_types import (
    RESTRICTED_LABELS,
    Actor,
    Decision,
    Facts,
    Guardianship,
    PolicySettings,
    Target,
)
from core.db import utcnow
from core.encryption import ERASED, keyring
from core.errors import Forbidden, NotFound, TooManyRequests
from registry.models import Citizen
from registry.services import find_citizen_by_health_id

RELATIONSHIPS = (
    "mother", "father", "parent", "grandparent", "sibling", "legal-guardian", "spouse",
    "child", "relative", "other",
)
MAX_CLAIM_FAILURES_PER_DAY = 5
MAX_END_REASON = 500
ADDED, ENDED = "added", "ended"


@dataclass(frozen=True)
class PersonRef:
    """Who is meant: by internal id (staff who looked them up), or health ID + birth date."""

    citizen_id: uuid.UUID | None = None
    health_id: str | None = None
    date_of_birth: dt.date | None = None


@dataclass(frozen=True)
class GuardianView:
    row: GuardianshipRow
    status: str  # "active" or the rule that ended it (guardian-revoked, guardian-age-limit...)
    guardian_name: Any = None
    dependant_name: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimView:
    row: GuardianClaim
    claimant_name: Any = None


def _policy_guardianship(row: GuardianshipRow) -> Guardianship:
    return Guardianship(
        guardian_citizen_id=row.guardian_citizen_id,
        dependant_citizen_id=row.dependant_citizen_id, kind=row.kind,
        valid_from=row.valid_from, valid_until=row.valid_until, revoked_at=row.revoked_at,
        categories=frozenset(row.categories or ()),
    )


def in_force(guardianship: Guardianship, facts: Facts) -> Decision:
    """Whether the guardian may act for the dependant now (permit), or the rule that ends it."""
    actor = Actor(role="citizen", citizen_id=guardianship.guardian_citizen_id,
                  acting_for=guardianship.dependant_citizen_id)
    held = Facts(citizen_id=facts.citizen_id, now=facts.now,
                 citizen_birth_date=facts.citizen_birth_date, guardianships=(guardianship,),
                 settings=facts.settings)
    return decide(actor=actor, target=Target(citizen_id=facts.citizen_id, section="summary"),
                  action="read", facts=held)


def _is_minor(birth_date: dt.date | None, now: dt.datetime, settings: PolicySettings) -> bool:
    if birth_date is None:
        return False
    today = now.astimezone(settings.local_timezone).date()
    return today < birthday(birth_date, settings.guardian_age_limit)


def _birth_date(citizen: Citizen) -> dt.date | None:
    value = citizen.date_of_birth
    return None if value is ERASED else value


# --- who hears about a change ---------------------------------------------------------------


def guardians_in_force(session: Session, citizen_id: uuid.UUID,
                       now: dt.datetime) -> list[uuid.UUID]:
    """The citizens who may act for `citizen_id` now (guardians and proxies in force)."""
    facts = load_guardian_facts(session, citizen_id=citizen_id, now=now)
    return list(dict.fromkeys(
        g.guardian_citizen_id for g in facts.guardianships if in_force(g, facts).permit))


def speaks_for_themselves(facts: Facts) -> bool:
    """Whether relationship notices about this person go to them: an adult, or a minor from
    the teen privacy age (12); a younger child's notices go to the guardians alone."""
    born = facts.citizen_birth_date
    if born is None:
        return True
    return facts.local_today >= birthday(born, facts.settings.teen_privacy_age)


def audience(
    session: Session,
    citizen_id: uuid.UUID,
    *,
    now: dt.datetime,
    labels: Iterable[str] = (),
    also: Iterable[uuid.UUID | None] = (),
) -> list[uuid.UUID]:
    """Whose access a relationship change of this citizen concerns: the person (an adult, or
    a minor from 12), the guardians and proxies in force who may see what it names (a consent
    naming a teen's restricted category is the teen's alone), and `also`."""
    facts = load_guardian_facts(session, citizen_id=citizen_id, now=now)
    people: list[uuid.UUID] = [citizen_id] if speaks_for_themselves(facts) else []
    named = frozenset(labels) & RESTRICTED_LABELS
    for guardian in guardians_in_force(session, citizen_id, now):
        if named:
            viewer = Actor(role="citizen", citizen_id=guardian, acting_for=citizen_id)
            if named - visible_labels(session, actor=viewer, citizen_id=citizen_id, now=now):
                continue
        people.append(guardian)
    people.extend(person for person in also if person is not None)
    return list(dict.fromkeys(people))


# --- creating and ending --------------------------------------------------------------------


def _resolve(session: Session, actor: Actor, ref: PersonRef, field_name: str) -> Citizen:
    """The guardian named by the request; citizens must name them by health ID and birth date."""
    citizen: Citizen | None = None
    if ref.citizen_id is not None:
        if actor.role == "citizen":
            raise field_problem(field_name, "guardian.name-by-health-id")
        citizen = session.get(Citizen, ref.citizen_id)
    elif ref.health_id:
        citizen = find_citizen_by_health_id(session=session, health_id=ref.health_id)
        needs_birth_date = actor.role == "citizen" or ref.date_of_birth is not None
        if citizen is not None and needs_birth_date and (
            ref.date_of_birth is None or _birth_date(citizen) != ref.date_of_birth
        ):
            citizen = None
    if citizen is None:
        raise field_problem(field_name, "guardian.person-not-matched")
    return citizen


def add_guardian(
    session: Session,
    *,
    actor: Actor,
    dependant_id: uuid.UUID,
    guardian: PersonRef,
    kind: str,
    relationship: str,
    context: RequestContext,
    categories: frozenset[str] = frozenset(),
    account_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
    field_name: str = "guardian",
) -> GuardianshipRow:
    """Register a guardian for a minor (the child's commune station, or a guardian in force for
    their child) or a proxy an adult names for themselves. The policy decides who may (a
    station only for people of its catchment) and audits the decision."""
    now = now or utcnow()
    require(session, actor=actor, citizen_id=dependant_id, target="guardians", action="manage",
            context=context, now=now)
    dependant = session.get(Citizen, dependant_id)
    if dependant is None:
        raise NotFound()
    if kind not in GUARDIAN_KINDS:
        raise field_problem("kind", "guardian.kind-unknown")
    if relationship not in RELATIONSHIPS:
        raise field_problem("relationship", "guardian.relationship-unknown")
    settings = policy_settings()
    minor = _is_minor(_birth_date(dependant), now, settings)
    acting_for_self = actor.role == "citizen" and actor.citizen_id == dependant_id
    if kind == "minor" and not minor:
        raise field_problem("kind", "guardian.dependant-not-minor",
                            age=settings.guardian_age_limit)
    if kind == "proxy" and not (acting_for_self and not minor):
        raise field_problem("kind", "guardian.proxy-by-self-only")
    if categories and kind != "proxy":
        raise field_problem("categories", "guardian.categories-proxy-only")
    if categories - RESTRICTED_LABELS:
        raise field_problem("categories", "consent.category-unknown",
                            names=", ".join(sorted(categories - RESTRICTED_LABELS)))
    person = _resolve(session, actor, guardian, field_name)
    if person.id == dependant_id:
        raise field_problem(field_name, "guardian.self")
    via = "station" if actor.role == "station" else ("citizen" if acting_for_self else "guardian")
    return _create(session, actor=actor, guardian_id=person.id, dependant_id=dependant_id,
                   kind=kind, relationship=relationship, categories=categories, via=via,
                   account_id=account_id, now=now)


def _acting_facility(actor: Actor) -> uuid.UUID | None:
    return min(actor.facility_ids) if actor.role == "station" and actor.facility_ids else None


def _create(
    session: Session,
    *,
    actor: Actor,
    guardian_id: uuid.UUID,
    dependant_id: uuid.UUID,
    kind: str,
    relationship: str,
    categories: frozenset[str],
    via: str,
    account_id: uuid.UUID | None,
    now: dt.datetime,
    told_elsewhere: frozenset[uuid.UUID] = frozenset(),
) -> GuardianshipRow:
    """The one way a guardianship comes into being: the row and the notice to everyone whose
    access it changes (the caller's decision already wrote the audit event)."""
    existing = session.scalars(
        select(GuardianshipRow.id).where(
            GuardianshipRow.guardian_citizen_id == guardian_id,
            GuardianshipRow.dependant_citizen_id == dependant_id,
            GuardianshipRow.revoked_at.is_(None),
        )
    ).first()
    if existing is not None:
        raise conflict("guardian-exists")
    row = GuardianshipRow(
        id=uuid.uuid4(), guardian_citizen_id=guardian_id, dependant_citizen_id=dependant_id,
        kind=kind, relationship=relationship, categories=sorted(categories), valid_from=now,
        created_via=via, created_by_account_id=account_id,
        created_by_facility_id=_acting_facility(actor) if via == "station" else None,
        created_at=now,
    )
    session.add(row)
    forget_facts(session, dependant_id)
    told = [person for person in audience(session, dependant_id, now=now, also=[guardian_id])
            if person not in told_elsewhere]
    tell(session, GUARDIANS_CHANGED, citizen_id=dependant_id, now=now, citizens=told,
         actor_citizen_id=actor.citizen_id, guardianship_id=row.id, change=ADDED, kind=kind)
    return row


def _end(
    session: Session,
    *,
    actor: Actor,
    row: GuardianshipRow,
    account_id: uuid.UUID | None,
    reason: str | None,
    now: dt.datetime,
) -> None:
    """The one way a guardianship ends early: who ended it, why (encrypted), and the notice
    to the guardian, the other guardians in force and the person."""
    told = audience(session, row.dependant_citizen_id, now=now, also=[row.guardian_citizen_id])
    row.revoked_at = now
    row.revoked_by_account_id = account_id
    row.revoked_by_citizen_id = actor.citizen_id if actor.role == "citizen" else None
    row.revoked_by_facility_id = _acting_facility(actor)
    if reason:
        row.end_reason = reason
    forget_facts(session, row.dependant_citizen_id)
    tell(session, GUARDIANS_CHANGED, citizen_id=row.dependant_citizen_id, now=now,
         citizens=told, actor_citizen_id=actor.citizen_id, guardianship_id=row.id,
         change=ENDED, kind=row.kind)


def _clean_reason(reason: str | None) -> str | None:
    reason = (reason or "").strip()
    if len(reason) > MAX_END_REASON:
        raise field_problem("reason", "consent.reason-too-long", max=MAX_END_REASON)
    return reason or None


def revoke_guardian(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    guardianship_id: uuid.UUID,
    context: RequestContext,
    account_id: uuid.UUID | None = None,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> GuardianshipRow:
    """End a guardianship now: by the adult dependant, a guardian of the minor, the station of
    the person's catchment (always with a reason, which the guardians are told), or the
    guardian themselves stepping down."""
    now = now or utcnow()
    reason = _clean_reason(reason)
    row = session.get(GuardianshipRow, guardianship_id)
    stepping_down = (
        row is not None and actor.role == "citizen"
        and actor.citizen_id == row.guardian_citizen_id and row.dependant_citizen_id == citizen_id
    )
    if stepping_down:
        record_decision(
            session, actor=actor, citizen_id=citizen_id, section="guardians", entry_id=None,
            action="manage", context=context, now=now,
            decision=Decision(permit=True, rule="guardian-step-down", purpose="guardian",
                              related=True),
        )
    else:
        require(session, actor=actor, citizen_id=citizen_id, target="guardians",
                action="manage", context=context, now=now)
    if row is None or row.dependant_citizen_id != citizen_id:
        raise NotFound()
    if row.revoked_at is None:
        if actor.role == "station" and reason is None:
            # Ending a family's guardianship at the counter must say why, to the family.
            raise field_problem("reason", "guardian.end-reason-required")
        _end(session, actor=actor, row=row, account_id=account_id, reason=reason, now=now)
    return row


def read_guardianship(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    guardianship_id: uuid.UUID,
    context: RequestContext,
    now: dt.datetime | None = None,
) -> GuardianView:
    """One guardianship with its status and why it ended: for whoever may read the person's
    guardians, and for the guardian it names (their own relationship, ended or not)."""
    now = now or utcnow()
    row = session.get(GuardianshipRow, guardianship_id)
    own = (row is not None and actor.role == "citizen" and row.dependant_citizen_id == citizen_id
           and actor.citizen_id == row.guardian_citizen_id)
    if own:
        record_decision(
            session, actor=actor, citizen_id=citizen_id, section="guardians", entry_id=None,
            action="read", context=context, now=now,
            decision=Decision(permit=True, rule="own-guardianship", purpose="guardian",
                              related=True))
    else:
        require(session, actor=actor, citizen_id=citizen_id, target="guardians",
                action="read", context=context, now=now)
    if row is None or row.dependant_citizen_id != citizen_id:
        raise NotFound()
    return describe_guardianship(session, row, now)


def list_guardians(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    context: RequestContext,
    include_ended: bool = False,
    now: dt.datetime | None = None,
) -> list[GuardianView]:
    """The citizen's guardians and proxies with their status, names decrypted."""
    now = now or utcnow()
    require(session, actor=actor, citizen_id=citizen_id, target="guardians", action="read",
            context=context, now=now)
    if not citizen_exists(session, citizen_id):
        raise NotFound()
    facts = load_guardian_facts(session, citizen_id=citizen_id, now=now)
    rows = list(session.scalars(
        select(GuardianshipRow).where(GuardianshipRow.dependant_citizen_id == citizen_id)
        .order_by(GuardianshipRow.created_at.desc(), GuardianshipRow.id)
    ))
    keyring(session).preload({citizen_id, *(row.guardian_citizen_id for row in rows)})
    people = _citizens(session, {row.guardian_citizen_id for row in rows})
    views = []
    for row in rows:
        decision = in_force(_policy_guardianship(row), facts)
        status = "active" if decision.permit else decision.rule
        if include_ended or status == "active":
            views.append(GuardianView(row=row, status=status,
                                      guardian_name=_name(people, row.guardian_citizen_id)))
    return views


def describe_guardianship(
    session: Session, row: GuardianshipRow, now: dt.datetime | None = None
) -> GuardianView:
    """One guardianship with its status and the guardian's name (after a change)."""
    now = now or utcnow()
    forget_facts(session, row.dependant_citizen_id)
    facts = load_guardian_facts(session, citizen_id=row.dependant_citizen_id, now=now)
    decision = in_force(_policy_guardianship(row), facts)
    people = _citizens(session, {row.guardian_citizen_id})
    return GuardianView(row=row, status="active" if decision.permit else decision.rule,
                        guardian_name=_name(people, row.guardian_citizen_id))


def end_reason(row: GuardianshipRow) -> str | None:
    """Why the guardianship was ended (None when no reason was given, or it was erased)."""
    if row.end_reason_ct is None:
        return None
    value = row.end_reason
    return None if value is ERASED else value


# --- the newborn's registration --------------------------------------------------------------


@dataclass(frozen=True)
class NamedParent:
    """A parent named on a newborn's registration: by health ID and birth date, as on the
    papers the station saw."""

    health_id: str
    date_of_birth: dt.date
    relationship: str


def name_parents_at_registration(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    parents: list[NamedParent],
    context: RequestContext,
    account_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> list[GuardianshipRow]:
    """The guardians a station names when it registers a newborn (the birth papers in hand):
    in force at once, since the station that registered the child serves them."""
    if not parents:
        return []
    if actor.role != "station":
        raise field_problem("guardians", "guardian.registration-station-only")
    forget_facts(session, citizen_id)  # the person exists now: their catchment is new
    for index, parent in enumerate(parents):
        if parent.relationship not in RELATIONSHIPS:
            raise field_problem(f"guardians.{index}.relationship",
                                "guardian.relationship-unknown")
    rows = []
    for index, parent in enumerate(parents):
        rows.append(add_guardian(
            session, actor=actor, dependant_id=citizen_id,
            guardian=PersonRef(health_id=parent.health_id, date_of_birth=parent.date_of_birth),
            kind="minor", relationship=parent.relationship, context=context,
            account_id=account_id, now=now, field_name=f"guardians.{index}",
        ))
    return rows


# --- claims of a child by health ID and birth date --------------------------------------------


def claim_dependant(
    session: Session,
    *,
    actor: Actor,
    health_id: str,
    date_of_birth: dt.date,
    relationship: str,
    context: RequestContext,
    account_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> GuardianClaim:
    """A citizen asks to become guardian of their child, proving the child's health ID and
    birth date (as on the birth certificate). The claim opens nothing: it waits for a guardian
    in force or the child's commune station, and they (and the child from 12) are told. Failed
    proofs are limited per day and audited on the child's record, where the guardians see
    them."""
    now = now or utcnow()
    claimant = actor.citizen_id
    if actor.role != "citizen" or claimant is None or actor.acting_for not in (None, claimant):
        raise Forbidden()
    if relationship not in RELATIONSHIPS:
        raise field_problem("relationship", "guardian.relationship-unknown")
    day = now.astimezone(policy_settings().local_timezone).date()
    _refuse_when_throttled(session, claimant, day)
    child = find_citizen_by_health_id(session=session, health_id=health_id)
    matched = child is not None and _birth_date(child) == date_of_birth
    if child is not None:
        decision = Decision(permit=matched,
                            rule="guardian-claim" if matched else "guardian-claim-mismatch",
                            purpose="guardian")
        record_decision(session, actor=Actor(role="citizen", citizen_id=claimant),
                        citizen_id=child.id, section="guardians", entry_id=None,
                        action="manage", decision=decision, context=context, now=now)
    if child is None or not matched:
        _count_failure(session, claimant, day)
        session.commit()  # the failure (and its audit event) must outlive the 422
        raise field_problem("health_id", "guardian.person-not-matched")
    if child.id == claimant:
        raise field_problem("health_id", "guardian.self")
    if not _is_minor(_birth_date(child), now, policy_settings()):
        raise field_problem("health_id", "guardian.dependant-not-minor",
                            age=policy_settings().guardian_age_limit)
    if claimant in guardians_in_force(session, child.id, now):
        raise conflict("guardian-exists")
    pending = session.scalars(select(GuardianClaim.id).where(
        GuardianClaim.claimant_citizen_id == claimant,
        GuardianClaim.dependant_citizen_id == child.id,
        GuardianClaim.status == REQUEST_PENDING,
    )).first()
    if pending is not None:
        raise conflict("guardian-claim-pending")
    row = GuardianClaim(
        id=uuid.uuid4(), dependant_citizen_id=child.id, claimant_citizen_id=claimant,
        relationship=relationship, status=REQUEST_PENDING, claimant_account_id=account_id,
        created_at=now,
    )
    session.add(row)
    told = audience(session, child.id, now=now)
    tell(session, GUARDIAN_CLAIMED, citizen_id=child.id, now=now, citizens=told,
         actor_citizen_id=claimant, claim_id=row.id, claimant_citizen_id=claimant)
    return row


def list_claims(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    context: RequestContext,
    status: str | None = None,
    now: dt.datetime | None = None,
) -> list[ClaimView]:
    """Claims to be this child's guardian, newest first: for the guardians, the child's
    station, and the child."""
    now = now or utcnow()
    require(session, actor=actor, citizen_id=citizen_id, target="guardians", action="read",
            context=context, now=now)
    if not citizen_exists(session, citizen_id):
        raise NotFound()
    query = select(GuardianClaim).where(GuardianClaim.dependant_citizen_id == citizen_id)
    if status is not None:
        query = query.where(GuardianClaim.status == status)
    rows = list(session.scalars(
        query.order_by(GuardianClaim.created_at.desc(), GuardianClaim.id)))
    return claim_views(session, rows)


def read_claim(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    claim_id: uuid.UUID,
    context: RequestContext,
    now: dt.datetime | None = None,
) -> ClaimView:
    """One claim: for those who may read the child's guardians, and for the claimant (their
    own claim's status; nothing about the child)."""
    now = now or utcnow()
    row = session.get(GuardianClaim, claim_id)
    own = (row is not None and actor.role == "citizen" and row.dependant_citizen_id == citizen_id
           and actor.citizen_id == row.claimant_citizen_id)
    if own:
        record_decision(
            session, actor=Actor(role="citizen", citizen_id=actor.citizen_id),
            citizen_id=citizen_id, section="guardians", entry_id=None, action="read",
            context=context, now=now,
            decision=Decision(permit=True, rule="own-claim", purpose="guardian"))
    else:
        require(session, actor=actor, citizen_id=citizen_id, target="guardians",
                action="read", context=context, now=now)
    if row is None or row.dependant_citizen_id != citizen_id:
        raise NotFound()
    return claim_views(session, [row])[0]


def answer_claim(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    claim_id: uuid.UUID,
    approve: bool,
    context: RequestContext,
    account_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> ClaimView:
    """A guardian in force (from their phone) or the child's commune station (papers seen)
    approves, which brings the guardianship into force, or denies; once. The claimant is told
    either way."""
    now = now or utcnow()
    require(session, actor=actor, citizen_id=citizen_id, target="guardians", action="manage",
            context=context, now=now)
    row = session.get(GuardianClaim, claim_id)
    if row is None or row.dependant_citizen_id != citizen_id:
        raise NotFound()
    if row.status != REQUEST_PENDING:
        raise conflict("guardian-claim-answered")
    if approve:
        child = session.get(Citizen, citizen_id)
        settings = policy_settings()
        if child is None or not _is_minor(_birth_date(child), now, settings):
            raise conflict("guardian-claim-not-minor")
        via = "station" if actor.role == "station" else "guardian"
        guardianship = _create(
            session, actor=actor, guardian_id=row.claimant_citizen_id, dependant_id=citizen_id,
            kind="minor", relationship=row.relationship, categories=frozenset(), via=via,
            account_id=account_id, now=now, told_elsewhere=frozenset({row.claimant_citizen_id}))
        session.flush()  # the claim refers to the new guardianship
        row.guardianship_id = guardianship.id
    row.status = REQUEST_APPROVED if approve else REQUEST_DENIED
    row.answered_at = now
    row.answered_by_account_id = account_id
    row.answered_by_citizen_id = actor.citizen_id if actor.role == "citizen" else None
    row.answered_by_facility_id = _acting_facility(actor)
    tell(session, GUARDIAN_CLAIM_ANSWERED, citizen_id=citizen_id, now=now,
         citizens=[row.claimant_citizen_id], claim_id=row.id, decision=row.status)
    return claim_views(session, [row])[0]


def list_my_claims(session: Session, *, claimant_id: uuid.UUID, status: str | None = None,
                   limit: int = 50,
                   before: tuple[dt.datetime, uuid.UUID] | None = None) -> list[ClaimView]:
    """A citizen's own claims and their answers, newest first (keyset by time, id)."""
    query = select(GuardianClaim).where(GuardianClaim.claimant_citizen_id == claimant_id)
    if status is not None:
        query = query.where(GuardianClaim.status == status)
    if before is not None:
        created, row_id = before
        query = query.where(
            (GuardianClaim.created_at < created)
            | ((GuardianClaim.created_at == created) & (GuardianClaim.id > row_id)))
    rows = list(session.scalars(
        query.order_by(GuardianClaim.created_at.desc(), GuardianClaim.id).limit(limit)))
    return claim_views(session, rows)


def claim_views(session: Session, rows: list[GuardianClaim]) -> list[ClaimView]:
    claimants = {row.claimant_citizen_id for row in rows}
    keyring(session).preload(claimants)
    people = _citizens(session, claimants)
    return [ClaimView(row=row, claimant_name=_name(people, row.claimant_citizen_id))
            for row in rows]


def _refuse_when_throttled(session: Session, citizen_id: uuid.UUID, day: dt.date) -> None:
    row = session.get(GuardianClaimFailure, (citizen_id, day))
    if row is not None and row.failures >= MAX_CLAIM_FAILURES_PER_DAY:
        session.rollback()
        raise TooManyRequests(retry_after=_seconds_to_next_local_day())


def _seconds_to_next_local_day() -> int:
    settings = policy_settings()
    now = utcnow().astimezone(settings.local_timezone)
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(),
                                   settings.local_timezone)
    return int((tomorrow - now).total_seconds()) + 1


def _count_failure(session: Session, citizen_id: uuid.UUID, day: dt.date) -> None:
    table = GuardianClaimFailure.__table__
    name = session.get_bind().dialect.name
    insert = postgresql.insert if name == "postgresql" else sqlite.insert
    stmt = insert(table).values(citizen_id=citizen_id, day=day, failures=1)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[table.c.citizen_id, table.c.day],
        set_={"failures": table.c.failures + 1},
    ))


# --- names and hooks ---------------------------------------------------------------------


def _citizens(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, Citizen]:
    if not ids:
        return {}
    return {c.id: c for c in session.scalars(select(Citizen).where(Citizen.id.in_(ids)))}


def _name(people: dict[uuid.UUID, Citizen], citizen_id: uuid.UUID) -> str | None:
    person = people.get(citizen_id)
    if person is None:
        return None
    name = person.full_name
    return None if name is ERASED else name


def dependants_of(
    session: Session, guardian_id: uuid.UUID, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """The people a citizen may act for now: [{citizen_id, full_name, relationship, kind}]."""
    now = now or utcnow()
    rows = session.execute(
        select(GuardianshipRow, Citizen)
        .join(Citizen, Citizen.id == GuardianshipRow.dependant_citizen_id)
        .where(GuardianshipRow.guardian_citizen_id == guardian_id,
               GuardianshipRow.revoked_at.is_(None))
        .order_by(GuardianshipRow.created_at, GuardianshipRow.id)
    ).all()
    keyring(session).preload(citizen.id for _, citizen in rows)
    settings = policy_settings()
    result = []
    for row, citizen in rows:
        facts = Facts(citizen_id=citizen.id, now=now, citizen_birth_date=_birth_date(citizen),
                      settings=settings)
        if in_force(_policy_guardianship(row), facts).permit:
            name = citizen.full_name
            result.append({"citizen_id": str(citizen.id),
                           "full_name": None if name is ERASED else name,
                           "relationship": row.relationship, "kind": row.kind})
    return result


def recipients_for(
    session: Session, citizen_id: uuid.UUID, now: dt.datetime | None = None
) -> list[uuid.UUID]:
    """Who hears about a citizen's record: the citizen and every guardian or proxy in force."""
    now = now or utcnow()
    return [citizen_id, *guardians_in_force(session, citizen_id, now)]


def recipients_for_many(
    session: Session, citizen_ids: list[uuid.UUID], now: dt.datetime | None = None
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """`recipients_for` for many citizens: their facts load in two queries, not two each."""
    now = now or utcnow()
    preload_facts(session, citizen_ids, now=now, parts=frozenset({"citizen", "guardianships"}))
    return {citizen_id: recipients_for(session, citizen_id, now) for citizen_id in citizen_ids}
