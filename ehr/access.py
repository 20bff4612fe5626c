"""The one place where the record layer asks for permission (STYLE.md "A record read").

Every read and write of a citizen's record goes through `RecordAccess`: it builds the policy
target, asks the consent decision point (which writes the audit event in the caller's
transaction) and turns a denial into the answer that does not leak: a denied entry is "not
found", a denied section is "forbidden".
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass, field

from sqlalchemy import and_, false, or_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from consent.pdp import (
    RequestContext,
    WriteRequest,
    authorize,
    authorize_many,
    authorize_section,
    load_facts,
)
from consent.policy import visible_scope
from consent.policy_types import Actor, Decision, Facts, Scope, Target
from core.db import utcnow
from core.errors import Forbidden, Message, NotFound
from ehr.record_models import RecordEntry


@dataclass(frozen=True)
class Caller:
    """Who calls, as the record layer needs it (built by the API from the token)."""

    role: str
    account_id: uuid.UUID | None
    client_id: str | None
    citizen_id: uuid.UUID | None = None
    practitioner_id: uuid.UUID | None = None
    facility_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    request_id: str | None = None

    def actor_for(self, citizen_id: uuid.UUID) -> Actor:
        acting_for = citizen_id if self.role == "citizen" else None
        return Actor(
            role=self.role, citizen_id=self.citizen_id, practitioner_id=self.practitioner_id,
            facility_ids=self.facility_ids, acting_for=acting_for,
        )

    @property
    def context(self) -> RequestContext:
        return RequestContext(
            account_id=self.account_id, client_id=self.client_id, request_id=self.request_id,
            actor_label=self.role,
        )

    @property
    def source(self) -> str:
        """Where an entry written by this caller comes from."""
        return {"citizen": "citizen-reported", "station": "station"}.get(self.role, "clinician")


def section_denied() -> Forbidden:
    return Forbidden(Message("problem.section-forbidden.detail"), code="section-forbidden")


class RecordAccess:
    """Permission checks for one caller within one session (one request)."""

    def __init__(self, session: Session, caller: Caller, *, now: dt.datetime | None = None):
        self.session = session
        self.caller = caller
        self.now = now or utcnow()

    def facts(self, citizen_id: uuid.UUID) -> Facts:
        return load_facts(self.session, citizen_id=citizen_id, now=self.now,
                          actor=self.caller.actor_for(citizen_id))

    def decide(
        self, *, citizen_id: uuid.UUID, section: str, action: str,
        entry: RecordEntry | None = None, sensitivity: str = "normal",
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
            self.session, actor=self.caller.actor_for(citizen_id), target=target, action=action,
            purpose=purpose, context=self.caller.context, now=self.now,
        )

    def decide_creates(
        self, creates: list[tuple[uuid.UUID, str, str, dt.date | None, str]]
    ) -> list[Decision]:
        """Ask and audit many creates at once: (citizen, section, label, clinical date, source)
        each; the audit events go out together (a station's batch)."""
        requests = [
            WriteRequest(
                actor=self.caller.actor_for(citizen_id),
                target=Target(citizen_id=citizen_id, section=section, sensitivity=sensitivity,
                              clinical_date=clinical_date, source=source),
                action="create",
            )
            for citizen_id, section, sensitivity, clinical_date, source in creates
        ]
        return authorize_many(self.session, requests, context=self.caller.context, now=self.now)

    def require(self, **kwargs: object) -> Decision:
        """Permit or raise: 404 for a single entry, 403 for anything else."""
        decision = self.decide(**kwargs)  # type: ignore[arg-type]
        if not decision.permit:
            self.deny(entry=kwargs.get("entry") is not None)
        return decision

    def deny(self, *, entry: bool) -> None:
        """Keep the denial's audit event (the request's transaction is about to roll back)."""
        self.session.commit()
        if entry:
            raise NotFound()
        raise section_denied()

    def section_scope(self, *, citizen_id: uuid.UUID, section: str) -> Scope:
        """The audited scope of a list read; 403 when nothing of the section is visible."""
        scope = authorize_section(
            self.session, actor=self.caller.actor_for(citizen_id), citizen_id=citizen_id,
            section=section, action="read", purpose=None, context=self.caller.context,
            now=self.now,
        )
        if not scope.permit:
            self.deny(entry=False)
        return scope

    def quiet_scope(self, *, citizen_id: uuid.UUID, section: str) -> Scope:
        """The scope of a section read that is part of an already audited read (summary)."""
        return visible_scope(
            actor=self.caller.actor_for(citizen_id), citizen_id=citizen_id, section=section,
            action="read", facts=self.facts(citizen_id),
        )


ScopeKey = tuple[tuple[tuple[str, ...], dt.date | None, dt.date | None], ...]


def scope_key(scope: Scope) -> ScopeKey | None:
    """What of a scope reaches SQL (None: nothing visible); equal keys give equal filters."""
    if not scope.permit or not scope.clauses:
        return None
    return tuple((tuple(sorted(c.labels)), c.data_from, c.data_until) for c in scope.clauses)


@functools.lru_cache(maxsize=512)
def filter_for(key: ScopeKey | None) -> ColumnElement[bool]:
    """A scope as SQL: OR over clauses of (label allowed AND clinical date in the period).
    Built once per distinct scope: most readers see a section through the same few scopes, and
    building the expression cost more than running it."""
    if key is None:
        return false()
    clauses = []
    for labels, data_from, data_until in key:
        parts: list[ColumnElement[bool]] = [RecordEntry.sensitivity.in_(labels)]
        if data_from is not None:
            parts.append(RecordEntry.clinical_date >= data_from)
        if data_until is not None:
            parts.append(RecordEntry.clinical_date <= data_until)
        clauses.append(and_(*parts))
    return or_(*clauses)
