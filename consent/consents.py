"""Consents: the citizen's grants to a practitioner or a facility (DESIGN.md §5).

A grant counts from the next request (facts are read per transaction) and stops by itself at
its expiry (the policy compares with `now`); revoking sets `revoked_at`, nothing is deleted.
Granting and revoking are told to the citizen, the guardians in force who may see what the
consent names, and the practitioner it names.

From 12 (TEEN_PRIVACY_AGE) a consent naming a restricted category is the teen's alone: the
policy hides those categories from a guardian, so the guardian neither sees such a consent
(404, as for one that does not exist) nor grants one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.errors import field_problem
from consent.events import CONSENT_GRANTED, CONSENT_REVOKED, tell
from consent.guardians import audience
from consent.models import ACCESS_LEVELS, GRANTEE_TYPES, Consent
from consent.pdp import (
    RequestContext,
    authorize,
    citizen_exists,
    forget_facts,
    raise_if_denied,
    require,
    visible_labels,
)
from consent.policy_types import GRANTABLE_TARGETS, RESTRICTED_LABELS, Actor, Target
from core.db import utcnow
from core.errors import Forbidden, Message, NotFound
from registry.models import Facility, Practitioner

# What a citizen may grant for: care, or a public-health programme.
GRANT_PURPOSES = ("treatment", "public-health")

ACTIVE, EXPIRED, REVOKED = "active", "expired", "revoked"


@dataclass(frozen=True)
class ConsentTerms:
    """What a citizen grants, as parsed from the request."""

    grantee_type: str
    grantee_id: uuid.UUID
    sections: frozenset[str]
    categories: frozenset[str] = field(default_factory=frozenset)
    access: str = "read"
    purpose: str = "treatment"
    data_from: dt.date | None = None
    data_until: dt.date | None = None
    expires_at: dt.datetime | None = None


def consent_status(row: Consent, now: dt.datetime) -> str:
    """active, expired or revoked at `now`."""
    if row.revoked_at is not None and row.revoked_at <= now:
        return REVOKED
    if row.expires_at is not None and row.expires_at <= now:
        return EXPIRED
    return ACTIVE


def _check_terms(session: Session, terms: ConsentTerms, now: dt.datetime) -> None:
    if terms.grantee_type not in GRANTEE_TYPES:
        raise field_problem("grantee.type", "consent.grantee-type")
    model = Practitioner if terms.grantee_type == "practitioner" else Facility
    grantee = session.get(model, terms.grantee_id)
    if grantee is None or not grantee.active:
        raise field_problem("grantee.id", "consent.grantee-unknown")
    if not terms.sections:
        raise field_problem("sections", "consent.sections-required")
    unknown = terms.sections - GRANTABLE_TARGETS
    if unknown:
        raise field_problem("sections", "consent.section-unknown", names=", ".join(sorted(unknown)))
    unknown = terms.categories - RESTRICTED_LABELS
    if unknown:
        raise field_problem("categories", "consent.category-unknown",
                            names=", ".join(sorted(unknown)))
    if terms.access not in ACCESS_LEVELS:
        raise field_problem("access", "consent.access-unknown")
    if terms.purpose not in GRANT_PURPOSES:
        raise field_problem("purpose", "consent.purpose-unknown")
    if terms.data_from and terms.data_until and terms.data_from > terms.data_until:
        raise field_problem("data_until", "consent.period-order")
    if terms.expires_at is not None and terms.expires_at <= now:
        raise field_problem("expires_at", "consent.expiry-past")


def shown_to(session: Session, actor: Actor, citizen_id: uuid.UUID,
             now: dt.datetime) -> frozenset[str]:
    """The restricted categories the actor may see on this citizen's record (all for the
    citizen; for a guardian of a teen, none)."""
    return visible_labels(session, actor=actor, citizen_id=citizen_id, now=now) & RESTRICTED_LABELS


def _names_hidden(categories: Iterable[str], shown: frozenset[str]) -> bool:
    return bool(frozenset(categories) & RESTRICTED_LABELS - shown)


def label_of(categories: Iterable[str]) -> str:
    """The label an act about these categories is decided and audited under: a restricted
    category it names (the first), else normal."""
    return min(frozenset(categories) & RESTRICTED_LABELS, default="normal")


# The refusals that mean "this category is not yours to see" (a teen's guardian, a proxy).
_HIDDEN_CATEGORY_RULES = frozenset({"guardian-teen-privacy", "proxy-restricted"})


def manage(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    target: str,
    categories: Iterable[str],
    context: RequestContext,
    now: dt.datetime,
    hidden: Exception,
    action: str = "manage",
) -> None:
    """Authorize an act on consents or access requests naming `categories`: decided and
    audited under the category's label (so the access log hides it from whoever may not see
    the category); `hidden` is raised when that is the only reason for the refusal."""
    decision = authorize(
        session, actor=actor,
        target=Target(citizen_id=citizen_id, section=target, sensitivity=label_of(categories)),
        action=action, purpose=None, context=context, now=now,
    )
    if not decision.permit and decision.related and decision.rule in _HIDDEN_CATEGORY_RULES:
        session.commit()  # keep the denial's audit event
        raise hidden
    raise_if_denied(session, decision, entry=False)


def create_consent(
    session: Session,
    *,
    citizen_id: uuid.UUID,
    terms: ConsentTerms,
    granted_by: uuid.UUID | None,
    now: dt.datetime,
    access_request_id: uuid.UUID | None = None,
) -> Consent:
    """Store a checked grant (the caller has authorized it) and tell whose access it changes:
    the citizen and the guardians who may see it, and the practitioner it names (unless an
    answered access request tells them)."""
    _check_terms(session, terms, now)
    row = Consent(
        id=uuid.uuid4(), citizen_id=citizen_id, grantee_type=terms.grantee_type,
        grantee_id=terms.grantee_id, sections=sorted(terms.sections),
        categories=sorted(terms.categories), access=terms.access, purpose=terms.purpose,
        data_from=terms.data_from, data_until=terms.data_until, expires_at=terms.expires_at,
        access_request_id=access_request_id, granted_by_citizen_id=granted_by, created_at=now,
    )
    session.add(row)
    forget_facts(session, citizen_id)
    grantee = (terms.grantee_id if terms.grantee_type == "practitioner"
               and access_request_id is None else None)
    tell(session, CONSENT_GRANTED, citizen_id=citizen_id, now=now,
         citizens=audience(session, citizen_id, now=now, labels=terms.categories),
         practitioners=[grantee], actor_citizen_id=granted_by, consent_id=row.id)
    return row


def grant_consent(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    terms: ConsentTerms,
    context: RequestContext,
    now: dt.datetime | None = None,
) -> Consent:
    """The citizen (or their guardian) grants access; effective on the next request."""
    now = now or utcnow()
    # A guardian cannot open a teen's restricted categories to anyone: they are the teen's.
    manage(session, actor=actor, citizen_id=citizen_id, target="consents",
           categories=terms.categories, context=context, now=now,
           hidden=Forbidden(Message("consent.category-teen-only"), code="teen-privacy"))
    if _names_hidden(terms.categories, shown_to(session, actor, citizen_id, now)):
        session.commit()  # several categories: the audit named one, the rest are checked here
        raise Forbidden(Message("consent.category-teen-only"), code="teen-privacy")
    return create_consent(session, citizen_id=citizen_id, terms=terms,
                          granted_by=actor.citizen_id, now=now)


def revoke_consent(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    consent_id: uuid.UUID,
    context: RequestContext,
    now: dt.datetime | None = None,
) -> Consent:
    """End a grant now (idempotent: revoking twice keeps the first time)."""
    now = now or utcnow()
    row = session.get(Consent, consent_id)
    named = row.categories or () if row is not None and row.citizen_id == citizen_id else ()
    manage(session, actor=actor, citizen_id=citizen_id, target="consents", categories=named,
           context=context, now=now, hidden=NotFound())
    if (row is None or row.citizen_id != citizen_id
            or _names_hidden(row.categories or (), shown_to(session, actor, citizen_id, now))):
        raise NotFound()
    if row.revoked_at is None:
        row.revoked_at = now
        row.revoked_by_citizen_id = actor.citizen_id
        forget_facts(session, citizen_id)
        grantee = row.grantee_id if row.grantee_type == "practitioner" else None
        tell(session, CONSENT_REVOKED, citizen_id=citizen_id, now=now,
             citizens=audience(session, citizen_id, now=now, labels=row.categories or ()),
             practitioners=[grantee], actor_citizen_id=actor.citizen_id, consent_id=row.id)
    return row


def list_consents(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    context: RequestContext,
    include_ended: bool = False,
    now: dt.datetime | None = None,
) -> list[Consent]:
    """The citizen's grants, newest first; ended ones only when asked."""
    now = now or utcnow()
    require(session, actor=actor, citizen_id=citizen_id, target="consents", action="read",
            context=context, now=now)
    if not citizen_exists(session, citizen_id):
        raise NotFound()
    rows = session.scalars(
        select(Consent).where(Consent.citizen_id == citizen_id)
        .order_by(Consent.created_at.desc(), Consent.id)
    ).all()
    shown = shown_to(session, actor, citizen_id, now)
    return [row for row in rows
            if (include_ended or consent_status(row, now) == ACTIVE)
            and not _names_hidden(row.categories or (), shown)]


def grantee_names(session: Session, rows: Iterable[Consent]) -> dict[uuid.UUID, str]:
    """Display names of the practitioners and facilities the rows name (two queries at most)."""
    rows = list(rows)
    names: dict[uuid.UUID, str] = {}
    for model, kind in ((Practitioner, "practitioner"), (Facility, "facility")):
        ids = {row.grantee_id for row in rows if row.grantee_type == kind}
        if ids:
            for item in session.scalars(select(model).where(model.id.in_(ids))):
                names[item.id] = item.full_name if kind == "practitioner" else item.name
    return names
