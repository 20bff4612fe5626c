"""The records repository: the one module that selects record content (DESIGN.md §1).

Record entries, their earlier versions and the stored answers of creates (an answer holds the
view of the entry it created) are selected here and nowhere else;
tests/ehr/test_repository_is_the_only_reader.py fails when another module names their models
or tables. Every selection of many entries (lists, versions, summary, export) carries the
caller's permission in its SQL — the policy's `visible_scope` for the section, turned into a
WHERE clause by `filter_for` — and every request's decision is audited once, in the
request's transaction, by `RecordAccess`:

- a single entry: the entry by id, selected in one statement with its citizen's facts (and
  the token's liveness, auth.resource), shown only when a clause of its section's scope
  covers its label and date (the clauses `filter_for` compiles for lists), decided before
  anything of its content is decrypted; a hidden or missing one is a 404 whose audit event
  names the entry and the rule that hid it;
- versions: those of a readable entry, each itself within the scope (an earlier version may
  have carried a label the caller may not see);
- a list page: one audited scope (`authorize_section`), the page selected within it;
- summary, export and schedule: one audited decision for the view, each section selected
  within the caller's scope of it (the same clauses the section's list uses);
- a replayed create: the stored answer is served only after the decision a read of the entry
  it created gets (the token's read scope and the policy); the batch's replays alike.

Writes are decided per entry (author, recording facility: conditions no read scope
expresses): the entry to change is selected by id and decided before anything of it is used.

Statements are built once per shape (scope, ordering, cursor kind) and reused with bound
values: building them cost more than running them (README "Benchmarks").
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import and_, bindparam, exists, false, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from auth.errors import InsufficientScope
from auth.resource import has_scope, smart_context
from auth.scopes import SECTION_RESOURCES, required_scope
from consent.audit import audit_rides_with_content, with_pending_audit
from consent.pdp import (
    Along,
    Content,
    citizen_birth_date,
    load_facts_along,
    load_facts_with_content,
    loaded_citizen,
    only_of,
)
from consent.policy_types import Scope
from consent.standing import refuse as refuse_standing
from core import idempotency
from core.encryption import keyring
from core.errors import BadRequest, Message, NotFound, Problem
from core.kept_plans import KEEP_PLAN
from ehr.access import RecordAccess, ScopeKey, scope_key
from ehr.record_models import STATUS_CURRENT, RecordEntry, RecordEntryVersion
from ehr.section_schemas import SECTION_SCHEMAS
from registry.models import Citizen

SECTIONS = tuple(SECTION_SCHEMAS)
LATEST_VITALS = 60  # observations the summary looks through for the latest of each kind

# What the vaccination reminders (a system job, no caller) count: the doses every recipient of
# a reminder (the child and each guardian in force) may see. A restricted dose would otherwise
# reveal itself to a guardian by a reminder that stops.
REMINDER_SCOPE: ScopeKey = ((("normal",), None, None),)


@dataclass(frozen=True)
class Page:
    entries: list[RecordEntry]
    next_position: dict[str, Any] | None


@dataclass(frozen=True)
class SummaryEntries:
    sections: tuple[str, ...]  # the summary sections the token may read
    visible: frozenset[str]  # those of them the policy shows something of
    entries: dict[str, list[RecordEntry]]  # current entries per section, newest first
    vitals: list[RecordEntry]  # the latest current observations, newest first

    def active(self, section: str, status_field: str) -> list[RecordEntry]:
        """The section's entries whose `status_field` is active (or unset): what a summary
        (the JSON one, the IPS) lists as current allergies, problems and medications."""
        return [entry for entry in self.entries[section]
                if isinstance(entry.content, dict)
                and entry.content.get(status_field, "active") == "active"]

    def latest_vitals(self) -> list[RecordEntry]:
        """The latest observation of each kind."""
        latest: dict[str, RecordEntry] = {}
        for entry in self.vitals:  # newest first
            content = entry.content
            if isinstance(content, dict) and content.get("kind") and content["kind"] not in latest:
                latest[content["kind"]] = entry
        return list(latest.values())


@dataclass(frozen=True)
class ExportedEntries:
    sections: tuple[str, ...]  # the sections exported: the token and the policy allow them
    entries: list[RecordEntry]  # per section newest first, entered-in-error ones included
    versions: dict[uuid.UUID, list[RecordEntryVersion]]  # earlier versions per entry, oldest first


class RecordRepository:
    """Every selection of one caller's request (STYLE.md "A record read")."""

    def __init__(self, access: RecordAccess) -> None:
        self.access = access
        self.session: Session = access.session

    # --- single entries -----------------------------------------------------------------

    def entry(self, *, citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID) -> RecordEntry:
        """An entry the caller may read (audited); 404 otherwise."""
        return self._readable(citizen_id=citizen_id, section=section, entry_id=entry_id)[0]

    def versions(
        self, *, citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID
    ) -> tuple[RecordEntry, list[RecordEntryVersion]]:
        """A readable entry and its earlier versions within the caller's scope, newest first
        (the read's audit append rides with the versions' statement)."""
        with audit_rides_with_content(self.session):
            entry, key = self._readable(citizen_id=citizen_id, section=section,
                                        entry_id=entry_id)
            versions = self._content(
                _versions_query(key), {"entry_id": entry.id, "citizen_id": citizen_id})
        return entry, versions

    def entry_to_change(
        self, *, citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID, action: str
    ) -> RecordEntry:
        """The entry a write (update, entered-in-error) may change, decided and audited on the
        entry itself; 404 when it is missing or the caller may not change it."""
        entry = self.session.scalars(_entry_query(None), {
            "entry_id": entry_id, "citizen_id": citizen_id, "section": section,
        }).one_or_none()
        if entry is None:
            self._deny_hidden(citizen_id=citizen_id, section=section, entry_id=entry_id,
                              action=action)
        self.access.require(citizen_id=citizen_id, section=section, action=action, entry=entry)
        return entry

    def _readable(
        self, *, citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID
    ) -> tuple[RecordEntry, ScopeKey]:
        access = self.access
        # One statement: the entry by id, its citizen's facts and the token's liveness, and,
        # when the worker holds a standing decision on this read, its audit append.
        standing = access.standing_read(citizen_id=citizen_id, section=section,
                                        entry_id=entry_id)
        _, entry = load_facts_along(
            self.session, citizen_id=citizen_id, now=access.now,
            actor=access.caller.acting_for_citizen(citizen_id), along=_ENTRY_ALONG,
            params={"entry_id": entry_id, "section": section},
            standing=standing.params if standing is not None else None)
        appended = standing if access.standing_appended(standing, citizen_id) else None
        scope = access.quiet_scope(citizen_id=citizen_id, section=section)
        key = scope_key(scope)
        # Shown only within the scope: the clauses `filter_for` compiles for the section's
        # lists, asked of the entry's label and date before anything of its content is read.
        if (entry is None or key is None
                or not any(c.covers(entry.sensitivity, entry.clinical_date)
                           for c in scope.clauses)):
            if appended is not None:
                refuse_standing(appended)
            self._deny_hidden(citizen_id=citizen_id, section=section, entry_id=entry_id,
                              action="read", entry=entry)
        # The audited decision of this read: the scope's clause that selected it.
        access.audit_read_within(citizen_id=citizen_id, section=section, entry=entry,
                                 scope=scope, appended=appended)
        return entry, key

    def _deny_hidden(
        self, *, citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID, action: str,
        entry: RecordEntry | None = None,
    ) -> NoReturn:
        """Audit a request for an entry the caller gets nothing of, then 404. `entry`: the
        one the request named, found by id in the citizen's section (None: there is none
        there, decided as a request for the section); its label decides, never its content."""
        self.access.decide(citizen_id=citizen_id, section=section, action=action,
                           entry=entry)
        self.access.deny(entry=True)  # commits the audit event and raises
        raise NotFound()

    def _audit_hidden(
        self, *, citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID, action: str
    ) -> None:
        """The audit event of a request for an entry the caller gets nothing of: it names the
        entry and the rule that hid it (the entry's label is read for that, never its
        content); probing for entries that do not exist is audited too."""
        row = self.session.execute(_envelope_query(), {"entry_id": entry_id}).one_or_none()
        if row is not None and (row.citizen_id, row.section) == (citizen_id, section):
            self.access.decide(citizen_id=citizen_id, section=section, action=action, entry=row)
        else:
            self.access.decide(citizen_id=citizen_id, section=section, action=action)

    # --- lists and views --------------------------------------------------------------------

    def page(
        self,
        *,
        citizen_id: uuid.UUID,
        section: str,
        limit: int,
        position: Mapping[str, Any] | None,
        updated_since: dt.datetime | None,
        include_entered_in_error: bool,
    ) -> Page:
        """One page of a section, the permission in the WHERE clause (never filtered after).

        When the worker holds a standing decision on the section's lists (consent.standing),
        one statement loads the facts, appends the audit event and selects the page within
        the predicted scope, the page only if the database found the facts the prediction
        rested on; Python then decides the scope on those facts, which must be the one
        predicted. Otherwise: the facts, then the page carrying the audit append."""
        access = self.access
        order = "updated" if updated_since is not None else "clinical"
        any_status = include_entered_in_error or updated_since is not None
        after, params = _position_params(order, position)
        params.update(citizen_id=citizen_id, limit=limit + 1, updated_since=updated_since)
        rows = None
        standing = access.standing_view(citizen_id=citizen_id, section=section)
        if standing is not None:
            predicted = scope_key(dict(standing.standing.scopes or ())[section])
            rows = load_facts_with_content(
                self.session, citizen_id=citizen_id, now=access.now,
                content=_list_content(section, predicted, order, any_status, after),
                params=params, standing=standing.params)
            if access.standing_appended(standing, citizen_id):
                access.section_scope(citizen_id=citizen_id, section=section,
                                     appended=standing)
            else:
                rows = None
        if rows is None:
            citizen_birth_date(self.session, citizen_id)  # 404 for nobody
            with audit_rides_with_content(self.session):
                scope = access.section_scope(citizen_id=citizen_id, section=section)
                query = _list_query(section, scope_key(scope), order, any_status, after)
                rows = self._content(query, params)
        next_position = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            if order == "updated":
                next_position = {"o": "u", "t": last.updated_at.isoformat(), "id": str(last.id)}
            else:
                next_position = {"o": "c", "d": last.clinical_date.isoformat()
                                 if last.clinical_date else None, "id": str(last.id)}
        return Page(entries=rows, next_position=next_position)

    def summary(
        self, *, citizen_id: uuid.UUID, sections: Sequence[str]
    ) -> tuple[Citizen, SummaryEntries]:
        """The citizen and a summary of their record: one audited decision (`summary`, read;
        404 for nobody, 403/404 denied), then the current entries of `sections` and the
        latest vitals, each within the caller's scope of its section and the token's read
        scopes (parts of that one read), in one statement carrying the read's audit append.
        `sections` never holds the observations: the summary's are its latest vitals.

        When the worker holds a standing decision on this summary (consent.standing), one
        statement loads the citizen and their facts, appends the audit event and selects the
        entries within the predicted scopes, the entries only if the database found the facts
        the prediction rested on; Python then decides on those facts, which must give the
        decision and scopes predicted."""
        if "observations" in sections:
            raise ValueError("the summary's observations are its latest vitals")
        access = self.access
        view = ("summary", tuple(sections))
        standing = access.standing_view(citizen_id=citizen_id, section="summary", view=view)
        if standing is not None:
            query = _summary_query(*_summary_keys(dict(standing.standing.scopes or ())))
            rows = None
            if query is not None:
                rows = load_facts_with_content(
                    self.session, citizen_id=citizen_id, now=access.now, entities=True,
                    content=_newest_first(query), params={"citizen_id": citizen_id},
                    standing=standing.params)
            if access.standing_appended(standing, citizen_id) and rows is not None:
                scopes = self._summary_scopes(citizen_id, sections)
                access.confirm_view(standing, citizen_id=citizen_id, section="summary",
                                    scopes=scopes)
                return self._citizen(citizen_id), _summary_entries(sections, scopes, rows)
        citizen = self._citizen(citizen_id)
        with audit_rides_with_content(self.session):  # the read's audit append, its entries
            decision = access.require(citizen_id=citizen_id, section="summary", action="read")
            scopes = self._summary_scopes(citizen_id, sections)
            query = _summary_query(*_summary_keys(dict(scopes)))
            # The summary's audit append rides here when it waits.
            found = () if query is None else self._content(query, {"citizen_id": citizen_id})
            entries = _summary_entries(sections, scopes, found)
        access.remember_view(citizen_id=citizen_id, section="summary", view=view,
                             decision=decision, scopes=scopes)
        return citizen, entries

    def _citizen(self, citizen_id: uuid.UUID) -> Citizen:
        citizen = loaded_citizen(self.session, citizen_id)
        if citizen is None:
            raise NotFound()
        return citizen

    def _summary_scopes(
        self, citizen_id: uuid.UUID, sections: Sequence[str]
    ) -> tuple[tuple[str, Scope], ...]:
        """The caller's scope of each summary section the token reads, and of the
        observations (the latest vitals) when it reads those."""
        readable = [s for s in (*sections, "observations") if self._token_reads(s)]
        return tuple((s, self.access.quiet_scope(citizen_id=citizen_id, section=s))
                     for s in readable)

    def export(self, *, citizen_id: uuid.UUID) -> ExportedEntries:
        """Every entry the caller's lists show (entered-in-error ones included, as a list asked
        for them shows them) with the earlier versions the versions route shows (part of the
        audited export)."""
        pairs = []
        for section in SECTIONS:
            if not self._token_reads(section):
                continue
            key = scope_key(self.access.quiet_scope(citizen_id=citizen_id, section=section))
            if key is not None:
                pairs.append((section, key))
        if not pairs:
            return ExportedEntries(sections=(), entries=[], versions={})
        entries_query, versions_query = _export_queries(tuple(pairs))
        params = {"citizen_id": citizen_id}
        entries = list(self.session.scalars(entries_query, params))
        versions: dict[uuid.UUID, list[RecordEntryVersion]] = {}
        for version in self.session.scalars(versions_query, params):
            versions.setdefault(version.entry_id, []).append(version)
        return ExportedEntries(sections=tuple(s for s, _ in pairs), entries=entries,
                               versions=versions)

    def locate(self, *, entry_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        """Whose entry an id is and in which section (never content): a FHIR read names no
        person; `entry` then decides and audits the read."""
        row = self.session.execute(_envelope_query(), {"entry_id": entry_id}).one_or_none()
        return None if row is None else (row.citizen_id, row.section)

    def care_list_entries(
        self, *, citizen_ids: Sequence[uuid.UUID], sections: Sequence[str],
        since: Mapping[str, dt.date] | None = None,
    ) -> dict[uuid.UUID, list[EntryRow]]:
        """The current entries of `sections` of the people of a care list page (a family
        doctor's panel), each person's within the caller's scope of each section and the
        token's read scopes: part of the list's audited decisions, one per person
        (`RecordAccess.decide_list_reads`). `since` keeps only a section's entries dated from
        that day (what a flag looks back over). People whose scopes are alike share one
        statement."""
        since = since or {}
        readable = tuple(s for s in sections if self._token_reads(s))
        groups: dict[tuple[tuple[str, ScopeKey], ...], list[uuid.UUID]] = {}
        for citizen_id in citizen_ids:
            pairs = []
            for section in readable:
                key = scope_key(self.access.quiet_scope(citizen_id=citizen_id, section=section))
                if key is not None:
                    pairs.append((section, key))
            if pairs:
                groups.setdefault(tuple(pairs), []).append(citizen_id)
        found: dict[uuid.UUID, list[EntryRow]] = {cid: [] for cid in citizen_ids}
        keyring(self.session).preload(cid for ids in groups.values() for cid in ids)
        bounded = tuple(sorted(s for s in since if s in readable))
        params: dict[str, Any] = {f"since_{i}": since[s] for i, s in enumerate(bounded)}
        for pairs, ids in groups.items():
            for row in self.session.execute(_care_list_query(pairs, bounded),
                                            {**params, "citizen_ids": ids}):
                found[row.citizen_id].append(_entry_row(row, self.session))
        return found

    def schedule_doses(self, *, citizen_id: uuid.UUID) -> list[RecordEntry]:
        """The current immunizations the caller's schedule counts, oldest first: those within
        the caller's scope of the immunization schedule (part of its audited read)."""
        key = scope_key(self.access.quiet_scope(citizen_id=citizen_id,
                                                section="immunization-schedule"))
        if key is None:
            return []
        # The schedule's audit append, decided by the caller, rides here when it waits.
        return self._content(_doses_query(key), {"citizen_id": citizen_id})

    def _content(self, query: Any, params: Mapping[str, Any]) -> list[Any]:
        """The rows of a read's content query (of the person `citizen_id`, checked), carrying
        the read's audit append when one waits for it (`audit_rides_with_content`); its plan
        kept by the server (`core.kept_plans`)."""
        query, audit, options = with_pending_audit(self.session, query)
        return only_of(params["citizen_id"], list(self.session.scalars(
            query, {**params, **audit}, execution_options={**options, KEEP_PLAN: True})))

    def _token_reads(self, section: str) -> bool:
        return has_scope(self.access.caller, resource=SECTION_RESOURCES[section],
                         interaction="r")

    def _require_token_read(self, section: str) -> None:
        if not self._token_reads(section):
            raise _insufficient_read_scope(self.access, section)

    # --- stored answers of creates ----------------------------------------------------------

    def replay(
        self, *, scope: bytes, fingerprint: bytes, section: str | None,
        citizen_id: uuid.UUID | None = None,
    ) -> idempotency.Replay | None:
        """The first answer to an Idempotency-Key (None: the key is new), served only after
        the decision a read of the entry it created gets now: the token's read scope (403)
        and the policy (404, audited). `section` None: a registration, whose answer is the
        person the caller registered; the route has decided the registration already.

        `citizen_id`: the person a create in `section` is about. Whether the key was used at
        all then rides in the statement of their facts (and of the token's liveness), which
        the create needs anyway: the stored answers are read only when it was, or when there
        is no such person (a key used for another body answers 422 all the same)."""
        if citizen_id is not None:
            access = self.access
            _, used = load_facts_along(
                self.session, citizen_id=citizen_id, now=access.now,
                actor=access.caller.acting_for_citizen(citizen_id), along=_KEY_USED,
                params={"key_scope": scope})
            if used is False:
                return None
        replay = idempotency.lookup(self.session, scope=scope, fingerprint=fingerprint)
        if replay is None or section is None:
            return replay
        self._require_token_read(section)
        self._readable(citizen_id=_citizen_of(replay), section=section,
                       entry_id=_entry_of(replay))
        return replay

    def batch_replays(
        self, *, section: str, keys: Sequence[tuple[bytes, bytes]]
    ) -> dict[bytes, idempotency.Replay | Problem]:
        """`replay` for a batch's items, one answer per (scope, fingerprint) used before: the
        first answer, or the item's problem (422 key reused, 403 scope, 404 not readable now).
        The entries are selected together, within each citizen's scope; each replay is one
        audited read decision."""
        answers: dict[bytes, idempotency.Replay | Problem] = dict(
            idempotency.lookup_many(self.session, keys))
        replays = {scope: answer for scope, answer in answers.items()
                   if isinstance(answer, idempotency.Replay)}
        if not replays:
            return answers
        if not self._token_reads(section):
            denied = _insufficient_read_scope(self.access, section)
            return {**answers, **dict.fromkeys(replays, denied)}
        citizens = {_citizen_of(replay) for replay in replays.values()}
        by_key: dict[ScopeKey, list[uuid.UUID]] = {}
        for citizen_id in sorted(citizens):
            key = scope_key(self.access.quiet_scope(citizen_id=citizen_id, section=section))
            if key is not None:
                by_key.setdefault(key, []).append(citizen_id)
        visible: dict[uuid.UUID, RecordEntry] = {}
        wanted = [_entry_of(replay) for replay in replays.values()]
        for key, citizen_ids in by_key.items():
            visible.update((entry.id, entry) for entry in self.session.scalars(
                _replayed_query(key),
                {"ids": wanted, "citizen_ids": citizen_ids, "section": section}))
        for scope, replay in replays.items():
            citizen_id, entry_id = _citizen_of(replay), _entry_of(replay)
            entry = visible.get(entry_id)
            decision = None
            if entry is not None and entry.citizen_id == citizen_id:
                decision = self.access.decide(citizen_id=citizen_id, section=section,
                                              action="read", entry=entry)
            if decision is None or not decision.permit:
                if decision is None:
                    self._audit_hidden(citizen_id=citizen_id, section=section,
                                       entry_id=entry_id, action="read")
                answers[scope] = NotFound()
        return answers

    # --- writes -----------------------------------------------------------------------------

    def new_entry(
        self,
        *,
        citizen_id: uuid.UUID,
        section: str,
        content: Mapping[str, Any],
        clinical_date: dt.date | None,
        sensitivity: str,
        source: str,
        facility_id: uuid.UUID | None,
        stage: bool = True,
    ) -> RecordEntry:
        """A new entry (version 1) written by the caller; `stage=False`: the caller inserts it
        (a batch, with `core.db.insert_unstaged`)."""
        now = self.access.now
        entry = RecordEntry(
            id=uuid.uuid4(), citizen_id=citizen_id, section=section,
            clinical_date=clinical_date, status=STATUS_CURRENT, sensitivity=sensitivity,
            source=source, version=1,
            author_practitioner_id=self.access.caller.practitioner_id,
            author_account_id=self.access.caller.account_id, facility_id=facility_id,
            created_at=now, updated_at=now,
        )
        entry.content = dict(content)
        if stage:
            self.session.add(entry)
        return entry

    def keep_version(self, entry: RecordEntry) -> None:
        """Keep the entry as it stands as an earlier version (before a correction)."""
        version = RecordEntryVersion(
            id=uuid.uuid4(), entry_id=entry.id, citizen_id=entry.citizen_id,
            version=entry.version, clinical_date=entry.clinical_date, status=entry.status,
            sensitivity=entry.sensitivity, source=entry.source,
            author_practitioner_id=entry.author_practitioner_id,
            author_account_id=entry.author_account_id, facility_id=entry.facility_id,
            verified_at=entry.verified_at,
            verified_by_practitioner_id=entry.verified_by_practitioner_id,
            verified_facility_id=entry.verified_facility_id,
            recorded_at=entry.updated_at, superseded_at=self.access.now,
        )
        version.content = entry.content
        self.session.add(version)


@dataclass(slots=True)
class EntryRow:
    """An entry as the care lists, the schedule and the reminders need it: the envelope's
    columns and the content, decrypted on first use, without an ORM entity (a commune's
    worklist reads tens of thousands of doses; building entities cost more than reading)."""

    id: uuid.UUID
    citizen_id: uuid.UUID
    section: str
    status: str
    source: str
    clinical_date: dt.date | None
    facility_id: uuid.UUID | None
    verified_at: dt.datetime | None
    created_at: dt.datetime
    content_ct: bytes
    session: Session
    _content: Any = None

    @property
    def content(self) -> Any:
        if self._content is None:
            self._content = RecordEntry.content.decrypt_stored(
                self.session, row_id=self.id, citizen_id=self.citizen_id,
                ciphertext=self.content_ct)
        return self._content


def immunization_doses_of(
    session: Session, citizen_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[EntryRow]]:
    """The current immunizations of many citizens at once, oldest first (the vaccination
    reminders and a station's worklist, whose callers audit their own decisions; it counts the
    doses `REMINDER_SCOPE` shows, in its SQL like every other selection)."""
    ids = list(citizen_ids)
    if not ids:
        return {}
    keyring(session).preload(ids)
    grouped: dict[uuid.UUID, list[EntryRow]] = {citizen_id: [] for citizen_id in ids}
    for row in session.execute(_doses_of_many_query(), {"citizen_ids": ids}):
        grouped.setdefault(row.citizen_id, []).append(_entry_row(row, session))
    return grouped


def _entry_row(row: Any, session: Session) -> EntryRow:
    return EntryRow(
        id=row.id, citizen_id=row.citizen_id, section=row.section, status=row.status,
        source=row.source, clinical_date=row.clinical_date, facility_id=row.facility_id,
        verified_at=row.verified_at, created_at=row.created_at, content_ct=row.content_ct,
        session=session)


# What an EntryRow is read from.
_ENTRY_ROW_COLUMNS = (
    RecordEntry.id, RecordEntry.citizen_id, RecordEntry.section, RecordEntry.status,
    RecordEntry.source, RecordEntry.clinical_date, RecordEntry.facility_id,
    RecordEntry.verified_at, RecordEntry.created_at, RecordEntry.content_ct,
)


def periodic_exams_due_of(
    session: Session, citizen_ids: Iterable[uuid.UUID], *, until: dt.date
) -> dict[uuid.UUID, dt.date]:
    """The next periodic examination each citizen's latest examination set, when it falls on
    or before `until` (the periodic-exam reminders; a system job like the doses above, with the
    same `REMINDER_SCOPE` in its SQL)."""
    ids = list(citizen_ids)
    if not ids:
        return {}
    keyring(session).preload(ids)
    latest: dict[uuid.UUID, RecordEntry] = {}
    for entry in session.scalars(_exams_of_many_query(), {"citizen_ids": ids}):
        latest[entry.citizen_id] = entry  # oldest first: the last one wins
    due: dict[uuid.UUID, dt.date] = {}
    for citizen_id, entry in latest.items():
        content = entry.content
        raw = content.get("next_exam_due") if isinstance(content, dict) else None
        if raw:
            day = dt.date.fromisoformat(raw)
            if day <= until:
                due[citizen_id] = day
    return due


def _citizen_of(replay: idempotency.Replay) -> uuid.UUID:
    if replay.citizen_id is None:
        raise NotFound()
    return replay.citizen_id


def _entry_of(replay: idempotency.Replay) -> uuid.UUID:
    try:
        return uuid.UUID(str(replay.resource_id))
    except ValueError:
        raise NotFound() from None


def _insufficient_read_scope(access: RecordAccess, section: str) -> InsufficientScope:
    context = smart_context(access.caller) or "user"
    return InsufficientScope(required_scope(context=context, resource=SECTION_RESOURCES[section],
                                            interaction="r"))


# --- the permission as SQL, and the statements built once ------------------------------------


@functools.lru_cache(maxsize=1024)
def filter_for(key: ScopeKey | None, model: Any = RecordEntry) -> ColumnElement[bool]:
    """A scope as SQL on `model`'s label and clinical date (entries or versions): OR over
    clauses of (label allowed AND clinical date in the period). Built once per distinct scope:
    most readers see a section through the same few scopes, and building the expression cost
    more than running it."""
    if key is None:
        return false()
    clauses = []
    for labels, data_from, data_until in key:
        # The labels as plain bound values, not an expanding IN: that one is rendered anew at
        # every execution, and these are a fixed vocabulary.
        parts: list[ColumnElement[bool]] = [
            model.sensitivity == labels[0] if len(labels) == 1
            else model.sensitivity.in_([literal(label) for label in labels])]
        if data_from is not None:
            parts.append(model.clinical_date >= data_from)
        if data_until is not None:
            parts.append(model.clinical_date <= data_until)
        clauses.append(and_(*parts))
    return or_(*clauses)


def _bound(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


_ENTRIES = RecordEntry.__table__.c
_VERSIONS = RecordEntryVersion.__table__.c


@functools.lru_cache(maxsize=256)
def _entry_query(key: ScopeKey | None) -> Any:
    """One entry by id, citizen and section; within the scope `key` (None: a write, decided
    on the entry itself)."""
    query = select(RecordEntry).where(
        RecordEntry.id == _bound("entry_id", _ENTRIES.id),
        RecordEntry.citizen_id == _bound("citizen_id", _ENTRIES.citizen_id),
        RecordEntry.section == _bound("section", _ENTRIES.section),
    )
    return query if key is None else query.where(filter_for(key))


# The entry a single read names, selected with its citizen's facts (consent.pdp.Along); its
# label is what a standing decision predicts (consent.standing).
_ENTRY_ALONG = Along(entity=RecordEntry, on=lambda citizen: and_(
    RecordEntry.citizen_id == citizen,
    RecordEntry.id == _bound("entry_id", _ENTRIES.id),
    RecordEntry.section == _bound("section", _ENTRIES.section),
), label=lambda facts: facts.c.sensitivity)


# Whether an Idempotency-Key was used (by anyone: the key is the caller's, not the person's),
# selected with the facts of the person a create is about.
_KEY_USED = Along(entity=exists().where(
    idempotency.IdempotencyRecord.scope == bindparam(
        "key_scope", type_=idempotency.IdempotencyRecord.__table__.c.scope.type),
).label("key_used"))


@functools.cache
def _envelope_query() -> Any:
    """What the audit of a hidden entry needs (never its content)."""
    entry = RecordEntry
    return select(entry.id, entry.citizen_id, entry.section, entry.sensitivity,
                  entry.author_practitioner_id, entry.clinical_date, entry.source,
                  entry.facility_id).where(entry.id == _bound("entry_id", _ENTRIES.id))


@functools.lru_cache(maxsize=256)
def _versions_query(key: ScopeKey) -> Any:
    version = RecordEntryVersion
    return select(version).where(
        version.entry_id == _bound("entry_id", _VERSIONS.entry_id),
        version.citizen_id == _bound("citizen_id", _VERSIONS.citizen_id),
        filter_for(key, RecordEntryVersion),
    ).order_by(version.version.desc())


@functools.lru_cache(maxsize=1024)
def _list_query(section: str, scope: ScopeKey | None, order: str, any_status: bool,
                after: str | None) -> Any:
    """A section page's query, built once per shape (scope, ordering, cursor kind); values are
    bound at execution (citizen_id, updated_since, limit, after_*)."""
    entry = RecordEntry
    query = select(entry).where(
        entry.citizen_id == _bound("citizen_id", _ENTRIES.citizen_id),
        entry.section == section, filter_for(scope),
    )
    if order == "updated":
        # Delta sync: everything changed since, retractions included, oldest change first.
        query = query.where(entry.updated_at > _bound("updated_since", _ENTRIES.updated_at))
    elif not any_status:
        query = query.where(entry.status == STATUS_CURRENT)
    last_id = _bound("after_id", _ENTRIES.id)
    if after == "updated":
        stamp = _bound("after_stamp", _ENTRIES.updated_at)
        query = query.where((entry.updated_at > stamp)
                            | ((entry.updated_at == stamp) & (entry.id > last_id)))
    elif after == "undated":
        query = query.where(entry.clinical_date.is_(None), entry.id < last_id)
    elif after == "dated":
        day = _bound("after_day", _ENTRIES.clinical_date)
        query = query.where((entry.clinical_date < day)
                            | ((entry.clinical_date == day) & (entry.id < last_id))
                            | entry.clinical_date.is_(None))
    return query.order_by(*_page_order(entry, order)).limit(bindparam("limit"))


def _page_order(entry: Any, order: str) -> tuple[Any, ...]:
    if order == "updated":
        return entry.updated_at.asc(), entry.id.asc()
    return entry.clinical_date.desc().nulls_last(), entry.id.desc()


@functools.lru_cache(maxsize=1024)
def _list_content(section: str, scope: ScopeKey | None, order: str, any_status: bool,
                  after: str | None) -> Content:
    """A section page's query as the content of a statement carrying a standing decision."""
    return Content(entity=RecordEntry, query=_list_query(section, scope, order, any_status, after),
                   order=functools.partial(_page_order, order=order))


def _position_params(
    order: str, position: Mapping[str, Any] | None
) -> tuple[str | None, dict[str, Any]]:
    """The cursor's kind and values (a cursor of another ordering is a 400)."""
    if not position:
        return None, {}
    expected = "u" if order == "updated" else "c"
    try:
        if position.get("o") != expected:
            raise ValueError("cursor of another ordering")
        last_id = uuid.UUID(str(position["id"]))
        if order == "updated":
            stamp = dt.datetime.fromisoformat(str(position["t"]))
            if stamp.tzinfo is None:
                raise ValueError("cursor timestamp without offset")
            return "updated", {"after_id": last_id, "after_stamp": stamp}
        day = dt.date.fromisoformat(position["d"]) if position.get("d") else None
    except (KeyError, ValueError, TypeError) as exc:
        raise BadRequest(Message("problem.invalid-cursor.detail"), code="invalid-cursor") from exc
    if day is None:
        return "undated", {"after_id": last_id}
    return "dated", {"after_id": last_id, "after_day": day}


def _summary_keys(
    scopes: Mapping[str, Scope]
) -> tuple[tuple[tuple[str, ScopeKey], ...], ScopeKey | None]:
    """What of the summary's scopes reaches SQL: the sections something is visible of, and
    the vitals' scope."""
    pairs = []
    for section, scope in scopes.items():
        key = scope_key(scope)
        if section != "observations" and key is not None:
            pairs.append((section, key))
    vitals = scope_key(scopes["observations"]) if "observations" in scopes else None
    return tuple(pairs), vitals


def _summary_entries(sections: Sequence[str], scopes: tuple[tuple[str, Scope], ...],
                     rows: Iterable[RecordEntry]) -> SummaryEntries:
    by_section: dict[str, list[RecordEntry]] = {s: [] for s in sections}
    vitals: list[RecordEntry] = []
    for entry in rows:  # newest first, the vitals among them
        (vitals if entry.section == "observations" else by_section[entry.section]).append(
            entry)
    readable = tuple(s for s, _ in scopes if s != "observations")
    return SummaryEntries(
        sections=readable,
        visible=frozenset(s for s, scope in scopes
                          if s != "observations" and scope_key(scope) is not None),
        entries=by_section, vitals=vitals,
    )


@functools.lru_cache(maxsize=256)
def _newest_first(query: Any) -> Content:
    """The summary's query as the content of a statement carrying a standing decision."""
    return Content(entity=RecordEntry, query=query, order=_summary_order)


_summary_order = functools.partial(_page_order, order="clinical")  # newest first, as lists


@functools.lru_cache(maxsize=256)
def _summary_query(sections: tuple[tuple[str, ScopeKey], ...],
                   vitals: ScopeKey | None) -> Any:
    """The summary's one query: the current entries of the summary sections and the latest
    vitals (observations, newest first, at most LATEST_VITALS), each within its scope; built
    once per combination of visible scopes (building it cost more than running it). None:
    nothing to select."""
    citizen = _bound("citizen_id", _ENTRIES.citizen_id)
    wanted = [(RecordEntry.section == s) & filter_for(key) for s, key in sections]
    if vitals is not None:
        latest = select(RecordEntry.id).where(
            RecordEntry.citizen_id == citizen, RecordEntry.section == "observations",
            RecordEntry.status == STATUS_CURRENT, filter_for(vitals),
        ).order_by(*_summary_order(RecordEntry)).limit(LATEST_VITALS)
        wanted.append(RecordEntry.id.in_(latest))
    if not wanted:
        return None
    return select(RecordEntry).where(
        RecordEntry.citizen_id == citizen, RecordEntry.status == STATUS_CURRENT, or_(*wanted),
    ).order_by(*_summary_order(RecordEntry))


@functools.lru_cache(maxsize=256)
def _export_queries(sections: tuple[tuple[str, ScopeKey], ...]) -> tuple[Any, Any]:
    """The export's two queries: the entries a list of each section shows (any status, in the
    list's order) and the versions the versions route shows of them."""
    entry, version = RecordEntry, RecordEntryVersion
    visible = or_(*((entry.section == s) & filter_for(key) for s, key in sections))
    entries = select(entry).where(
        entry.citizen_id == _bound("citizen_id", _ENTRIES.citizen_id), visible,
    ).order_by(entry.section, entry.clinical_date.desc().nulls_last(), entry.id.desc())
    versions = select(version).join(entry, entry.id == version.entry_id).where(
        version.citizen_id == _bound("citizen_id", _VERSIONS.citizen_id),
        entry.citizen_id == version.citizen_id,
        or_(*((entry.section == s) & filter_for(key) & filter_for(key, RecordEntryVersion)
              for s, key in sections)),
    ).order_by(version.entry_id, version.version)
    return entries, versions


@functools.lru_cache(maxsize=256)
def _doses_query(key: ScopeKey) -> Any:
    return select(RecordEntry).where(
        RecordEntry.citizen_id == _bound("citizen_id", _ENTRIES.citizen_id),
        RecordEntry.section == "immunizations", RecordEntry.status == STATUS_CURRENT,
        filter_for(key),
    ).order_by(RecordEntry.clinical_date.asc())


@functools.lru_cache(maxsize=64)
def _care_list_query(sections: tuple[tuple[str, ScopeKey], ...],
                     bounded: tuple[str, ...]) -> Any:
    """Current entries of many people, each section within its scope (and, for the `bounded`
    sections, from its `since_<n>` day on), oldest first."""
    def clause(section: str, key: ScopeKey) -> ColumnElement[bool]:
        condition = (RecordEntry.section == section) & filter_for(key)
        if section in bounded:
            since = bindparam(f"since_{bounded.index(section)}",
                              type_=RecordEntry.clinical_date.type)
            condition = condition & (RecordEntry.clinical_date >= since)
        return condition

    return select(*_ENTRY_ROW_COLUMNS).where(
        RecordEntry.citizen_id.in_(bindparam("citizen_ids", expanding=True)),
        RecordEntry.status == STATUS_CURRENT,
        or_(*(clause(s, key) for s, key in sections)),
    ).order_by(RecordEntry.clinical_date.asc().nulls_first(), RecordEntry.created_at.asc())


@functools.cache
def _doses_of_many_query() -> Any:
    return select(*_ENTRY_ROW_COLUMNS).where(
        RecordEntry.citizen_id.in_(bindparam("citizen_ids", expanding=True)),
        RecordEntry.section == "immunizations", RecordEntry.status == STATUS_CURRENT,
        filter_for(REMINDER_SCOPE),
    ).order_by(RecordEntry.clinical_date.asc())


@functools.cache
def _exams_of_many_query() -> Any:
    return select(RecordEntry).where(
        RecordEntry.citizen_id.in_(bindparam("citizen_ids", expanding=True)),
        RecordEntry.section == "examinations", RecordEntry.status == STATUS_CURRENT,
        filter_for(REMINDER_SCOPE),
    ).order_by(RecordEntry.clinical_date.asc().nulls_first(), RecordEntry.created_at.asc())


@functools.lru_cache(maxsize=64)
def _replayed_query(key: ScopeKey) -> Any:
    return select(RecordEntry).where(
        RecordEntry.id.in_(bindparam("ids", expanding=True)),
        RecordEntry.citizen_id.in_(bindparam("citizen_ids", expanding=True)),
        RecordEntry.section == _bound("section", _ENTRIES.section),
        filter_for(key),
    )
