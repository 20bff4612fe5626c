"""Standing decisions: a reader's repeated reads of one person's section (an entry, a list) or
summary, audited by the statement that selects them (PostgreSQL; README "Design", issue 18).

A single entry read took two statements: the entry with its citizen's facts, then the audit
append of the decision Python took on those facts. Once a worker has decided a read of
(reader, citizen, section) on facts that a statement can compare in SQL (the birth date's
ciphertext, the family doctor, nothing in view that the policy would weigh: no consent,
break-glass session or guardianship), it remembers that decision. The next read's facts
statement carries the audit append of the decision it predicts, as data-modifying CTEs that
run only when the statement finds those same facts, the token live, the reader's access digest
showing today (no notice due) and the entry with the predicted label; otherwise nothing is
appended and the read takes its two statements. One statement then, audited before its rows
leave the database (autocommit), with the decision confirmed by the database on every request.
A practitioner's decision is remembered without the person and compares no birth date: the
policy decides her reads on her relationships alone (`consent.policy.decides_on_the_person`),
so one decision stands for every patient registered with her at the same facility.

A list or summary (a view) is kept the same way, with the scope of every section it selects
within: its statement selects the content within the predicted scopes, and only when the
append ran (consent.pdp.Content); Python then computes the decision and scopes on the facts
found, which must be the predicted ones.

Python still decides every read on the facts the statement returned; a decision that differs
from the one appended cannot happen while the facts compared are all the policy reads, and
answers 500 without data if it ever does. The decision holds until the end of the day (the
policy's dates are days) and `STANDING_DECISION_SECONDS` at most; 0 turns this off.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import uuid
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from flask import current_app
from sqlalchemy.orm import Session

from consent.audit import append_params
from consent.pdp import (
    STANDING_FACTS,
    acting_facility,
    audit_content,
    request_context,
    standing_facts,
)
from consent.policy import decides_on_the_person
from consent.policy_types import VIETNAM_TZ, Decision, Facts, Scope, ScopeClause
from core.metrics import STANDING_READS
from core.transactions import reading_outside_transaction
from registry.caller import Caller

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 300.0
CACHE_SIZE = 10_000
_EXTENSION = "phr.consent.standing"


@dataclass(frozen=True)
class StandingDecision:
    """A decided read and the facts it rested on (ciphertext and ids, no clear data)."""

    # Whether the decision holds for any person with these relationships (a practitioner's:
    # consent.policy.decides_on_the_person); else for the one whose birth date's ciphertext
    # is `facts[0]`.
    any_person: bool
    facts: tuple[bytes, uuid.UUID | None, uuid.UUID | None]
    label: str | None  # an entry read's: the label of the entries it shows; a view's: None
    decision: Decision
    actor_facility_id: uuid.UUID | None
    valid_until: dt.datetime
    # A view's (a section list, a summary): the scope of each section it selects within.
    scopes: tuple[tuple[str, Scope], ...] | None = None


@dataclass(frozen=True)
class StandingRead:
    """A standing decision prepared for one request: the values its statement binds."""

    standing: StandingDecision
    event_id: uuid.UUID
    params: dict[str, Any]


class StandingDecisions:
    """One app's standing decisions per worker, by (reader, citizen, section, view)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._cache: TTLCache[Hashable, StandingDecision] = TTLCache(
            maxsize=CACHE_SIZE, ttl=max(seconds, 0.001))

    def get(self, key: Hashable, now: dt.datetime) -> StandingDecision | None:
        with self._lock:
            standing = self._cache.get(key)
        return standing if standing is not None and now < standing.valid_until else None

    def remember(self, key: Hashable, standing: StandingDecision) -> None:
        with self._lock:
            self._cache[key] = standing

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._cache.pop(key, None)


class StandingMismatch(RuntimeError):
    """The decision appended is not the one Python took on the facts the statement found."""


def _decisions() -> StandingDecisions | None:
    decisions = current_app.extensions.get(_EXTENSION)
    if decisions is None:
        seconds = float(current_app.config.get("STANDING_DECISION_SECONDS", DEFAULT_SECONDS))
        decisions = current_app.extensions.setdefault(_EXTENSION, StandingDecisions(seconds))
    return decisions if decisions.seconds > 0 else None


def _key(actor: Caller, citizen_id: uuid.UUID, section: str, *, view: Hashable) -> Hashable:
    # The whole caller but the request: its token, scopes, client and memberships; the person
    # unless the decision holds for anyone with the same relationships; an entry read's
    # decision (view False) or a view's (a list, a summary of some sections).
    person = citizen_id if decides_on_the_person(actor) else None
    return (dataclasses.replace(actor, request_id=None), person, section, view)


def _usable(session: Session) -> bool:
    connection = session.connection()
    return (connection.dialect.name == "postgresql"
            and reading_outside_transaction(connection))


def prepare(
    session: Session, *, actor: Caller, citizen_id: uuid.UUID, section: str,
    entry_id: uuid.UUID, now: dt.datetime,
) -> StandingRead | None:
    """The standing decision of this read, with its audit append's values, if the worker
    holds one (and the read runs outside a transaction on PostgreSQL)."""
    return _prepare(session, actor=actor, citizen_id=citizen_id, section=section,
                    entry_id=entry_id, now=now)


def prepare_view(
    session: Session, *, actor: Caller, citizen_id: uuid.UUID, section: str, view: Hashable,
    now: dt.datetime,
) -> StandingRead | None:
    """The standing decision of a view audited as a read of `section` (a list of it; a
    summary), named by `view`, with its audit append's values, if the worker holds one (and
    the read runs outside a transaction on PostgreSQL)."""
    return _prepare(session, actor=actor, citizen_id=citizen_id, section=section,
                    entry_id=None, view=view, now=now)


def _prepare(
    session: Session, *, actor: Caller, citizen_id: uuid.UUID, section: str,
    entry_id: uuid.UUID | None, now: dt.datetime, view: Hashable = False,
) -> StandingRead | None:
    decisions = _decisions()
    if decisions is None:
        return None
    standing = decisions.get(_key(actor, citizen_id, section, view=view), now)
    if standing is None or not _usable(session):
        return None
    # The event the policy's own append writes: consent.pdp.authorize_section's for a view,
    # ehr.access.audit_read_within's for an entry.
    content = audit_content(
        actor=actor, citizen_id=citizen_id, section=section, entry_id=entry_id,
        action="read", decision=standing.decision, context=request_context(actor), now=now,
        facts=None, sensitivity=standing.label,
    )
    content["actor_facility_id"] = standing.actor_facility_id
    event_id, params = append_params(content)
    params.update(zip(STANDING_FACTS, (standing.any_person, *standing.facts), strict=True))
    if entry_id is not None:
        params["standing_label"] = standing.label
    return StandingRead(standing=standing, event_id=event_id, params=params)


def confirm(read: StandingRead, *, decision: Decision, label: str) -> None:
    """After a read whose standing decision was appended: Python's decision on the facts
    found must be that one, or the read answers 500 and nothing of the entry."""
    standing = read.standing
    if decision != standing.decision or label != standing.label:
        STANDING_READS.labels("mismatch").inc()
        log.error("a standing decision differs from the policy's (event %s): %s against %s",
                  read.event_id, standing.decision.rule, decision.rule)
        raise StandingMismatch("standing decision differs from the policy's")
    STANDING_READS.labels("appended").inc()


def confirm_view(read: StandingRead, *, decision: Decision,
                 scopes: tuple[tuple[str, Scope], ...]) -> None:
    """After a view whose standing decision was appended (its rows selected within the
    predicted scopes): the decision and scopes Python takes on the facts found must be those,
    or the read answers 500 and nothing of the view."""
    standing = read.standing
    if decision != standing.decision or scopes != standing.scopes:
        STANDING_READS.labels("mismatch").inc()
        log.error("a standing view decision differs from the policy's (event %s): %s against "
                  "%s", read.event_id, standing.decision.rule, decision.rule)
        raise StandingMismatch("standing decision differs from the policy's")
    STANDING_READS.labels("appended").inc()


def not_run() -> None:
    """The statement carried a standing decision's append and found other facts."""
    STANDING_READS.labels("not-run").inc()


def refuse(read: StandingRead) -> None:
    """After a read whose standing decision was appended: the policy shows nothing of the
    entry found, which cannot be while the facts compared are all it reads."""
    STANDING_READS.labels("mismatch").inc()
    log.error("a standing decision was appended for a read the policy refuses (event %s)",
              read.event_id)
    raise StandingMismatch("standing decision appended for a refused read")


def remember(
    session: Session, *, actor: Caller, citizen_id: uuid.UUID, section: str, scope: Scope,
    clause: ScopeClause, label: str, facts: Facts, now: dt.datetime,
) -> None:
    """Keep the decision of a read just audited the usual way for this reader's next reads of
    the section, when the statement could confirm it: facts it can compare, and a clause
    that alone shows entries of this label, at every date (the label then decides)."""
    _keep(session, actor=actor, citizen_id=citizen_id, section=section, view=False,
          holds=clause.all_dates and sum(label in c.labels for c in scope.clauses) == 1,
          decision=clause.as_decision(related=True), label=label, scopes=None, facts=facts,
          now=now)


def remember_view(
    session: Session, *, actor: Caller, citizen_id: uuid.UUID, section: str, view: Hashable,
    decision: Decision, scopes: tuple[tuple[str, Scope], ...], facts: Facts, now: dt.datetime,
) -> None:
    """Keep the decision of a view just audited the usual way (`decision`, the content
    selected within `scopes`) for this reader's next such views, when the statement could
    confirm it: facts it can compare (decision and scopes are then the policy's on those
    facts alone)."""
    _keep(session, actor=actor, citizen_id=citizen_id, section=section, view=view,
          holds=decision.permit, decision=decision, label=None, scopes=scopes, facts=facts,
          now=now)


def _keep(
    session: Session, *, actor: Caller, citizen_id: uuid.UUID, section: str, view: Hashable,
    holds: bool, decision: Decision, label: str | None,
    scopes: tuple[tuple[str, Scope], ...] | None, facts: Facts, now: dt.datetime,
) -> None:
    decisions = _decisions()
    if decisions is None or not _usable(session):
        return
    key = _key(actor, citizen_id, section, view=view)
    any_person = not decides_on_the_person(actor)
    rested_on = standing_facts(session, citizen_id)
    if rested_on is None or not holds:
        if not any_person:
            # Its statement would carry an append bound to fail; one held for anyone may
            # still stand for the next person.
            decisions.forget(key)
        return
    if any_person:
        rested_on = (b"", *rested_on[1:])  # no one's birth date kept where none is compared
    decisions.remember(key, StandingDecision(
        any_person=any_person, facts=rested_on, label=label, decision=decision,
        actor_facility_id=acting_facility(actor, decision, facts),
        valid_until=min(now + dt.timedelta(seconds=decisions.seconds), _day_end(now)),
        scopes=scopes,
    ))


def _day_end(now: dt.datetime) -> dt.datetime:
    """The next midnight, in Vietnam or UTC, whichever comes first: the policy's dates (ages,
    the day's access digest) are days."""
    local = now.astimezone(VIETNAM_TZ)
    ends = [dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), VIETNAM_TZ),
            dt.datetime.combine(now.astimezone(dt.UTC).date() + dt.timedelta(days=1),
                                dt.time(), dt.UTC)]
    return min(ends)
