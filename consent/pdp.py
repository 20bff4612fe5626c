"""The decision point: load the facts, ask the pure policy, audit the answer (DESIGN.md §5).

Everything runs in the caller's session and transaction and nothing here commits: the audit
event commits together with the action it allowed. A denial has nothing else to commit, so
callers commit before answering 404/403 (`raise_if_denied` does both) or the rollback at the
end of the request would take the denial's audit event with it.

A denial is answered 403 only to a caller the policy relates to the citizen (Decision.related:
self, guardian, proxy, family doctor, consent, break-glass, the station's catchment); anyone
else gets the 404 a missing person gets, so the answer never tells who exists (OWASP API1).
Relatedness comes from the facts the decision loaded; only a station's denial loads one more
part (its catchment) to tell.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import (
    Boolean,
    LargeBinary,
    String,
    and_,
    bindparam,
    event,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from consent.audit import append_event, append_event_with, append_events, append_if
from consent.models import AccessDigest, BreakGlassSession, Consent
from consent.models import Guardianship as GuardianshipRow
from consent.policy import STATION_REGISTRY_ACTIONS, decide, visible_scope
from consent.policy_types import (
    READ_ACTIONS,
    SENSITIVITY_LABELS,
    VIETNAM_TZ,
    Actor,
    BreakGlass,
    Decision,
    Facts,
    FamilyDoctor,
    Grant,
    Guardianship,
    PolicySettings,
    Scope,
    Target,
)
from core.db import StatementProbe, pending_probe, utcnow
from core.encryption import ERASED, KEY_RETIRED, DataKey, keyring
from core.errors import Forbidden, NotFound
from core.events import RECORD_ACCESSED, DomainEvent, emit
from core.kept_plans import KEEP_PLAN
from core.transactions import ALONE
from registry.caller import Caller
from registry.models import Citizen, Facility, FamilyDoctorAssignment
from registry.reference.admin_units import current_commune, current_province

# Ended consents, guardianships and break-glass sessions are still loaded this long after they
# ended, so a denial can name why ("consent-expired") instead of a bare default deny.
RECENTLY_ENDED = dt.timedelta(days=30)

DEFAULT_GUARDIAN_AGE_LIMIT = 16
DEFAULT_TEEN_PRIVACY_AGE = 12
DEFAULT_BREAK_GLASS_HOURS = 4.0

_FACTS_KEY = "phr.consent.facts"
_READER_KEY = "phr.consent.digest_reader"
_THIRD_PARTY_ROLES = frozenset({"practitioner", "station"})
_WRITES = frozenset({"create", "update", "entered-in-error", "verify"})
# Reads decided in bulk: one person on a list of many (each is still one audit event).
_LIST_READS = frozenset({("read", "care-panel"), ("read", "immunization-worklist")})


@dataclass(frozen=True)
class RequestContext:
    """What the audit needs about the request besides actor and target."""

    account_id: uuid.UUID | None
    client_id: str | None
    request_id: str | None
    actor_label: str | None


def request_context(caller: Caller) -> RequestContext:
    """The audit's view of the request, from the caller auth built at the edge."""
    return RequestContext(account_id=caller.account_id, client_id=caller.client_id,
                          request_id=caller.request_id, actor_label=caller.role)


# --- settings -------------------------------------------------------------------------------


def policy_settings(config: Mapping[str, Any] | None = None) -> PolicySettings:
    """The policy's numbers from app config (GUARDIAN_AGE_LIMIT, TEEN_PRIVACY_AGE, ...)."""
    config = current_app.config if config is None else config
    return PolicySettings(
        guardian_age_limit=int(config.get("GUARDIAN_AGE_LIMIT", DEFAULT_GUARDIAN_AGE_LIMIT)),
        teen_privacy_age=int(config.get("TEEN_PRIVACY_AGE", DEFAULT_TEEN_PRIVACY_AGE)),
        break_glass_hours=float(config.get("BREAK_GLASS_HOURS", DEFAULT_BREAK_GLASS_HOURS)),
    )


# --- facts ----------------------------------------------------------------------------------


@dataclass
class _Loaded:
    """What has been read about one citizen in this transaction; None parts are not loaded yet."""

    exists: bool | None = None
    birth_date: dt.date | None = None
    family_doctor: FamilyDoctor | None = None
    guardianships: tuple[Guardianship, ...] | None = None
    consents: tuple[Grant, ...] | None = None
    break_glass: tuple[BreakGlass, ...] | None = None
    catchment: frozenset[uuid.UUID] = frozenset()
    parts: set[str] = field(default_factory=set)
    # Whether the access digest of a reader (by its key) already shows today: a read's audit
    # append then has no notice to write with it and may commit alone.
    read_today: dict[str, bool] = field(default_factory=dict)
    # Holds the ORM row so it stays in the session's (weak) identity map for the transaction:
    # services asking for the citizen after the decision get it without a query.
    citizen: Citizen | None = None
    # What a standing decision may rest on (consent.standing), when the facts came in one
    # row with nothing in view: birth date ciphertext, family doctor, facility.
    standing_facts: tuple[bytes, uuid.UUID | None, uuid.UUID | None] | None = None
    # Whether the statement that loaded the facts carried a standing decision's audit append,
    # and whether it ran.
    standing_carried: bool = False
    standing_audited: bool = False


def _cache(session: Session) -> dict[uuid.UUID, _Loaded]:
    return session.info.setdefault(_FACTS_KEY, {})


def forget_facts(session: Session, citizen_id: uuid.UUID | None = None) -> None:
    """Drop cached facts (after a change to consents, guardians or break-glass)."""
    if citizen_id is None:
        session.info.pop(_FACTS_KEY, None)
    else:
        _cache(session).pop(citizen_id, None)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_at_transaction_end(session: Session) -> None:
    # Facts are valid for one transaction: a revoked consent must count on the next request
    # even when a worker or a test keeps its session open.
    session.info.pop(_FACTS_KEY, None)


def _parts_for(actor: Actor | None, section: str | None = None,
               action: str | None = None) -> frozenset[str]:
    """The parts of the facts the policy reads for this actor (without one: the person's
    relationships; ask for the catchment with `parts`).

    A station's catchment is read only for its registry acts (and, by `authorize`, to answer a
    denial): immunizations and lookups, a station's daily work, need no fact at all."""
    if actor is None:
        return frozenset({"citizen", "guardianships", "grants"})
    if actor.role == "station" and (section, action) in STATION_REGISTRY_ACTIONS:
        return frozenset({"catchment"})
    if actor.role == "citizen":
        acting_for = actor.acting_for or actor.citizen_id
        if actor.citizen_id is not None and acting_for != actor.citizen_id:
            return frozenset({"citizen", "guardianships"})
        return frozenset({"citizen"})
    if actor.role == "practitioner":
        return frozenset({"citizen", "grants"})
    return frozenset()  # stations and admins: the policy needs no fact about the citizen


def _consents_in_view(since: Any) -> list[ColumnElement[bool]]:
    return [
        or_(Consent.revoked_at.is_(None), Consent.revoked_at > since),
        or_(Consent.expires_at.is_(None), Consent.expires_at > since),
    ]


@dataclass(frozen=True, eq=False)
class Along:
    """One more row selected with a citizen's facts, in the same statement: `entity` (an ORM
    entity) outer-joined on `on(citizens.id)`, its other conditions bound values of the
    caller's (ehr's entry by id); or, with `on` None, one more column of the facts row (a
    scalar subquery on bound values: whether an Idempotency-Key was used). Built once by its
    user (statements are cached by it)."""

    entity: Any
    on: Any = None  # Callable[[ColumnElement], ColumnElement[bool]] | None
    # The row's label as a column of the facts CTE (a standing decision's prediction,
    # consent.standing): Callable[[CTE], ColumnElement] | None.
    label: Any = None

    @functools.cached_property
    def alone(self) -> Any:
        """The row on its own, when the facts are loaded already (citizen `along_citizen_id`)."""
        if self.on is None:
            return select(self.entity)
        return select(self.entity).where(self.on(bindparam(
            "along_citizen_id", type_=Citizen.__table__.c.id.type)))


@dataclass(frozen=True, eq=False)
class Content:
    """A read's content (a list page, a summary) that a statement carrying a standing
    decision (consent.standing) selects with the citizen's facts: `query` selects `entity`
    rows in the order `order(entity)` gives (a callable: the statement numbers the rows in
    that order, and the numbers order its own rows), its values bound by the caller. Built
    once per shape by its user (statements are cached by it)."""

    entity: Any
    query: Any
    order: Any  # Callable[[AliasedClass], Sequence[ColumnElement]]


_FACTS_STATEMENTS: dict[tuple[bool, Hashable, Along | None, bool, bool, bool, Content | None],
                        Any] = {}


def _citizens_query(entities: bool, probe: StatementProbe | None = None,
                    along: Along | None = None, *, single: bool = False,
                    digest: bool = False, standing: bool = False,
                    content: Content | None = None) -> Any:
    key = (entities, probe.shape if probe is not None else None, along, single, digest,
           standing, content)
    statement = _FACTS_STATEMENTS.get(key)
    if statement is None:
        statement = _build_citizens_query(entities, probe, along, single, digest)
        if content is not None:
            statement = _carrying_standing_content(statement, probe, content, digest,
                                                   entities)
        elif standing:
            statement = _carrying_standing_append(statement, probe, along, digest)
        _FACTS_STATEMENTS[key] = statement
    return statement


# The facts a standing decision rests on, as the statement compares them (consent.standing).
STANDING_FACTS = ("standing_any_person", "standing_dob", "standing_fd_practitioner",
                  "standing_fd_facility")


def _standing_conditions(facts: Any, probe: StatementProbe | None,
                         digest: bool) -> list[ColumnElement[bool]]:
    """What a standing decision (consent.standing) rested on, asked of the facts CTE: the
    token live, the same birth date (its ciphertext) and family doctor, no consent,
    break-glass session or guardianship in view, and the reader's access digest showing today
    already (so no notice is due)."""
    fda = FamilyDoctorAssignment.__table__.c
    conditions = [
        # A decision that holds for any person (a practitioner's: consent.policy) compares
        # relationships only; any other compares the birth date too (its ciphertext).
        or_(bindparam("standing_any_person", type_=Boolean()).is_(True),
            facts.c.date_of_birth_ct.is_not_distinct_from(bindparam(
                "standing_dob", type_=LargeBinary()))),
        facts.c.fd_practitioner_id.is_not_distinct_from(bindparam(
            "standing_fd_practitioner", type_=fda.practitioner_id.type)),
        facts.c.fd_facility_id.is_not_distinct_from(bindparam(
            "standing_fd_facility", type_=fda.facility_id.type)),
        facts.c.consents_in_view.is_(False),
        facts.c.break_glass_in_view.is_(False),
        facts.c.guardianships_in_view.is_(False),
    ]
    if probe is not None:
        conditions.append(facts.c.phr_token_live.is_(True))
    if digest:
        conditions.append(facts.c.read_today.is_(True))
    return conditions


def _standing_statement(statement: Any, probe: StatementProbe | None) -> Any:
    statement = statement.execution_options(**{KEEP_PLAN: True, ALONE: True})
    if probe is not None:
        statement = statement.execution_options(phr_carries_probe=True)
    return statement


def _carrying_standing_append(query: Any, probe: StatementProbe | None, along: Along,
                              digest: bool) -> Any:
    """The single citizen's facts with its `along` row, carrying the audit append of a
    standing decision (consent.standing) that runs only when the statement finds what the
    decision rested on (`_standing_conditions`) and the row with the predicted label.
    Column `phr_standing_audited`: whether it ran. Bound values: the facts query's,
    `standing_*` and the append's (consent.audit.append_params)."""
    facts = query.cte("phr_facts")
    conditions = _standing_conditions(facts, probe, digest)
    conditions.append(along.label(facts) == bindparam("standing_label", type_=String()))
    event_cte, ran = append_if(facts, and_(*conditions))
    columns = list(facts.c)
    person = columns[:len(columns) - len(along.entity.__table__.c)]
    return _standing_statement(
        select(*person, ran.label("phr_standing_audited"), aliased(along.entity, facts))
        .add_cte(event_cte), probe)


def _carrying_standing_content(query: Any, probe: StatementProbe | None, content: Content,
                               digest: bool, entities: bool) -> Any:
    """The single citizen's facts, carrying the audit append of a standing decision on a view
    of their record (consent.standing) that runs only when the statement finds what the
    decision rested on (`_standing_conditions`, in one facts row), and the view's `content`
    selected only when the append ran: the rows of a view predicted from facts leave the
    database only once the database has found those facts and appended the audit event.

    The facts come once, on the first row: the content, numbered in its order, is full-joined
    to them on its first row (the facts repeated on every row cost more to parse and map than
    the round trip this saves, on a summary's seventy). Rows in the content's order, the
    facts' first; the facts alone when there is no content. Column `phr_standing_audited`:
    whether the append ran. Bound values: the facts query's, the content's, `standing_*` and
    the append's. With `entities`, the citizen and data key come as ORM entities, as the facts
    query gives them."""
    # Written in the text, not bound: a kept plan's function (core.kept_plans) declares the
    # column's type as the text's first run returned it.
    facts = query.add_columns(literal_column("1").label("phr_one")).cte("phr_facts")
    person: list[Any] = list(facts.c)
    if entities:
        loaded = len(select(Citizen, DataKey).selected_columns)
        person = [aliased(Citizen, facts), aliased(DataKey, facts), *person[loaded:]]
    conditions = _standing_conditions(facts, probe, digest)
    conditions.append(select(func.count()).select_from(facts).scalar_subquery() == 1)
    event_cte, ran = append_if(facts, and_(*conditions))
    numbered = func.row_number().over(order_by=content.order(content.entity))
    page = (content.query.add_columns(numbered.label("phr_rn")).where(ran)
            .subquery("phr_content"))
    return _standing_statement(
        select(*person, ran.label("phr_standing_audited"), aliased(content.entity, page))
        .select_from(facts).join(page, page.c.phr_rn == facts.c.phr_one, full=True)
        .order_by(page.c.phr_rn.asc().nulls_first())
        .add_cte(event_cte), probe)


def _build_citizens_query(entities: bool, probe: StatementProbe | None,
                          along: Along | None, single: bool = False,
                          digest: bool = False) -> Any:
    """Built once per shape: the facts of citizens `ids` and whether any consent, break-glass
    session or guardianship ended after `since` (three index lookups that usually spare the
    grants and guardianships queries: most people have neither).

    With `entities`, the citizen and data-key rows come as ORM entities (for services that
    show or change the person); without, only the columns the policy and the key ring need:
    loading a twenty-column entity cost more than the rest of an entry read's decision.
    `probe`: the shape of the request's pending statement probe (core.db), carried as the
    column `phr_token_live`; `along`: one more row joined on the citizen (or one more column),
    last. `single`: one citizen, bound as `one_id`; `digest` (with `single`): whether reader
    `digest_reader` has read them on day `digest_day` already, as the column `read_today`.

    The grants subqueries name the citizen by its bound value when there is one: a subquery
    correlated to `citizens.id` made PostgreSQL plan all 16 partitions of `consents` on every
    request (a generic plan is not an option behind PgBouncer), half of the statement's
    planning time (0.7 → 0.35 ms).
    """
    fda = FamilyDoctorAssignment
    since = bindparam("since", type_=Consent.__table__.c.revoked_at.type)
    keys = DataKey.__table__.c
    who = (bindparam("one_id", type_=Citizen.__table__.c.id.type) if single else Citizen.id)
    person: tuple[Any, ...] = (
        (Citizen, DataKey) if entities
        else (Citizen.id, Citizen.date_of_birth_ct, keys.id.label("key_id"),
              keys.citizen_id.label("key_citizen_id"), keys.kek_id, keys.wrapped_key,
              keys.status.label("key_status"))
    )
    extra: list[Any] = []
    if probe is not None:
        extra.append(probe.column)
    if digest and single:
        digests = AccessDigest.__table__.c
        extra.append(exists().where(
            digests.citizen_id == who,
            digests.reader == bindparam("digest_reader", type_=digests.reader.type),
            digests.last_day >= bindparam("digest_day", type_=digests.last_day.type),
        ).label("read_today"))
    if along is not None:
        extra.append(along.entity)
    query = (
        select(
            *person, fda.practitioner_id.label("fd_practitioner_id"),
            fda.facility_id.label("fd_facility_id"),
            exists().where(Consent.citizen_id == who,
                           *_consents_in_view(since)).label("consents_in_view"),
            exists().where(BreakGlassSession.citizen_id == who,
                           BreakGlassSession.expires_at > since).label("break_glass_in_view"),
            exists().where(GuardianshipRow.dependant_citizen_id == who,
                           _guardianships_in_view(since)).label("guardianships_in_view"),
            *extra,
        )
        .outerjoin(DataKey, and_(DataKey.citizen_id == Citizen.id, DataKey.status != KEY_RETIRED))
        .outerjoin(fda, and_(fda.citizen_id == Citizen.id, fda.ended_at.is_(None)))
        .where(Citizen.id == who if single
               else Citizen.id.in_(bindparam("ids", expanding=True)))
    )
    if along is not None and along.on is not None:
        query = query.outerjoin(along.entity, along.on(Citizen.id))
    if probe is not None:
        query = query.execution_options(phr_carries_probe=True)
    # Every hot read runs it first: its plan is kept by the server (core.kept_plans).
    return query.execution_options(**{KEEP_PLAN: True})


@dataclass(frozen=True)
class _KeyRow:
    """A data-key row of the lean facts query, in the shape the key ring takes."""

    id: uuid.UUID
    citizen_id: uuid.UUID
    kek_id: str
    wrapped_key: bytes | None
    status: str


def _load_citizens(
    session: Session, citizen_ids: Sequence[uuid.UUID], now: dt.datetime, *,
    entities: bool = False, along: Along | None = None,
    along_params: Mapping[str, Any] | None = None,
    standing: Mapping[str, Any] | None = None, content: Content | None = None,
) -> Any:
    """One query: the citizens, their data keys (for decryption) and active family doctors.

    The same query says whether any consent, break-glass session or guardianship is in view;
    when none is (most citizens), the grants and guardianships parts are known to be empty
    without the queries that would load them. It carries the request's pending statement
    probe (the token's liveness, see auth.resource) and, with `along`, one more row of the
    (single) citizen, which it returns. With `content` and `standing` (one citizen): the
    content's rows, selected only when the standing decision's append ran (else None).
    """
    single = len(citizen_ids) == 1
    params: dict[str, Any] = {"since": now - RECENTLY_ENDED}
    if single:
        params["one_id"] = citizen_ids[0]
    else:
        params["ids"] = list(citizen_ids)
    probe = pending_probe()
    if probe is not None:
        params.update(probe.params)
    reader = session.info.get(_READER_KEY) if single else None
    if reader is not None:
        params.update(digest_reader=reader, digest_day=now.astimezone(VIETNAM_TZ).date())
    # A row that names its label, or a view's content, may be read under a standing decision
    # (consent.standing); any single citizen's plain facts may found one.
    carries_content = single and along is None and content is not None and bool(standing)
    carries_standing = carries_content or (
        single and not entities and along is not None and along.label is not None
        and standing is not None)
    query = _citizens_query(entities, probe, along, single=single, digest=reader is not None,
                            standing=carries_standing,
                            content=content if carries_content else None)
    if along is not None or carries_content:
        params.update(along_params or {})
    if carries_standing:
        params.update(standing)  # type: ignore[arg-type]
    if entities or along is not None or carries_content:
        rows = session.execute(query, params).all()
    else:
        # Plain columns: the connection spares the ORM's per-statement work.
        rows = session.connection().execute(query, params).all()
    if probe is not None and rows:
        # Before anything of the rows is used: a dead token ends the request here.
        probe.confirm(rows[0].phr_token_live)
    # The facts come on the first row with content, which comes only when the append ran
    # (one facts row); otherwise each facts row comes once, without content.
    content_joined = carries_content and bool(rows) and bool(rows[0].phr_standing_audited)
    facts_rows = rows[:1] if content_joined else rows
    first_rows: dict[uuid.UUID, Any] = {}
    for row in facts_rows:
        first_rows.setdefault(row[0].id if entities else row.id, row)
    if not entities:
        keyring(session).remember(
            _KeyRow(id=row.key_id, citizen_id=row.key_citizen_id, kek_id=row.kek_id,
                    wrapped_key=row.wrapped_key, status=row.key_status)
            for row in facts_rows if row.key_id is not None)
    cache = _cache(session)
    for citizen_id in citizen_ids:
        loaded = cache.setdefault(citizen_id, _Loaded())
        loaded.parts.add("citizen")
        row = first_rows.get(citizen_id)
        loaded.exists = row is not None
        if row is None:
            loaded.parts.add("entity")  # nobody to load
            continue
        if entities:
            loaded.parts.add("entity")
            loaded.citizen = row[0]
            # The data keys are in the identity map now: decrypting needs no query.
            birth_date = row[0].date_of_birth
        else:
            birth_date = Citizen.date_of_birth.decrypt_stored(
                session, row_id=citizen_id, citizen_id=citizen_id,
                ciphertext=row.date_of_birth_ct)
        loaded.birth_date = None if birth_date is ERASED else birth_date
        if reader is not None:
            loaded.read_today[reader] = bool(row.read_today)
        if row.fd_practitioner_id is not None:
            loaded.family_doctor = FamilyDoctor(practitioner_id=row.fd_practitioner_id,
                                                facility_id=row.fd_facility_id)
        if single:
            loaded.standing_facts = _standing_facts(facts_rows, entities)
            loaded.standing_carried = carries_standing
            loaded.standing_audited = carries_standing and bool(row.phr_standing_audited)
        if (not row.consents_in_view and not row.break_glass_in_view
                and "grants" not in loaded.parts):
            loaded.consents, loaded.break_glass = (), ()
            loaded.parts.add("grants")
        if not row.guardianships_in_view and "guardianships" not in loaded.parts:
            loaded.guardianships = ()
            loaded.parts.add("guardianships")
    if along is not None:
        return rows[0][-1] if rows else None
    if carries_content:
        if not content_joined:
            return None
        return only_of(citizen_ids[0], [row[-1] for row in rows if row[-1] is not None])
    return None


class WrongPersonRows(RuntimeError):
    """A statement for one person's record returned another's rows (never shown: 500)."""


def only_of(citizen_id: uuid.UUID, rows: list[Any]) -> list[Any]:
    """`rows` of one person's record, checked to be theirs: a statement asks for that person's
    rows only, so anything else is a statement gone wrong (core/sql_threads.py), answered 500
    before one row is used."""
    if any(row.citizen_id != citizen_id for row in rows):
        raise WrongPersonRows("a statement for one person's record returned another's rows")
    return rows


def _standing_facts(rows: Sequence[Any], entities: bool) -> tuple[bytes, uuid.UUID | None,
                                                   uuid.UUID | None] | None:
    """The facts a standing decision may rest on: one citizen's facts in one row, with
    nothing in view that the statement could not compare."""
    if len(rows) != 1:
        return None
    row = rows[0]
    if row.consents_in_view or row.break_glass_in_view or row.guardianships_in_view:
        return None
    birth_date = row[0].date_of_birth_ct if entities else row.date_of_birth_ct
    return (bytes(birth_date or b""), row.fd_practitioner_id, row.fd_facility_id)


def _load_entities(
    session: Session, citizen_ids: Sequence[uuid.UUID], now: dt.datetime
) -> None:
    _load_citizens(session, citizen_ids, now, entities=True)


def _load_guardianships(
    session: Session, citizen_ids: Sequence[uuid.UUID], now: dt.datetime
) -> None:
    rows = session.scalars(_guardianships_query(),
                           {"ids": list(citizen_ids), "since": now - RECENTLY_ENDED}).all()
    found: dict[uuid.UUID, list[Guardianship]] = {cid: [] for cid in citizen_ids}
    for row in rows:
        found[row.dependant_citizen_id].append(Guardianship(
            guardian_citizen_id=row.guardian_citizen_id,
            dependant_citizen_id=row.dependant_citizen_id,
            kind=row.kind,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            revoked_at=row.revoked_at,
            categories=frozenset(row.categories or ()),
        ))
    cache = _cache(session)
    for citizen_id, guardianships in found.items():
        loaded = cache.setdefault(citizen_id, _Loaded())
        loaded.parts.add("guardianships")
        loaded.guardianships = tuple(guardianships)


def _guardianships_in_view(since: Any) -> ColumnElement[bool]:
    return or_(GuardianshipRow.revoked_at.is_(None), GuardianshipRow.revoked_at > since)


@functools.cache
def _guardianships_query() -> Any:
    since = bindparam("since", type_=GuardianshipRow.__table__.c.revoked_at.type)
    return select(GuardianshipRow).where(
        GuardianshipRow.dependant_citizen_id.in_(bindparam("ids", expanding=True)),
        _guardianships_in_view(since),
    )


@functools.cache
def _grants_queries() -> tuple[Any, Any]:
    since = bindparam("since", type_=Consent.__table__.c.revoked_at.type)
    ids = bindparam("ids", expanding=True)
    return (
        select(Consent).where(Consent.citizen_id.in_(ids), *_consents_in_view(since)),
        select(BreakGlassSession).where(BreakGlassSession.citizen_id.in_(ids),
                                        BreakGlassSession.expires_at > since),
    )


def _load_grants(session: Session, citizen_ids: Sequence[uuid.UUID], now: dt.datetime) -> None:
    """Consents and break-glass sessions: the two ways a practitioner reaches a record."""
    params = {"ids": list(citizen_ids), "since": now - RECENTLY_ENDED}
    consents_query, sessions_query = _grants_queries()
    consents = session.scalars(consents_query, params).all()
    sessions = session.scalars(sessions_query, params).all()
    grants: dict[uuid.UUID, list[Grant]] = {cid: [] for cid in citizen_ids}
    for row in consents:
        grants[row.citizen_id].append(_grant(row))
    # The reason is mandatory and checked when a session is opened; it stays encrypted here.
    emergencies: dict[uuid.UUID, list[BreakGlass]] = {cid: [] for cid in citizen_ids}
    for row in sessions:
        emergencies[row.citizen_id].append(BreakGlass(
            id=row.id, citizen_id=row.citizen_id, practitioner_id=row.practitioner_id,
            opened_at=row.opened_at, expires_at=row.expires_at, reason="(recorded)",
            closed_at=row.closed_at,
        ))
    cache = _cache(session)
    for citizen_id in citizen_ids:
        loaded = cache.setdefault(citizen_id, _Loaded())
        loaded.parts.add("grants")
        loaded.consents = tuple(grants[citizen_id])
        loaded.break_glass = tuple(emergencies[citizen_id])


@functools.cache
def _catchment_query() -> Any:
    return select(Citizen.id, Citizen.registered_by_facility_id, Citizen.address_ct).where(
        Citizen.id.in_(bindparam("ids", expanding=True)))


def _load_catchment(
    session: Session, citizen_ids: Sequence[uuid.UUID], now: dt.datetime
) -> None:
    """The facilities whose catchment holds each citizen: the one that registered them, and
    the commune health station of the commune in their (encrypted) address."""
    rows = session.connection().execute(_catchment_query(), {"ids": list(citizen_ids)}).all()
    keyring(session).preload(row.id for row in rows if row.address_ct is not None)
    served: dict[uuid.UUID, set[uuid.UUID]] = {cid: set() for cid in citizen_ids}
    communes: dict[uuid.UUID, tuple[str | None, str]] = {}
    for row in rows:
        if row.registered_by_facility_id is not None:
            served[row.id].add(row.registered_by_facility_id)
        if row.address_ct is None:
            continue
        address = Citizen.address.decrypt_stored(session, row_id=row.id, citizen_id=row.id,
                                                 ciphertext=row.address_ct)
        if isinstance(address, dict) and address.get("commune_code"):
            # An address written in the three-level units (with a district) names an old
            # commune: the current one it became is what stations serve now.
            written = str(address["commune_code"])
            current = current_commune(written, legacy=bool(address.get("district_code")))
            communes[row.id] = (_province(address.get("province_code")),
                                current.code if current is not None else written)
    if communes:
        stations = session.execute(
            select(Facility.id, Facility.province_code, Facility.commune_code).where(
                Facility.kind == "commune-health-station", Facility.active.is_(True),
                Facility.commune_code.in_({commune for _, commune in communes.values()}))
        ).all()
        for citizen_id, (province, commune) in communes.items():
            served[citizen_id].update(
                station.id for station in stations
                if station.commune_code == commune
                and province in (None, _province(station.province_code)))
    cache = _cache(session)
    for citizen_id in citizen_ids:
        loaded = cache.setdefault(citizen_id, _Loaded())
        loaded.parts.add("catchment")
        loaded.catchment = frozenset(served[citizen_id])


def _province(code: Any) -> str | None:
    """A current province code without leading zeros: "27", "027" (a health ID's form) and "24"
    all give "24" (Bắc Ninh since 1 July 2025), so data written before the two-level units
    still meets facilities written after."""
    text = str(code).strip() if code else ""
    if len(text) == 3 and text.startswith("0"):
        text = text[1:]
    found = current_province(text.zfill(2)) if text else None
    text = (found.code if found else text).lstrip("0")
    return text or None


def _grant(row: Consent) -> Grant:
    return Grant(
        id=row.id,
        citizen_id=row.citizen_id,
        grantee_type=row.grantee_type,
        grantee_id=row.grantee_id,
        sections=frozenset(row.sections or ()),
        categories=frozenset(row.categories or ()),
        created_at=row.created_at,
        access=row.access,
        purpose=row.purpose,
        data_from=row.data_from,
        data_until=row.data_until,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


_CHUNK = 500


def preload_facts(
    session: Session, citizen_ids: Iterable[uuid.UUID], *, now: dt.datetime,
    parts: frozenset[str],
) -> None:
    """Load `parts` of the facts of many citizens at once (a batch, a notification fan-out):
    one query per part per 500 citizens instead of one per citizen."""
    cache = _cache(session)
    ids = sorted(set(citizen_ids))
    with session.no_autoflush:
        # The entities carry the citizen part too: asked for both, one query loads both.
        for part, load in (("entity", _load_entities), ("citizen", _load_citizens),
                           ("guardianships", _load_guardianships), ("grants", _load_grants),
                           ("catchment", _load_catchment)):
            if part not in parts:
                continue
            missing = [cid for cid in ids if part not in cache.get(cid, _EMPTY).parts]
            for start in range(0, len(missing), _CHUNK):
                chunk = missing[start:start + _CHUNK]
                load(session, chunk, now)


_EMPTY = _Loaded()


def _loaded(
    session: Session, citizen_id: uuid.UUID, now: dt.datetime, parts: frozenset[str]
) -> _Loaded:
    loaded = _cache(session).get(citizen_id)
    if loaded is None or not parts <= loaded.parts:
        preload_facts(session, (citizen_id,), now=now, parts=parts)
        loaded = _cache(session).setdefault(citizen_id, _Loaded())
    return loaded


def load_facts(
    session: Session, *, citizen_id: uuid.UUID, now: dt.datetime, actor: Actor | None = None,
    section: str | None = None, action: str | None = None,
    parts: frozenset[str] | None = None,
) -> Facts:
    """Everything the policy needs about one citizen, cached for the transaction.

    With `actor`, only the parts the policy reads for that actor's role are loaded: one query
    for a citizen, two for a guardian, three for a practitioner, none for a station (two for
    its registry acts, given `section` and `action`: the catchment). `parts` adds parts.
    """
    wanted = _parts_for(actor, section, action)
    if parts:
        wanted |= parts
    loaded = _loaded(session, citizen_id, now, wanted)
    return Facts(
        citizen_id=citizen_id,
        now=now,
        citizen_birth_date=loaded.birth_date,
        family_doctor=loaded.family_doctor,
        guardianships=loaded.guardianships or (),
        consents=loaded.consents or (),
        break_glass=loaded.break_glass or (),
        settings=policy_settings(),
        catchment=loaded.catchment,
    )


def load_facts_along(
    session: Session, *, citizen_id: uuid.UUID, now: dt.datetime, actor: Actor,
    along: Along, params: Mapping[str, Any], standing: Mapping[str, Any] | None = None,
) -> tuple[Facts, Any]:
    """`load_facts` for `actor`, and one more row of the citizen's (`along`, its values
    `params`) selected by the same statement when the facts were not loaded yet in this
    transaction (a single entry read: one round trip for the entry, its facts and the
    token's liveness). The row is None when the join finds none. `standing`: the bound
    values of a standing decision's audit append for the statement to carry
    (consent.standing; `standing_audited` tells whether it ran)."""
    loaded = _cache(session).get(citizen_id)
    if loaded is not None and "citizen" in loaded.parts:
        loaded.standing_carried = loaded.standing_audited = False
        found = session.scalars(along.alone, {**params, "along_citizen_id": citizen_id}).first()
    else:
        with session.no_autoflush:
            found = _load_citizens(session, [citizen_id], now, along=along,
                                   along_params=params, standing=standing)
    facts = load_facts(session, citizen_id=citizen_id, now=now, actor=actor)
    return facts, found


def load_facts_with_content(
    session: Session, *, citizen_id: uuid.UUID, now: dt.datetime, content: Content,
    params: Mapping[str, Any], standing: Mapping[str, Any], entities: bool = False,
) -> list[Any] | None:
    """Load a citizen's facts in one statement with a view's `content` (its values `params`)
    carrying a standing decision's audit append (`standing`: its bound values,
    consent.standing): the content's rows when the append ran, else None (nothing of the
    content was selected; the caller decides and selects it the usual way, on the facts
    loaded). None too when the facts were loaded already in this transaction. `entities`:
    the citizen's entity too (`loaded_citizen` then needs no query)."""
    loaded = _cache(session).get(citizen_id)
    if loaded is not None and "citizen" in loaded.parts:
        loaded.standing_carried = loaded.standing_audited = False
        return None
    with session.no_autoflush:
        return _load_citizens(session, [citizen_id], now, entities=entities,
                              along_params=params, standing=standing, content=content)


def standing_facts(session: Session, citizen_id: uuid.UUID) -> tuple[
        bytes, uuid.UUID | None, uuid.UUID | None] | None:
    """What a standing decision on this citizen's facts (loaded in this transaction) may
    rest on; None when it may not (consent.standing)."""
    loaded = _cache(session).get(citizen_id)
    return loaded.standing_facts if loaded is not None else None


def standing_audited(session: Session, citizen_id: uuid.UUID) -> bool | None:
    """Whether the statement that loaded this citizen's facts appended a standing
    decision's audit event; None when it carried none."""
    loaded = _cache(session).get(citizen_id)
    if loaded is None or not loaded.standing_carried:
        return None
    return loaded.standing_audited


def entry_readers(
    session: Session, *, citizen_id: uuid.UUID, candidates: Sequence[uuid.UUID], section: str,
    sensitivity: str, clinical_date: dt.date | None, now: dt.datetime,
) -> list[uuid.UUID]:
    """Of `candidates` (the citizen and the people acting for them), those the policy lets read
    such an entry, in order. A notice of a new entry tells of it: whoever may not read it
    (a guardian of a teen's restricted care, a proxy without its category) is not told. The
    policy answers on the facts the fan-out loaded; nothing is audited (a notice, not a read)."""
    facts = load_facts(session, citizen_id=citizen_id, now=now,
                       parts=frozenset({"citizen", "guardianships"}))
    target = Target(citizen_id=citizen_id, section=section, sensitivity=sensitivity,
                    clinical_date=clinical_date)
    return [
        reader for reader in candidates
        if decide(actor=Actor(role="citizen", citizen_id=reader, acting_for=citizen_id),
                  target=target, action="read", purpose=None, facts=facts).permit
    ]


def load_guardian_facts(session: Session, *, citizen_id: uuid.UUID, now: dt.datetime) -> Facts:
    """The facts that decide who acts for a citizen: birth date and guardianships."""
    loaded = _loaded(session, citizen_id, now, frozenset({"citizen", "guardianships"}))
    return Facts(
        citizen_id=citizen_id, now=now, citizen_birth_date=loaded.birth_date,
        guardianships=loaded.guardianships or (), settings=policy_settings(),
    )


def loaded_citizen(session: Session, citizen_id: uuid.UUID) -> Citizen | None:
    """The citizen's row with their data keys (shares the facts cache: one query at most).

    Ask for it before the decision when the service needs the entity (showing or changing the
    person): the facts then come with it; asked after a decision, it costs a second query."""
    return _loaded(session, citizen_id, utcnow(), frozenset({"entity"})).citizen


def citizen_birth_date(session: Session, citizen_id: uuid.UUID) -> dt.date | None:
    """The citizen's date of birth from the facts (None when erased); NotFound when there is
    no such citizen. Shares the facts cache: usually no query."""
    loaded = _loaded(session, citizen_id, utcnow(), frozenset({"citizen"}))
    if not loaded.exists:
        raise NotFound()
    return loaded.birth_date


def citizen_exists(session: Session, citizen_id: uuid.UUID) -> bool:
    """Whether the citizen exists (shares the facts cache: usually no extra query)."""
    loaded = _loaded(session, citizen_id, utcnow(), frozenset({"citizen"}))
    return bool(loaded.exists)


# --- decisions ------------------------------------------------------------------------------


def authorize(
    session: Session,
    *,
    actor: Actor,
    target: Target,
    action: str,
    purpose: str | None,
    context: RequestContext,
    now: dt.datetime | None = None,
) -> Decision:
    """Decide one request, write its audit event (permit or deny), return the decision."""
    now = now or utcnow()
    facts = load_facts(session, citizen_id=target.citizen_id, now=now, actor=actor,
                       section=target.section, action=action)
    decision = decide(actor=actor, target=target, action=action, purpose=purpose, facts=facts)
    if not decision.permit:
        reloaded = facts_to_answer_denial(session, actor, target.citizen_id, now)
        if reloaded is not None:
            facts = reloaded
            decision = decide(actor=actor, target=target, action=action, purpose=purpose,
                              facts=facts)
    labelled = target.entry_id or action in _WRITES or target.sensitivity != "normal"
    record_decision(
        session, actor=actor, citizen_id=target.citizen_id, section=target.section,
        entry_id=target.entry_id, action=action, decision=decision, context=context, now=now,
        facts=facts, sensitivity=target.sensitivity if labelled else None,
    )
    return decision


def authorize_section(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    section: str,
    action: str = "read",
    purpose: str | None,
    context: RequestContext,
    now: dt.datetime | None = None,
) -> Scope:
    """What of a section a list query may return; audited once for the whole list."""
    now = now or utcnow()
    facts = load_facts(session, citizen_id=citizen_id, now=now, actor=actor, section=section,
                       action=action)
    scope = visible_scope(
        actor=actor, citizen_id=citizen_id, section=section, action=action, purpose=purpose,
        facts=facts,
    )
    if not scope.permit:
        reloaded = facts_to_answer_denial(session, actor, citizen_id, now)
        if reloaded is not None:
            facts = reloaded
            scope = visible_scope(actor=actor, citizen_id=citizen_id, section=section,
                                  action=action, purpose=purpose, facts=facts)
    decision = scope.as_decision(purpose)
    record_decision(
        session, actor=actor, citizen_id=citizen_id, section=section, entry_id=None,
        action=action, decision=decision, context=context, now=now, facts=facts,
    )
    return scope


def require(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    target: str,
    action: str,
    context: RequestContext,
    purpose: str | None = None,
    now: dt.datetime | None = None,
    sensitivity: str = "normal",
) -> Decision:
    """Authorize an action on one of a citizen's non-entry targets. Denied (and audited): 403
    to a caller related to the citizen, else 404 as for a citizen who does not exist.

    `sensitivity`: the restricted category the act is about (a consent or request naming it):
    the policy decides with it, and the audit event carries it, so the access log hides the
    act from whoever may not see the category (a teen's guardian)."""
    decision = authorize(
        session, actor=actor,
        target=Target(citizen_id=citizen_id, section=target, sensitivity=sensitivity),
        action=action, purpose=purpose, context=context, now=now,
    )
    raise_if_denied(session, decision, entry=False)
    return decision


def raise_if_denied(session: Session, decision: Decision | Scope, *, entry: bool) -> None:
    """Commit the denial's audit event and answer 404 (an entry, or a caller no relationship
    ties to the citizen: as for a person who does not exist) or 403 (a section)."""
    if decision.permit:
        return
    session.commit()
    if entry or not decision.related:
        raise NotFound()
    raise Forbidden()


def facts_to_answer_denial(
    session: Session, actor: Actor, citizen_id: uuid.UUID, now: dt.datetime
) -> Facts | None:
    """Facts that tell whether a denied actor is related, when the decision did not load them:
    only a station's catchment (citizens and practitioners' relationships are the facts their
    decisions read anyway). Denials only: the permit path loads nothing more."""
    if actor.role != "station":
        return None
    loaded = _cache(session).get(citizen_id)
    if loaded is not None and "catchment" in loaded.parts:
        return None
    return load_facts(session, citizen_id=citizen_id, now=now, actor=actor,
                      parts=frozenset({"catchment"}))


def visible_labels(
    session: Session, *, actor: Actor, citizen_id: uuid.UUID, now: dt.datetime
) -> frozenset[str]:
    """The sensitivity labels of this citizen's record the policy shows the actor (a teen's
    restricted categories are not shown to their guardian): what the actor may see about the
    citizen's consents, requests and log entries naming a category, as of the record."""
    facts = load_facts(session, citizen_id=citizen_id, now=now, actor=actor)
    return frozenset(
        label for label in SENSITIVITY_LABELS
        if decide(actor=actor, target=Target(citizen_id=citizen_id, section="conditions",
                                             sensitivity=label),
                  action="read", facts=facts).permit
    )


def record_decision(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    section: str,
    entry_id: uuid.UUID | None,
    action: str,
    decision: Decision,
    context: RequestContext,
    now: dt.datetime,
    facts: Facts | None = None,
    sensitivity: str | None = None,
) -> uuid.UUID:
    """Append the audit event of a decision and, for a third party's read, the daily digest
    (in the same statement on PostgreSQL)."""
    content = audit_content(
        actor=actor, citizen_id=citizen_id, section=section, entry_id=entry_id, action=action,
        decision=decision, context=context, now=now, facts=facts, sensitivity=sensitivity,
    )
    # A read's event commits alone (core.transactions) unless a notice may have to be
    # written with it: a third party's first read of the day, as far as the facts query saw.
    # Digest rows only ever move forward, never go away, so a digest seen today stays seen:
    # its upsert would change nothing and tell no one. Any other action's event commits with
    # what the request writes (a create's event with its entry, or not at all).
    permitted_read = decision.permit and action == "read"
    if not (permitted_read and actor.role in _THIRD_PARTY_ROLES):
        return append_event(session, alone=action in READ_ACTIONS,
                            permitted_read=permitted_read, **content)
    reader = _reader_key(actor)
    loaded = _cache(session).get(citizen_id)
    if loaded is not None and loaded.read_today.get(reader, False):
        return append_event(session, alone=True, permitted_read=True, **content)
    event_id, first_today = append_event_with(
        session, _digest_upsert(session.get_bind().dialect.name),
        {"digest_citizen_id": citizen_id, "digest_reader": reader,
         "digest_day": now.astimezone(VIETNAM_TZ).date()},
        **content,
    )
    # A station's public-health read is permitted for anyone, so a request naming nobody (an
    # id that is no citizen's) is decided and audited too; there is no one to tell, and the
    # notification's citizen row would not exist (a 500 schemathesis found, issue 19).
    if first_today and citizen_exists(session, citizen_id):
        _emit_record_accessed(
            session, actor=actor, citizen_id=citizen_id, section=section, decision=decision,
            facility_id=content["actor_facility_id"], now=now,
        )
    return event_id


def audit_content(
    *, actor: Actor, citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID | None,
    action: str, decision: Decision, context: RequestContext, now: dt.datetime,
    facts: Facts | None, sensitivity: str | None,
) -> dict[str, Any]:
    # Acting for someone is a fact only when a guardianship or proxy relates the two: a citizen
    # refused on a stranger's record acted as themselves, not "on behalf of" the stranger.
    on_behalf_of = (actor.acting_for if actor.acting_for not in (None, actor.citizen_id)
                    and decision.related else None)
    return {
        "citizen_id": citizen_id,
        "occurred_at": now,
        "actor_role": actor.role,
        "actor_account_id": context.account_id,
        "actor_citizen_id": actor.citizen_id,
        "actor_practitioner_id": actor.practitioner_id,
        "actor_facility_id": acting_facility(actor, decision, facts),
        "on_behalf_of": on_behalf_of,
        "section": section,
        "entry_id": entry_id,
        "sensitivity": sensitivity,
        "action": action,
        "purpose": decision.purpose,
        "decision": "permit" if decision.permit else "deny",
        "rule": decision.rule[:64],
        "consent_id": decision.consent_id,
        "break_glass_id": decision.break_glass_id,
        "client_id": _clip(context.client_id),
        "request_id": _clip(context.request_id),
        "actor_label": _clip(context.actor_label),
    }


@dataclass(frozen=True)
class WriteRequest:
    """One write of a batch to decide: who, on what (label, date, source), which action."""

    actor: Actor
    target: Target
    action: str


def authorize_many(
    session: Session,
    requests: Sequence[WriteRequest],
    *,
    context: RequestContext,
    now: dt.datetime | None = None,
) -> list[Decision]:
    """Decide many writes (a station's batch), or the reads of a care list (each person on a
    family doctor's panel or a station's worklist), and audit every decision in a few
    statements.

    These never touch the access digest, so each decision is one audit event; the facts of
    all the citizens involved are loaded together first.
    """
    now = now or utcnow()
    if any(request.action not in _WRITES
           and (request.action, request.target.section) not in _LIST_READS
           for request in requests):
        raise ValueError("authorize_many decides writes and care-list reads only")
    parts: frozenset[str] = frozenset().union(*(_parts_for(r.actor) for r in requests))
    preload_facts(session, (r.target.citizen_id for r in requests), now=now, parts=parts)
    decisions: list[Decision] = []
    contents: list[dict[str, Any]] = []
    for request in requests:
        target = request.target
        facts = load_facts(session, citizen_id=target.citizen_id, now=now, actor=request.actor)
        decision = decide(actor=request.actor, target=target, action=request.action,
                          purpose=None, facts=facts)
        decisions.append(decision)
        contents.append(audit_content(
            actor=request.actor, citizen_id=target.citizen_id, section=target.section,
            entry_id=target.entry_id, action=request.action, decision=decision,
            context=context, now=now, facts=facts, sensitivity=target.sensitivity,
        ))
    append_events(session, contents)
    return decisions


def _clip(value: str | None) -> str | None:
    return value[:128] if value else value


def acting_facility(actor: Actor, decision: Decision, facts: Facts | None) -> uuid.UUID | None:
    """The facility the actor acted at, as far as it is known."""
    if decision.via and decision.via.startswith("facility:"):
        return uuid.UUID(decision.via.removeprefix("facility:"))
    if (
        decision.rule == "family-doctor"
        and facts is not None
        and facts.family_doctor is not None
    ):
        return facts.family_doctor.facility_id
    if len(actor.facility_ids) == 1:
        return next(iter(actor.facility_ids))
    return None


# --- access notification digest -------------------------------------------------------------


def expect_reads_by(session: Session, actor: Actor) -> None:
    """Name the third party whose reads this session will audit: a single citizen's facts
    query then says whether that reader's access digest shows today already (one column), and
    such a read's audit append commits alone, with no notice to write (core.transactions)."""
    if actor.role == "practitioner" or (actor.role == "station" and actor.facility_ids):
        session.info[_READER_KEY] = _reader_key(actor)


def _reader_key(actor: Actor) -> str:
    if actor.role == "practitioner":
        return f"practitioner:{actor.practitioner_id}"
    return f"facility:{min(actor.facility_ids)}"


def _digest_upsert(dialect: str) -> Any:
    """Insert the reader's row or move its last reported (local) day forward; RETURNING a row
    only when it did, so the first read of the day wins even under concurrency. Built once per
    dialect; parameters digest_citizen_id, digest_reader, digest_day."""
    statement = _DIGEST_UPSERTS.get(dialect)
    if statement is None:
        table = AccessDigest.__table__
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(table).values(
            citizen_id=bindparam("digest_citizen_id", type_=table.c.citizen_id.type),
            reader=bindparam("digest_reader", type_=table.c.reader.type),
            last_day=bindparam("digest_day", type_=table.c.last_day.type),
        )
        statement = stmt.on_conflict_do_update(
            index_elements=[table.c.citizen_id, table.c.reader],
            set_={"last_day": stmt.excluded.last_day},
            where=table.c.last_day < stmt.excluded.last_day,
        ).returning(table.c.last_day)
        _DIGEST_UPSERTS[dialect] = statement
    return statement


_DIGEST_UPSERTS: dict[str, Any] = {}


def _emit_record_accessed(
    session: Session,
    *,
    actor: Actor,
    citizen_id: uuid.UUID,
    section: str,
    decision: Decision,
    facility_id: uuid.UUID | None,
    now: dt.datetime,
) -> None:
    """RECORD_ACCESSED: this reader had not been reported to the citizen today."""
    data: dict[str, Any] = {
        "actor_kind": actor.role,
        "practitioner_id": str(actor.practitioner_id) if actor.practitioner_id else None,
        "facility_id": str(facility_id) if facility_id else None,
        "section": section,
        "rule": decision.rule,
        "break_glass_id": str(decision.break_glass_id) if decision.break_glass_id else None,
    }
    emit(session, DomainEvent(name=RECORD_ACCESSED, citizen_id=citizen_id, data=data,
                              occurred_at=now))
