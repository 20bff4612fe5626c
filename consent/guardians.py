"""Guardians of minors and proxies of adults (DESIGN.md §5).

Whether a guardianship is in force is the policy's question (revocation, validity, the age
limit, from the dependant's birth date): the helpers here ask it rather than repeat it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from consent.errors import conflict, field_problem
from consent.models import GUARDIAN_KINDS, GuardianClaimFailure
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
from ehr.models import Citizen
from ehr.registry import find_citizen_by_health_id

RELATIONSHIPS = (
    "mother", "father", "parent", "grandparent", "sibling", "legal-guardian", "spouse",
    "child", "relative", "other",
)
MAX_CLAIM_FAILURES_PER_DAY = 5


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


def _resolve(session: Session, actor: Actor, ref: PersonRef) -> Citizen:
    """The guardian named by the request; citizens must name them by health ID and birth date."""
    citizen: Citizen | None = None
    if ref.citizen_id is not None:
        if actor.role == "citizen":
            raise field_problem("guardian", "guardian.name-by-health-id")
        citizen = session.get(Citizen, ref.citizen_id)
    elif ref.health_id:
        citizen = find_citizen_by_health_id(session=session, health_id=ref.health_id)
        needs_birth_date = actor.role == "citizen" or ref.date_of_birth is not None
        if citizen is not None and needs_birth_date and (
            ref.date_of_birth is None or _birth_date(citizen) != ref.date_of_birth
        ):
            citizen = None
    if citizen is None:
        raise field_problem("guardian", "guardian.person-not-matched")
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
) -> GuardianshipRow:
    """Register a guardian for a minor (station, or a guardian for their child) or a proxy an
    adult names for themselves."""
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
    person = _resolve(session, actor, guardian)
    if person.id == dependant_id:
        raise field_problem("guardian", "guardian.self")
    via = "station" if actor.role == "station" else ("citizen" if acting_for_self else "guardian")
    return _create(session, guardian_id=person.id, dependant_id=dependant_id, kind=kind,
                   relationship=relationship, categories=categories, via=via,
                   account_id=account_id, facility_ids=actor.facility_ids, now=now)


def _create(
    session: Session,
    *,
    guardian_id: uuid.UUID,
    dependant_id: uuid.UUID,
    kind: str,
    relationship: str,
    categories: frozenset[str],
    via: str,
    account_id: uuid.UUID | None,
    facility_ids: frozenset[uuid.UUID],
    now: dt.datetime,
) -> GuardianshipRow:
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
        created_by_facility_id=min(facility_ids) if via == "station" and facility_ids else None,
        created_at=now,
    )
    session.add(row)
    forget_facts(session, dependant_id)
    return row


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
) -> GuardianshipRow:
    """A citizen registers as guardian of their child, proving the child's health ID and
    birth date (as on the birth certificate). Failed proofs are limited per day and audited on
    the child's record, where the child's other guardians see them."""
    now = now or utcnow()
    parent_id = actor.citizen_id
    if actor.role != "citizen" or parent_id is None or actor.acting_for not in (None, parent_id):
        raise Forbidden()
    if relationship not in RELATIONSHIPS:
        raise field_problem("relationship", "guardian.relationship-unknown")
    day = now.astimezone(policy_settings().local_timezone).date()
    _refuse_when_throttled(session, parent_id, day)
    child = find_citizen_by_health_id(session=session, health_id=health_id)
    matched = child is not None and _birth_date(child) == date_of_birth
    if child is not None:
        decision = Decision(permit=matched,
                            rule="guardian-claim" if matched else "guardian-claim-mismatch",
                            purpose="guardian")
        record_decision(session, actor=Actor(role="citizen", citizen_id=parent_id),
                        citizen_id=child.id, section="guardians", entry_id=None,
                        action="manage", decision=decision, context=context, now=now)
    if child is None or not matched:
        _count_failure(session, parent_id, day)
        session.commit()  # the failure (and its audit event) must outlive the 422
        raise field_problem("health_id", "guardian.person-not-matched")
    if child.id == parent_id:
        raise field_problem("health_id", "guardian.self")
    if not _is_minor(_birth_date(child), now, policy_settings()):
        raise field_problem("health_id", "guardian.dependant-not-minor",
                            age=policy_settings().guardian_age_limit)
    return _create(session, guardian_id=parent_id, dependant_id=child.id, kind="minor",
                   relationship=relationship, categories=frozenset(), via="citizen",
                   account_id=account_id, facility_ids=frozenset(), now=now)


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


def revoke_guardian(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    guardianship_id: uuid.UUID,
    context: RequestContext,
    account_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> GuardianshipRow:
    """End a guardianship now: by the adult dependant, a guardian of the minor, the station,
    or the guardian themselves stepping down."""
    now = now or utcnow()
    row = session.get(GuardianshipRow, guardianship_id)
    stepping_down = (
        row is not None and actor.role == "citizen"
        and actor.citizen_id == row.guardian_citizen_id and row.dependant_citizen_id == citizen_id
    )
    if stepping_down:
        record_decision(
            session, actor=actor, citizen_id=citizen_id, section="guardians", entry_id=None,
            action="manage", context=context, now=now,
            decision=Decision(permit=True, rule="guardian-step-down", purpose="guardian"),
        )
    else:
        require(session, actor=actor, citizen_id=citizen_id, target="guardians",
                action="manage", context=context, now=now)
    if row is None or row.dependant_citizen_id != citizen_id:
        raise NotFound()
    if row.revoked_at is None:
        row.revoked_at = now
        row.revoked_by_account_id = account_id
        forget_facts(session, citizen_id)
    return row


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
    keyring(session).preload(row.guardian_citizen_id for row in rows)
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
    facts = load_guardian_facts(session, citizen_id=citizen_id, now=now)
    guardians = [
        g.guardian_citizen_id for g in facts.guardianships if in_force(g, facts).permit
    ]
    return [citizen_id, *dict.fromkeys(guardians)]


def recipients_for_many(
    session: Session, citizen_ids: list[uuid.UUID], now: dt.datetime | None = None
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """`recipients_for` for many citizens: their facts load in two queries, not two each."""
    now = now or utcnow()
    preload_facts(session, citizen_ids, now=now, parts=frozenset({"citizen", "guardianships"}))
    return {citizen_id: recipients_for(session, citizen_id, now) for citizen_id in citizen_ids}
