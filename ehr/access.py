"""The one place where the record layer asks for permission (STYLE.md "A record read").

Every read and write of a citizen's record goes through `RecordAccess`: it builds the policy
target, asks the consent decision point (which writes the audit event in the caller's
transaction) and turns a denial into the answer that does not leak: a denied entry is "not
found", a denied section is "forbidden".
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Hashable
from typing import NoReturn, Protocol

from sqlalchemy.orm import Session

from consent import standing
from consent.pdp import (
    WriteRequest,
    authorize,
    authorize_many,
    authorize_section,
    expect_reads_by,
    load_facts,
    policy_settings,
    record_decision,
    request_context,
    standing_audited,
)
from consent.policy import decide, visible_scope
from consent.policy_types import Decision, Facts, Scope, Target
from core.db import utcnow
from core.errors import Forbidden, Message, NotFound
from registry.caller import Caller

# What a list's standing decision is kept as (consent.standing): the view of one section.
LIST_VIEW = "list"

# The chains of lookups that found no one (DESIGN.md §5 "every decision is an audit event"):
# there is no person whose chain could hold them, so each caller's facility (or, without one,
# the practitioner, account or client) has a chain of its own, keyed by a name-based UUID in
# this namespace. Such keys are never a citizen's id, so no access log shows them.
UNKNOWN_LOOKUPS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:phr-vn:audit:unknown-lookups")


class EntryFacts(Protocol):
    """What a decision reads of an entry: an entry, or the envelope of one (never content)."""

    id: uuid.UUID
    sensitivity: str
    author_practitioner_id: uuid.UUID | None
    clinical_date: dt.date | None
    source: str
    facility_id: uuid.UUID | None


def section_denied(related: bool = True) -> Forbidden | NotFound:
    """The answer to a denied section or view: 403, or, to a caller no relationship ties to
    the citizen, the 404 a missing person gets (the answer must not tell who exists)."""
    if not related:
        return NotFound()
    return Forbidden(Message("problem.section-forbidden.detail"), code="section-forbidden")


class RecordAccess:
    """Permission checks for one caller within one session (one request)."""

    def __init__(self, session: Session, caller: Caller, *, now: dt.datetime | None = None):
        self.session = session
        self.caller = caller
        self.now = now or utcnow()
        expect_reads_by(session, caller)

    def facts(self, citizen_id: uuid.UUID) -> Facts:
        return load_facts(self.session, citizen_id=citizen_id, now=self.now,
                          actor=self.caller.acting_for_citizen(citizen_id))

    def decide(
        self, *, citizen_id: uuid.UUID, section: str, action: str,
        entry: EntryFacts | None = None, sensitivity: str = "normal",
        clinical_date: dt.date | None = None, source: str | None = None,
        purpose: str | None = None,
    ) -> Decision:
        """Ask and audit; the caller decides how a denial is answered."""
        if entry is not None:
            target = Target(
                citizen_id=citizen_id, section=section, entry_id=entry.id,
                sensitivity=entry.sensitivity,
                author_practitioner_id=entry.author_practitioner_id,
                clinical_date=entry.clinical_date, source=entry.source,
                facility_id=entry.facility_id,
            )
        else:
            target = Target(citizen_id=citizen_id, section=section, sensitivity=sensitivity,
                            clinical_date=clinical_date, source=source)
        return authorize(
            self.session, actor=self.caller.acting_for_citizen(citizen_id), target=target,
            action=action, purpose=purpose, context=request_context(self.caller), now=self.now,
        )

    def standing_read(
        self, *, citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID
    ) -> standing.StandingRead | None:
        """The worker's standing decision on this read, for its statement to carry."""
        return standing.prepare(
            self.session, actor=self.caller.acting_for_citizen(citizen_id),
            citizen_id=citizen_id, section=section, entry_id=entry_id, now=self.now)

    def standing_view(
        self, *, citizen_id: uuid.UUID, section: str, view: Hashable = LIST_VIEW,
    ) -> standing.StandingRead | None:
        """The worker's standing decision on a view audited as a read of `section` (a list of
        it, or `view`: a summary), for the statement that selects the view's content with the
        facts to carry."""
        return standing.prepare_view(
            self.session, actor=self.caller.acting_for_citizen(citizen_id),
            citizen_id=citizen_id, section=section, view=view, now=self.now)

    def confirm_view(
        self, appended: standing.StandingRead, *, citizen_id: uuid.UUID, section: str,
        scopes: tuple[tuple[str, Scope], ...],
    ) -> None:
        """A view whose standing decision's audit event was appended with its content: the
        policy's decision on the facts found, and the scopes the content was selected
        within, must be the predicted ones (500 otherwise, standing.confirm_view)."""
        decision = decide(
            actor=self.caller.acting_for_citizen(citizen_id),
            target=Target(citizen_id=citizen_id, section=section), action="read",
            facts=self.facts(citizen_id))
        standing.confirm_view(appended, decision=decision, scopes=scopes)

    def remember_view(
        self, *, citizen_id: uuid.UUID, section: str, view: Hashable, decision: Decision,
        scopes: tuple[tuple[str, Scope], ...],
    ) -> None:
        """Keep the decision of a view just audited the usual way for the next one."""
        standing.remember_view(
            self.session, actor=self.caller.acting_for_citizen(citizen_id),
            citizen_id=citizen_id, section=section, view=view, decision=decision,
            scopes=scopes, facts=self.facts(citizen_id), now=self.now)

    def standing_appended(self, read: standing.StandingRead | None,
                          citizen_id: uuid.UUID) -> bool:
        """Whether `read`'s audit append ran with the statement that loaded the facts."""
        if read is None:
            return False
        audited = standing_audited(self.session, citizen_id)
        if audited is False:
            standing.not_run()
        return bool(audited)

    def audit_read_within(
        self, *, citizen_id: uuid.UUID, section: str, entry: EntryFacts, scope: Scope,
        appended: standing.StandingRead | None = None,
    ) -> Decision:
        """Audit the read of `entry`, selected by SQL within `scope` (the policy's list form,
        which tests hold equal to `decide` on every entry): its decision is the first clause
        that shows the entry, so the policy is not asked twice for one read. `appended`: a
        standing decision whose audit event the facts statement appended already; it must be
        this decision."""
        clause = next((c for c in scope.clauses
                       if c.covers(entry.sensitivity, entry.clinical_date)), None)
        if clause is None:  # cannot happen while the SQL is the scope's; ask the policy then
            if appended is not None:
                standing.refuse(appended)
            return self.require(citizen_id=citizen_id, section=section, action="read",
                                entry=entry)
        decision = clause.as_decision(related=True)
        if appended is not None:
            standing.confirm(appended, decision=decision, label=entry.sensitivity)
            return decision
        actor = self.caller.acting_for_citizen(citizen_id)
        facts = self.facts(citizen_id)
        record_decision(
            self.session, actor=actor, citizen_id=citizen_id, section=section,
            entry_id=entry.id, action="read", decision=decision,
            context=request_context(self.caller), now=self.now, facts=facts,
            sensitivity=entry.sensitivity,
        )
        standing.remember(self.session, actor=actor, citizen_id=citizen_id, section=section,
                          scope=scope, clause=clause, label=entry.sensitivity, facts=facts,
                          now=self.now)
        return decision

    def decide_creates(
        self, creates: list[tuple[uuid.UUID, str, str, dt.date | None, str]]
    ) -> list[Decision]:
        """Ask and audit many creates at once: (citizen, section, label, clinical date, source)
        each; the audit events go out together (a station's batch)."""
        requests = [
            WriteRequest(
                actor=self.caller.acting_for_citizen(citizen_id),
                target=Target(citizen_id=citizen_id, section=section, sensitivity=sensitivity,
                              clinical_date=clinical_date, source=source),
                action="create",
            )
            for citizen_id, section, sensitivity, clinical_date, source in creates
        ]
        return authorize_many(self.session, requests, context=request_context(self.caller),
                              now=self.now)

    def decide_list_reads(
        self, citizen_ids: list[uuid.UUID], *, target: str
    ) -> list[Decision]:
        """Ask and audit whether each person may appear on a care list (`care-panel`,
        `immunization-worklist`): one audit event each, appended together."""
        requests = [
            WriteRequest(actor=self.caller.acting_for_citizen(citizen_id),
                         target=Target(citizen_id=citizen_id, section=target), action="read")
            for citizen_id in citizen_ids
        ]
        return authorize_many(self.session, requests, context=request_context(self.caller),
                              now=self.now)

    def require(self, **kwargs: object) -> Decision:
        """Permit or raise: 404 for a single entry, 403 for anything else."""
        decision = self.decide(**kwargs)  # type: ignore[arg-type]
        if not decision.permit:
            self.deny(entry=kwargs.get("entry") is not None, decision=decision)
        return decision

    def deny(self, *, entry: bool, decision: Decision | Scope | None = None) -> NoReturn:
        """Keep the denial's audit event (the request's transaction is about to roll back) and
        answer it: 404 for an entry, 403 for a section, and 404 for anything when the policy
        relates the caller to the citizen in no way (an entry needs no `decision`)."""
        related = decision is not None and decision.related
        self.session.commit()
        if entry:
            raise NotFound()
        raise section_denied(related)

    def section_scope(
        self, *, citizen_id: uuid.UUID, section: str,
        appended: standing.StandingRead | None = None,
    ) -> Scope:
        """The audited scope of a list read; 403 when nothing of the section is visible.
        `appended`: a standing decision whose audit event the statement that selected the
        page appended already, within its scope; it must be the policy's scope."""
        if appended is not None:
            scope = self.quiet_scope(citizen_id=citizen_id, section=section)
            standing.confirm_view(appended, decision=scope.as_decision(),
                                  scopes=((section, scope),))
            return scope
        scope = authorize_section(
            self.session, actor=self.caller.acting_for_citizen(citizen_id),
            citizen_id=citizen_id, section=section, action="read", purpose=None,
            context=request_context(self.caller), now=self.now,
        )
        if not scope.permit:
            self.deny(entry=False, decision=scope)
        self.remember_view(citizen_id=citizen_id, section=section, view=LIST_VIEW,
                           decision=scope.as_decision(), scopes=((section, scope),))
        return scope

    def quiet_scope(self, *, citizen_id: uuid.UUID, section: str) -> Scope:
        """The scope of a section read that is part of an already audited read (summary)."""
        return visible_scope(
            actor=self.caller.acting_for_citizen(citizen_id), citizen_id=citizen_id,
            section=section, action="read", facts=self.facts(citizen_id),
        )

    def decide_unknown_lookup(self) -> Decision:
        """Ask and audit a lookup by health ID that found no one. Whoever may not look people
        up must learn nothing about which numbers exist, so the permission is asked all the
        same, of nobody in particular; the event goes to the caller's lookup chain."""
        chain = unknown_lookup_chain(self.caller)
        actor = self.caller.acting_for_citizen(chain)
        facts = Facts(citizen_id=chain, now=self.now, settings=policy_settings())
        decision = decide(actor=actor, target=Target(citizen_id=chain, section="identity-lookup"),
                          action="lookup", facts=facts)
        record_decision(
            self.session, actor=actor, citizen_id=chain, section="identity-lookup",
            entry_id=None, action="lookup", decision=decision,
            context=request_context(self.caller), now=self.now, facts=facts,
        )
        return decision


def unknown_lookup_chain(caller: Caller) -> uuid.UUID:
    """The audit chain of a caller's lookups that found no one: one per facility, so the
    stations of a campaign do not wait on one another's chain head."""
    if caller.facility_ids:
        holder = f"facility:{min(caller.facility_ids)}"
    elif caller.practitioner_id is not None:
        holder = f"practitioner:{caller.practitioner_id}"
    elif caller.account_id is not None:
        holder = f"account:{caller.account_id}"
    else:
        holder = f"client:{caller.client_id}"
    return uuid.uuid5(UNKNOWN_LOOKUPS, holder)


ScopeKey = tuple[tuple[tuple[str, ...], dt.date | None, dt.date | None], ...]


def scope_key(scope: Scope) -> ScopeKey | None:
    """What of a scope reaches SQL (None: nothing visible); equal keys give equal filters."""
    if not scope.permit or not scope.clauses:
        return None
    return tuple((tuple(sorted(c.labels)), c.data_from, c.data_until) for c in scope.clauses)
