"""The citizen's access log: who did what to their record, in plain words (vi/en).

Read from the audit events of the citizen's chain, newest first, by seq (the unique
(citizen_id, seq) index serves it). The viewer's own actions are left out unless asked for;
a guardian does not see events on entries whose label the policy hides from them (a teen's
restricted entries), just as the record hides the entries themselves.

Someone is called a guardian only when a guardianship relates them to the person: a citizen
refused on a stranger's record, or whose claim of a child is pending or was refused, is named
as themselves.

A flag ("I don't recognise this") goes to the facility the access was made at: its staff and
practitioners list the open flags and answer each with an outcome, which the person sees on
the entry and is told of.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

import consent.messages  # noqa: F401  (registers the texts)
from consent.errors import conflict, field_problem
from consent.events import ACCESS_FLAG_REVIEWED, tell
from consent.guardians import audience
from consent.models import (
    FLAG_OPEN,
    FLAG_OUTCOMES,
    FLAG_REVIEWED,
    AccessLogFlag,
    AuditEvent,
    BreakGlassSession,
)
from consent.pdp import RequestContext, record_decision, require, visible_labels
from consent.policy_types import RESTRICTED_LABELS, Actor, Decision
from core.db import utcnow
from core.encryption import ERASED, keyring
from core.errors import Forbidden, NotFound
from core.hooks import Hook
from core.i18n import has_message, translate
from registry.models import Citizen, Facility, Practitioner

MAX_NOTE = 500
# Rules under which a citizen acting on someone else's record had no guardianship: they are
# named as themselves, never "(guardian)" (older events recorded on_behalf_of for them too).
_NOT_A_GUARDIAN = frozenset({"no-guardianship", "other-citizen", "guardian-claim",
                             "guardian-claim-mismatch", "own-claim"})
_CLAIM_RULES = frozenset({"guardian-claim", "guardian-claim-mismatch"})

RecipientNames = Callable[[Session, list[uuid.UUID]], dict[uuid.UUID, str]]
# Answered by the record (ehr, share links): the names recipients stated when they opened a
# shared summary, by the audit event of the fetch (kept encrypted under the citizen's key, so
# the audit row itself holds no name).
SHARED_RECIPIENTS: Hook[RecipientNames] = Hook("access-log-shared-recipients",
                                               lambda session, event_ids: {})


@dataclass(frozen=True)
class LogPage:
    items: list[dict[str, Any]]
    next_before: int | None  # the seq to continue below, None on the last page


def _visible_labels(session: Session, actor: Actor, citizen_id: uuid.UUID,
                    now: dt.datetime) -> frozenset[str]:
    """The labels whose events the viewer may see: those of entries the policy shows them."""
    return visible_labels(session, actor=actor, citizen_id=citizen_id, now=now) & RESTRICTED_LABELS


def _acted_as_guardian(row: AuditEvent) -> bool:
    return row.on_behalf_of is not None and row.rule not in _NOT_A_GUARDIAN


def read_access_log(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    context: RequestContext,
    lang: str,
    limit: int = 50,
    before: int | None = None,
    include_own: bool = False,
    now: dt.datetime | None = None,
) -> LogPage:
    """One page of the citizen's access log, rendered for the viewer."""
    now = now or utcnow()
    require(session, actor=actor, citizen_id=citizen_id, target="access-log", action="read",
            context=context, now=now)
    labels = _visible_labels(session, actor, citizen_id, now)
    query = select(AuditEvent).where(AuditEvent.citizen_id == citizen_id)
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    if not include_own and actor.citizen_id is not None:
        query = query.where(or_(AuditEvent.actor_citizen_id.is_(None),
                                AuditEvent.actor_citizen_id != actor.citizen_id))
    hidden = sorted(RESTRICTED_LABELS - labels)
    if hidden:
        query = query.where(or_(AuditEvent.sensitivity.is_(None),
                                AuditEvent.sensitivity.not_in(hidden)))
    rows = list(session.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    renderer = _Renderer(session, viewer=actor, citizen_id=citizen_id, lang=lang, rows=rows)
    items = [renderer.item(row) for row in rows]
    return LogPage(items=items, next_before=rows[-1].seq if more and rows else None)


class _Renderer:
    """Names and texts for one page; every lookup is one batched query."""

    def __init__(self, session: Session, *, viewer: Actor, citizen_id: uuid.UUID, lang: str,
                 rows: list[AuditEvent]) -> None:
        self.viewer = viewer
        self.citizen_id = citizen_id
        self.lang = lang
        self.practitioners = _by_id(session, Practitioner,
                                    (r.actor_practitioner_id for r in rows))
        self.facilities = _by_id(session, Facility, (r.actor_facility_id for r in rows))
        people = {r.actor_citizen_id for r in rows if r.actor_citizen_id is not None}
        people.add(citizen_id)
        keyring(session).preload(people)
        self.citizens = _by_id(session, Citizen, people)
        sessions = {r.break_glass_id for r in rows if r.break_glass_id is not None}
        self.break_glass = _by_id(session, BreakGlassSession, sessions)
        self.recipients = SHARED_RECIPIENTS()(
            session, [r.id for r in rows if r.actor_role == "recipient"])
        self.flags = {
            flag.audit_event_id: flag
            for flag in session.scalars(select(AccessLogFlag).where(
                AccessLogFlag.audit_event_id.in_([r.id for r in rows])))
        } if rows else {}

    def t(self, key: str, **params: object) -> str:
        return translate(key, self.lang, **params)

    def _person_name(self, citizen_id: uuid.UUID | None) -> str | None:
        person = self.citizens.get(citizen_id) if citizen_id else None
        if person is None:
            return None
        name = person.full_name
        return None if name is ERASED or not name else name

    def actor_phrase(self, row: AuditEvent) -> str:
        if row.actor_role == "practitioner":
            practitioner = self.practitioners.get(row.actor_practitioner_id)
            facility = self.facilities.get(row.actor_facility_id)
            if practitioner is None:
                return self.t("access-log.actor.practitioner-unknown")
            title_key = f"access-log.title.{practitioner.profession}"
            title = self.t(title_key if has_message(title_key) else "access-log.title.other")
            if facility is None:
                return self.t("access-log.actor.practitioner", title=title,
                              name=practitioner.full_name)
            return self.t("access-log.actor.practitioner-at", title=title,
                          name=practitioner.full_name, facility=facility.name)
        if row.actor_role == "station":
            facility = self.facilities.get(row.actor_facility_id)
            if facility is None:
                return self.t("access-log.actor.facility-unknown")
            return self.t("access-log.actor.station", facility=facility.name)
        if row.actor_role == "citizen":
            if row.actor_citizen_id == self.viewer.citizen_id:
                return self.t("access-log.actor.you")
            name = self._person_name(row.actor_citizen_id)
            if name is None:
                return self.t("access-log.actor.someone")
            kind = "guardian" if _acted_as_guardian(row) else "citizen"
            return self.t(f"access-log.actor.{kind}", name=name)
        if row.actor_role == "recipient":
            name = self.recipients.get(row.id)
            if name is None:
                return self.t("access-log.actor.recipient-unknown")
            return self.t("access-log.actor.recipient", name=name)
        return self.t("access-log.actor.admin")

    def whose(self) -> str:
        if self.viewer.citizen_id == self.citizen_id:
            return self.t("access-log.whose.you")
        name = self._person_name(self.citizen_id)
        if name is None:
            return self.t("access-log.whose.unnamed")
        return self.t("access-log.whose.named", name=name)

    def sentence(self, row: AuditEvent) -> str:
        verb, section = row.action, row.section
        if row.action == "break-glass":
            section = "record"
        elif row.action == "create" and row.section == "access-requests":
            verb, section = "ask-access", "record"
        elif row.section == "guardians" and row.rule in _CLAIM_RULES:
            verb, section = "claim-guardian", "guardian-of"
        elif row.section == "guardians" and row.rule == "own-claim":
            section = "guardian-claim"
        section_key = f"access-log.section.{section}"
        what = self.t("access-log.what", whose=self.whose(),
                      section=self.t(section_key) if has_message(section_key) else section)
        if row.decision == "permit":
            text = self.t("access-log.permit", actor=self.actor_phrase(row),
                          done=self.t(f"access-log.done.{verb}"), what=what)
        else:
            text = self.t("access-log.deny", actor=self.actor_phrase(row),
                          attempt=self.t(f"access-log.attempt.{verb}"), what=what)
        if row.break_glass_id is not None and row.action != "break-glass":
            text += self.t("access-log.emergency")
        reason = self.reason(row)
        if reason and row.action == "break-glass":
            text = self.t("access-log.reason", sentence=text, reason=reason)
        return text

    def reason(self, row: AuditEvent) -> str | None:
        session_row = self.break_glass.get(row.break_glass_id) if row.break_glass_id else None
        if session_row is None:
            return None
        reason = session_row.reason
        return None if reason is ERASED else reason

    def item(self, row: AuditEvent) -> dict[str, Any]:
        facility = self.facilities.get(row.actor_facility_id)
        practitioner = self.practitioners.get(row.actor_practitioner_id)
        flag = self.flags.get(row.id)
        kind = row.actor_role
        if kind == "citizen" and _acted_as_guardian(row):
            kind = "guardian"
        return {
            "id": str(row.id),
            "occurred_at": row.occurred_at.isoformat(),
            "text": self.sentence(row),
            "action": row.action,
            "section": row.section,
            "entry_id": str(row.entry_id) if row.entry_id else None,
            "decision": row.decision,
            "purpose": row.purpose,
            "emergency": row.break_glass_id is not None,
            "break_glass": (
                {"id": str(row.break_glass_id), "reason": self.reason(row)}
                if row.break_glass_id else None
            ),
            "consent_id": str(row.consent_id) if row.consent_id else None,
            "actor": {
                "kind": kind,
                "name": practitioner.full_name if practitioner is not None else (
                    self.recipients.get(row.id) if kind == "recipient" else
                    self._person_name(row.actor_citizen_id) if kind != "station" else None),
                "practitioner_id": str(row.actor_practitioner_id)
                if row.actor_practitioner_id else None,
                "facility": {"id": str(facility.id), "name": facility.name}
                if facility is not None else None,
            },
            "flag": flag_view(flag) if flag else None,
        }


def _by_id(session: Session, model: Any, ids: Iterable[uuid.UUID | None]) -> dict[Any, Any]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {item.id: item for item in session.scalars(select(model).where(model.id.in_(wanted)))}


def flag_event(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    event_id: uuid.UUID,
    context: RequestContext,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[AccessLogFlag, bool]:
    """Mark an access-log entry "I don't recognise this" for review; (flag, created)."""
    now = now or utcnow()
    require(session, actor=actor, citizen_id=citizen_id, target="access-log", action="read",
            context=context, now=now)
    event = session.get(AuditEvent, event_id)
    if event is None or event.citizen_id != citizen_id:
        raise NotFound()
    existing = session.scalars(
        select(AccessLogFlag).where(AccessLogFlag.audit_event_id == event_id)
    ).one_or_none()
    if existing is not None:
        return existing, False
    note = (note or "").strip()[:MAX_NOTE] or None
    # The facility the access was made at reviews it (a person's own or a guardian's act has
    # no facility to answer for it: the flag stays with the person).
    facility = event.actor_facility_id if event.actor_role in ("practitioner", "station") else None
    flag = AccessLogFlag(id=uuid.uuid4(), citizen_id=citizen_id, audit_event_id=event_id,
                         flagged_by_citizen_id=actor.citizen_id, status=FLAG_OPEN,
                         created_at=now, note=note, facility_id=facility)
    session.add(flag)
    return flag, True


def _text(value: Any) -> str | None:
    return None if value is ERASED else value


def flag_view(flag: AccessLogFlag) -> dict[str, Any]:
    """A flag as the person sees it: its status and, once reviewed, the facility's answer."""
    return {
        "id": str(flag.id),
        "event_id": str(flag.audit_event_id),
        "status": flag.status,
        "created_at": flag.created_at.isoformat(),
        "outcome": flag.outcome,
        "outcome_note": _text(flag.outcome_note) if flag.outcome_note_ct else None,
        "reviewed_at": flag.reviewed_at.isoformat() if flag.reviewed_at else None,
    }


# --- the facility's review ---------------------------------------------------------------


@dataclass(frozen=True)
class FlagForReview:
    """A flag with the access it is about, for the facility that answers it."""

    flag: AccessLogFlag
    event: AuditEvent


def _require_facility_member(actor: Actor, facility_id: uuid.UUID) -> None:
    # The facility's own station staff, system and practitioners answer for its accesses.
    if actor.role not in ("station", "practitioner") or facility_id not in actor.facility_ids:
        raise Forbidden()


def _audit_review(session: Session, *, actor: Actor, citizen_ids: Iterable[uuid.UUID],
                  action: str, context: RequestContext, now: dt.datetime) -> None:
    """Reviewers read what people wrote about their record: each sees it in their log."""
    decision = Decision(permit=True, rule="flag-review", purpose="public-health")
    for citizen_id in dict.fromkeys(citizen_ids):
        record_decision(session, actor=actor, citizen_id=citizen_id, section="access-log",
                        entry_id=None, action=action, decision=decision, context=context,
                        now=now)


def list_flags_for_review(
    session: Session,
    *,
    actor: Actor,
    facility_id: uuid.UUID,
    context: RequestContext,
    status: str | None = None,
    limit: int = 50,
    before: tuple[dt.datetime, uuid.UUID] | None = None,
    now: dt.datetime | None = None,
) -> list[FlagForReview]:
    """Flags on accesses made at this facility, newest first; notes decrypted for review."""
    _require_facility_member(actor, facility_id)
    query = select(AccessLogFlag, AuditEvent).join(
        AuditEvent, AuditEvent.id == AccessLogFlag.audit_event_id
    ).where(AccessLogFlag.facility_id == facility_id)
    if status is not None:
        query = query.where(AccessLogFlag.status == status)
    if before is not None:
        created, row_id = before
        query = query.where(
            (AccessLogFlag.created_at < created)
            | ((AccessLogFlag.created_at == created) & (AccessLogFlag.id > row_id)))
    query = query.order_by(AccessLogFlag.created_at.desc(), AccessLogFlag.id).limit(limit)
    rows = [FlagForReview(flag=flag, event=event) for flag, event in session.execute(query)]
    keyring(session).preload(item.flag.citizen_id for item in rows)
    _audit_review(session, actor=actor, citizen_ids=(item.flag.citizen_id for item in rows),
                  action="read", context=context, now=now or utcnow())
    return rows


def review_flag(
    session: Session,
    *,
    actor: Actor,
    facility_id: uuid.UUID,
    flag_id: uuid.UUID,
    outcome: str,
    context: RequestContext,
    note: str | None = None,
    account_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> FlagForReview:
    """The facility answers one flag (once): the outcome is shown on the person's access log
    and they (and the guardian who flagged it) are told. Whoever made the access does not
    judge it."""
    now = now or utcnow()
    _require_facility_member(actor, facility_id)
    found = session.execute(
        select(AccessLogFlag, AuditEvent).join(
            AuditEvent, AuditEvent.id == AccessLogFlag.audit_event_id
        ).where(AccessLogFlag.id == flag_id)
    ).one_or_none()
    if found is None or found[0].facility_id != facility_id:
        raise NotFound()
    flag, event = found
    if event.actor_practitioner_id is not None and (
            event.actor_practitioner_id == actor.practitioner_id):
        raise Forbidden()
    if outcome not in FLAG_OUTCOMES:
        raise field_problem("outcome", "flag.outcome-unknown")
    if flag.status == FLAG_REVIEWED:
        raise conflict("access-flag-reviewed")
    _audit_review(session, actor=actor, citizen_ids=[flag.citizen_id], action="manage",
                  context=context, now=now)
    flag.status = FLAG_REVIEWED
    flag.outcome = outcome
    flag.reviewed_at = now
    flag.reviewed_by_account_id = account_id
    note = (note or "").strip()[:MAX_NOTE] or None
    if note:
        flag.outcome_note = note
    # The person and the guardians who may see the entry (a teen's restricted entry: the teen).
    told = audience(session, flag.citizen_id, now=now, labels=[event.sensitivity or "normal"],
                    also=[flag.flagged_by_citizen_id])
    tell(session, ACCESS_FLAG_REVIEWED, citizen_id=flag.citizen_id, now=now, citizens=told,
         flag_id=flag.id, event_id=event.id, outcome=outcome)
    return FlagForReview(flag=flag, event=event)
