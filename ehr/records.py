"""Record services: create, read, list, correct and retract entries of a citizen's record.

Each function takes a `RecordAccess` (session + caller) and plain arguments; the permission
check (and its audit event), the change and its domain event share the caller's transaction,
which the API commits once.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from consent.pdp import citizen_birth_date, loaded_citizen
from core.errors import Conflict, Message, NotFound, ValidationFailed
from core.events import ENTRY_CREATED, DomainEvent, emit
from core.schemas import load_or_problem
from ehr.access import RecordAccess, ScopeKey, filter_for, scope_key
from ehr.models import Citizen, Facility, Practitioner
from ehr.record_models import (
    STATUS_CURRENT,
    STATUS_ENTERED_IN_ERROR,
    RecordEntry,
    RecordEntryVersion,
)
from ehr.reference.icd10 import default_sensitivity, normalize_icd10_code
from ehr.section_schemas import (
    CLINICAL_DATE_FIELD,
    SECTION_SCHEMAS,
    SENSITIVITY_LABELS,
    ObservationSchema,
)
from ehr.views import Names

ENVELOPE_FIELDS = ("sensitivity", "source")
SECTIONS = tuple(SECTION_SCHEMAS)


def get_citizen(access: RecordAccess, citizen_id: uuid.UUID) -> Citizen:
    """The citizen entity with their data keys, for services that show or change the person.
    Ask before the decision: the decision's facts then come in the same query."""
    citizen = loaded_citizen(access.session, citizen_id)
    if citizen is None:
        raise NotFound()
    return citizen


def require_citizen(access: RecordAccess, citizen_id: uuid.UUID) -> dt.date | None:
    """404 unless the citizen exists; their date of birth (None when erased), from the
    decision point's facts (one query at most, none when the decision has loaded them)."""
    return citizen_birth_date(access.session, citizen_id)


class References:
    """The practitioners and facilities entries name, looked up once per request: a single
    create asks twice for the same facility, a batch names the same few hundreds of times."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._practitioners: dict[uuid.UUID, bool] = {}
        self._facilities: dict[str, uuid.UUID | None] = {}

    def preload(self, bodies: Iterable[Mapping[str, Any]]) -> None:
        """One query for every performer and one for every facility code in `bodies`."""
        performers: set[uuid.UUID] = set()
        codes: set[str] = set()
        for body in bodies:
            performer = body.get("performer_id")
            if isinstance(performer, str):
                try:
                    performers.add(uuid.UUID(performer))
                except ValueError:
                    pass  # the schema names the error
            code = body.get("facility_code")
            if isinstance(code, str):
                codes.add(code)
        self._lookup_practitioners(performers - set(self._practitioners))
        self._lookup_facilities(codes - set(self._facilities))

    def _lookup_practitioners(self, ids: set[uuid.UUID]) -> None:
        # The worker's name cache knows practitioners read or named in the last minute; only
        # a hit counts (an unknown id is asked again: it may have been registered since).
        with _names_lock:
            known = {pid for pid in ids if _practitioner_names.get(pid) is not None}
        self._practitioners.update(dict.fromkeys(known, True))
        ids = ids - known
        if not ids:
            return
        rows = {row.id: row.full_name for row in self.session.execute(
            select(Practitioner.id, Practitioner.full_name).where(Practitioner.id.in_(ids))
        )}
        with _names_lock:
            _practitioner_names.update(rows)
        self._practitioners.update({pid: pid in rows for pid in ids})

    def _lookup_facilities(self, codes: set[str]) -> None:
        with _names_lock:
            known = {code: _facility_codes[code] for code in codes if code in _facility_codes}
        self._facilities.update(known)
        codes = codes - set(known)
        if not codes:
            return
        rows = self.session.execute(
            select(Facility.code, Facility.id, Facility.name).where(Facility.code.in_(codes))
        ).all()
        found = {row.code: row.id for row in rows}
        with _names_lock:
            _facility_codes.update(found)
            _facility_names.update({row.id: (row.code, row.name) for row in rows})
        self._facilities.update({code: found.get(code) for code in codes})

    def practitioner_known(self, practitioner_id: uuid.UUID) -> bool:
        if practitioner_id not in self._practitioners:
            self._lookup_practitioners({practitioner_id})
        return self._practitioners[practitioner_id]

    def facility_id(self, code: str) -> uuid.UUID | None:
        if code not in self._facilities:
            self._lookup_facilities({code})
        return self._facilities[code]


def _split_envelope(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    envelope = {k: body[k] for k in ENVELOPE_FIELDS if k in body}
    content = {k: v for k, v in body.items() if k not in ENVELOPE_FIELDS}
    return envelope, content


def _validate_envelope(envelope: Mapping[str, Any], *, role: str) -> dict[str, Any]:
    errors: dict[str, list[Message | str]] = {}
    sensitivity = envelope.get("sensitivity", "normal")
    if sensitivity not in SENSITIVITY_LABELS:
        errors["sensitivity"] = [Message("record.invalid-sensitivity",
                                         choices=", ".join(SENSITIVITY_LABELS))]
    source = envelope.get("source")
    if source is not None and (source != "imported" or role != "practitioner"):
        # Sources follow from who writes; only a clinician may mark an entry as imported.
        errors["source"] = [Message("record.invalid-source")]
    if errors:
        raise ValidationFailed(errors=errors)
    return {"sensitivity": sensitivity, "source": source}


@functools.cache
def _section_schema(section: str) -> Any:
    # One instance per section, reused: building a schema (binding and copying its fields) cost
    # more than validating with it, 500 times per station batch. Loading keeps no state on it.
    return SECTION_SCHEMAS[section]()


def validate_content(section: str, content: Mapping[str, Any]) -> dict[str, Any]:
    """Validate section content and return it in stored (JSON) form."""
    schema = _section_schema(section)
    loaded = load_or_problem(schema, dict(content))
    if isinstance(schema, ObservationSchema):
        loaded = schema.normalise(loaded)
    for name in ("icd10_code", "reason_code"):
        if loaded.get(name):
            loaded[name] = normalize_icd10_code(loaded[name]) or loaded[name]
    if loaded.get("diagnosis_codes"):
        loaded["diagnosis_codes"] = [normalize_icd10_code(c) or c
                                     for c in loaded["diagnosis_codes"]]
    return schema.dump(loaded)


def _clinical_date(section: str, content: Mapping[str, Any]) -> dt.date | None:
    name = CLINICAL_DATE_FIELD[section]
    raw = content.get(name) if name else None
    if not raw:
        return None
    if "T" in raw:
        return dt.datetime.fromisoformat(raw).date()
    return dt.date.fromisoformat(raw)


def _effective_sensitivity(section: str, declared: str, content: Mapping[str, Any]) -> str:
    """A diagnosis in a restricted category carries that category's label whatever the writer
    declares (another restricted label would show it to grantees of that other category); a
    writer may restrict an entry whose codes are not restricted."""
    codes: list[str] = []
    if section in ("conditions", "family-history") and content.get("icd10_code"):
        codes.append(content["icd10_code"])
    codes.extend(content.get("diagnosis_codes") or [])
    if section == "medications" and content.get("reason_code"):
        codes.append(content["reason_code"])
    for code in codes:
        label = default_sensitivity(code)
        if label != "normal":
            return label
    return declared


def _check_dates_against_birth(
    birth: dt.date | None, section: str, content: Mapping[str, Any]
) -> None:
    if not isinstance(birth, dt.date):
        return
    errors: dict[str, list[Message | str]] = {}
    for name, raw in content.items():
        if not isinstance(raw, str) or len(raw) < 10 or not name.endswith(("_date", "_at", "_on")):
            continue
        if name in ("expiry_date", "next_exam_due", "end_date", "abatement_date"):
            continue
        try:
            day = dt.date.fromisoformat(raw[:10])
        except ValueError:
            continue
        if day < birth:
            errors[name] = [Message("record.date-before-birth")]
    if errors:
        raise ValidationFailed(errors=errors)


def _check_references(
    references: References, section: str, content: Mapping[str, Any]
) -> None:
    if section != "immunizations":
        return
    errors: dict[str, list[Message | str]] = {}
    performer = content.get("performer_id")
    if performer and not references.practitioner_known(uuid.UUID(performer)):
        errors["performer_id"] = [Message("record.practitioner-unknown")]
    code = content.get("facility_code")
    if code and references.facility_id(code) is None:
        errors["facility_code"] = [Message("record.facility-unknown")]
    if errors:
        raise ValidationFailed(errors=errors)


@dataclass(frozen=True)
class PreparedEntry:
    content: dict[str, Any]
    sensitivity: str
    source: str
    clinical_date: dt.date | None


def prepare_entry(
    access: RecordAccess, *, section: str, body: Mapping[str, Any], references: References
) -> PreparedEntry:
    """Validate a create body: shape, code lists, plausibility. Nothing here depends on the
    citizen's own data, so a caller without access learns nothing from the answer; the checks
    against the person (dates before birth) run after authorization, in `check_against_person`.
    """
    envelope_raw, content_raw = _split_envelope(body)
    problems: dict[str, list[Message | str]] = {}
    envelope: dict[str, Any] = {}
    content: dict[str, Any] = {}
    try:
        envelope = _validate_envelope(envelope_raw, role=access.caller.role)
    except ValidationFailed as exc:
        problems.update(exc.errors or {})
    try:
        content = validate_content(section, content_raw)
    except ValidationFailed as exc:
        problems.update(exc.errors or {})
    if problems:
        raise ValidationFailed(errors=problems)
    _check_references(references, section, content)
    return PreparedEntry(
        content=content,
        sensitivity=_effective_sensitivity(section, envelope["sensitivity"], content),
        source=envelope["source"] or access.caller.source,
        clinical_date=_clinical_date(section, content),
    )


def _author_facility(
    access: RecordAccess, content: Mapping[str, Any], references: References
) -> uuid.UUID | None:
    code = content.get("facility_code")
    if code:
        found = references.facility_id(code)
        if found is not None:
            return found
    ids = sorted(access.caller.facility_ids)
    return ids[0] if ids else None


def create_entry(
    access: RecordAccess, *, citizen_id: uuid.UUID, section: str, body: Mapping[str, Any]
) -> RecordEntry:
    """Validate, authorize (with the entry's label, date and source) and add a new entry."""
    birth = require_citizen(access, citizen_id)
    references = References(access.session)
    prepared = prepare_entry(access, section=section, body=body, references=references)
    access.require(
        citizen_id=citizen_id, section=section, action="create",
        sensitivity=prepared.sensitivity, clinical_date=prepared.clinical_date,
        source=prepared.source,
    )
    check_against_person(birth, section, prepared)
    entry, created = add_entry(access, citizen_id=citizen_id, section=section,
                               prepared=prepared, references=references)
    emit(access.session, created)
    return entry


def check_against_person(
    birth: dt.date | None, section: str, prepared: PreparedEntry
) -> None:
    """Checks that need the person's data, here the date of birth (after authorization: they
    reveal something)."""
    _check_dates_against_birth(birth, section, prepared.content)


def add_entry(
    access: RecordAccess, *, citizen_id: uuid.UUID, section: str, prepared: PreparedEntry,
    references: References, stage: bool = True,
) -> tuple[RecordEntry, DomainEvent]:
    """Add an already validated and authorized entry; returns it with the event the caller
    emits (one by one, or a batch's all together). `stage=False`: the caller inserts it
    (a batch, with `core.db.insert_unstaged`)."""
    now = access.now
    entry = RecordEntry(
        id=uuid.uuid4(), citizen_id=citizen_id, section=section,
        clinical_date=prepared.clinical_date, status=STATUS_CURRENT,
        sensitivity=prepared.sensitivity, source=prepared.source, version=1,
        author_practitioner_id=access.caller.practitioner_id,
        author_account_id=access.caller.account_id,
        facility_id=_author_facility(access, prepared.content, references),
        created_at=now, updated_at=now,
    )
    entry.content = prepared.content
    if stage:
        access.session.add(entry)
    created = DomainEvent(
        name=ENTRY_CREATED, citizen_id=citizen_id, occurred_at=now,
        data={"section": section, "entry_id": str(entry.id), "sensitivity": entry.sensitivity,
              "source": entry.source,
              "author_practitioner_id": str(entry.author_practitioner_id or "")},
    )
    return entry, created


@functools.cache
def _entry_query() -> Any:
    # Built once (session.get builds and keys a new statement on every call).
    return select(RecordEntry).where(
        RecordEntry.id == bindparam("entry_id", type_=RecordEntry.__table__.c.id.type))


def _load_entry(
    access: RecordAccess, *, citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID
) -> RecordEntry:
    entry = access.session.scalars(_entry_query(), {"entry_id": entry_id}).one_or_none()
    if entry is None or entry.citizen_id != citizen_id or entry.section != section:
        # Audit the attempt all the same: probing for entries is worth knowing about.
        access.decide(citizen_id=citizen_id, section=section, action="read")
        access.session.commit()
        raise NotFound()
    return entry


def read_entry(
    access: RecordAccess, *, citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID
) -> RecordEntry:
    entry = _load_entry(access, citizen_id=citizen_id, section=section, entry_id=entry_id)
    access.require(citizen_id=citizen_id, section=section, action="read", entry=entry)
    return entry


def update_entry(
    access: RecordAccess,
    *,
    citizen_id: uuid.UUID,
    section: str,
    entry_id: uuid.UUID,
    patch: Mapping[str, Any],
    check_version: Any,
) -> RecordEntry:
    """A correction: the current content becomes a kept version, the patch the new one."""
    entry = _load_entry(access, citizen_id=citizen_id, section=section, entry_id=entry_id)
    access.require(citizen_id=citizen_id, section=section, action="update", entry=entry)
    check_version(entry)
    if entry.status == STATUS_ENTERED_IN_ERROR:
        raise Conflict(Message("record.entered-in-error"), code="entered-in-error")
    envelope_raw, content_patch = _split_envelope(patch)
    if "source" in envelope_raw:
        # Where an entry came from is a fact of its creation, not something a correction changes.
        raise ValidationFailed(errors={"source": [Message("record.source-fixed")]})
    envelope = _validate_envelope(
        {"sensitivity": entry.sensitivity, **envelope_raw}, role=access.caller.role
    )
    merged = {**entry.content, **content_patch}
    merged = {k: v for k, v in merged.items() if v is not None}
    content = validate_content(section, merged)
    _check_dates_against_birth(require_citizen(access, citizen_id), section, content)
    _check_references(References(access.session), section, content)
    sensitivity = _effective_sensitivity(section, envelope["sensitivity"], content)
    clinical_date = _clinical_date(section, content)
    if sensitivity != entry.sensitivity or clinical_date != entry.clinical_date:
        # The corrected entry must be writable by the caller under its new label and date too.
        access.require(citizen_id=citizen_id, section=section, action="update",
                       sensitivity=sensitivity, clinical_date=clinical_date,
                       source=entry.source)
    _keep_version(access, entry)
    entry.content = content
    entry.sensitivity = sensitivity
    entry.clinical_date = clinical_date
    entry.version += 1
    entry.author_practitioner_id = access.caller.practitioner_id or entry.author_practitioner_id
    entry.author_account_id = access.caller.account_id
    entry.updated_at = access.now
    return entry


def _keep_version(access: RecordAccess, entry: RecordEntry) -> None:
    version = RecordEntryVersion(
        id=uuid.uuid4(), entry_id=entry.id, citizen_id=entry.citizen_id, version=entry.version,
        clinical_date=entry.clinical_date, status=entry.status, sensitivity=entry.sensitivity,
        source=entry.source, author_practitioner_id=entry.author_practitioner_id,
        author_account_id=entry.author_account_id, facility_id=entry.facility_id,
        recorded_at=entry.updated_at, superseded_at=access.now,
    )
    version.content = entry.content
    access.session.add(version)


def mark_entered_in_error(
    access: RecordAccess,
    *,
    citizen_id: uuid.UUID,
    section: str,
    entry_id: uuid.UUID,
    reason: str,
) -> RecordEntry:
    """Retract an entry: kept, versioned, hidden from summaries, shown as entered-in-error."""
    entry = _load_entry(access, citizen_id=citizen_id, section=section, entry_id=entry_id)
    access.require(citizen_id=citizen_id, section=section, action="entered-in-error",
                   entry=entry)
    if entry.status == STATUS_ENTERED_IN_ERROR:
        raise Conflict(Message("record.entered-in-error"), code="entered-in-error")
    _keep_version(access, entry)
    entry.status = STATUS_ENTERED_IN_ERROR
    entry.error_reason = reason
    entry.entered_in_error_at = access.now
    entry.version += 1
    entry.author_account_id = access.caller.account_id
    entry.updated_at = access.now
    return entry


def entry_versions(
    access: RecordAccess, *, citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID
) -> tuple[RecordEntry, list[RecordEntryVersion]]:
    entry = read_entry(access, citizen_id=citizen_id, section=section, entry_id=entry_id)
    versions = list(access.session.scalars(
        select(RecordEntryVersion)
        .where(RecordEntryVersion.entry_id == entry.id,
               RecordEntryVersion.citizen_id == citizen_id)
        .order_by(RecordEntryVersion.version.desc())
    ))
    return entry, versions


@dataclass(frozen=True)
class Page:
    entries: list[RecordEntry]
    next_position: dict[str, Any] | None


def list_entries(
    access: RecordAccess,
    *,
    citizen_id: uuid.UUID,
    section: str,
    limit: int,
    position: Mapping[str, Any] | None,
    updated_since: dt.datetime | None,
    include_entered_in_error: bool,
) -> Page:
    """One page of a section, the permission in the WHERE clause (never filtered after)."""
    require_citizen(access, citizen_id)
    scope = access.section_scope(citizen_id=citizen_id, section=section)
    order = "updated" if updated_since is not None else "clinical"
    after, params = _position_params(order, position)
    query = _list_query(section, scope_key(scope), order,
                        include_entered_in_error or updated_since is not None, after)
    params.update(citizen_id=citizen_id, limit=limit + 1, updated_since=updated_since)
    rows = list(access.session.scalars(query, params))
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


@functools.lru_cache(maxsize=1024)
def _list_query(section: str, scope: ScopeKey | None, order: str, any_status: bool,
                after: str | None) -> Any:
    """A section page's query, built once per shape (scope, ordering, cursor kind); values are
    bound at execution (citizen_id, updated_since, limit, after_*)."""
    entry = RecordEntry
    query = select(entry).where(
        entry.citizen_id == bindparam("citizen_id", type_=entry.__table__.c.citizen_id.type),
        entry.section == section, filter_for(scope),
    )
    if order == "updated":
        # Delta sync: everything changed since, retractions included, oldest change first.
        query = query.where(entry.updated_at > bindparam(
            "updated_since", type_=entry.__table__.c.updated_at.type))
    elif not any_status:
        query = query.where(entry.status == STATUS_CURRENT)
    last_id = bindparam("after_id", type_=entry.__table__.c.id.type)
    if after == "updated":
        stamp = bindparam("after_stamp", type_=entry.__table__.c.updated_at.type)
        query = query.where((entry.updated_at > stamp)
                            | ((entry.updated_at == stamp) & (entry.id > last_id)))
    elif after == "undated":
        query = query.where(entry.clinical_date.is_(None), entry.id < last_id)
    elif after == "dated":
        day = bindparam("after_day", type_=entry.__table__.c.clinical_date.type)
        query = query.where((entry.clinical_date < day)
                            | ((entry.clinical_date == day) & (entry.id < last_id))
                            | entry.clinical_date.is_(None))
    if order == "updated":
        query = query.order_by(entry.updated_at.asc(), entry.id.asc())
    else:
        query = query.order_by(entry.clinical_date.desc().nulls_last(), entry.id.desc())
    return query.limit(bindparam("limit"))


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
        from core.errors import BadRequest

        raise BadRequest(Message("problem.invalid-cursor.detail"), code="invalid-cursor") from exc
    if day is None:
        return "undated", {"after_id": last_id}
    return "dated", {"after_id": last_id, "after_day": day}


# Display names of practitioners and facilities change rarely and are public register data:
# each worker keeps them a minute instead of asking the database on every read of an entry.
NAMES_TTL_SECONDS = 60
_names_lock = threading.Lock()
_practitioner_names: TTLCache[uuid.UUID, str | None] = TTLCache(
    maxsize=50_000, ttl=NAMES_TTL_SECONDS)
_facility_names: TTLCache[uuid.UUID, tuple[str, str] | None] = TTLCache(
    maxsize=20_000, ttl=NAMES_TTL_SECONDS)
_facility_codes: TTLCache[str, uuid.UUID] = TTLCache(maxsize=20_000, ttl=NAMES_TTL_SECONDS)


def _cached_names(
    access: RecordAccess, ids: Iterable[uuid.UUID | None], cache: TTLCache, query: Any
) -> dict[uuid.UUID, Any]:
    wanted = {i for i in ids if i is not None}
    found: dict[uuid.UUID, Any] = {}
    with _names_lock:
        for key in wanted:
            value = cache.get(key, _MISSING)
            if value is not _MISSING:
                found[key] = value
    missing = wanted - set(found)
    if missing:
        fetched: dict[uuid.UUID, Any] = dict.fromkeys(missing)
        fetched.update(query(missing))
        with _names_lock:
            cache.update(fetched)
        found.update(fetched)
    return {key: value for key, value in found.items() if value is not None}


_MISSING = object()


def practitioner_names(
    access: RecordAccess, ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    def query(wanted: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        rows = access.session.execute(
            select(Practitioner.id, Practitioner.full_name).where(Practitioner.id.in_(wanted))
        )
        return {row.id: row.full_name for row in rows}

    return _cached_names(access, ids, _practitioner_names, query)


def facility_names(
    access: RecordAccess, ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, tuple[str, str]]:
    def query(wanted: set[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
        rows = access.session.execute(
            select(Facility.id, Facility.code, Facility.name).where(Facility.id.in_(wanted))
        )
        return {row.id: (row.code, row.name) for row in rows}

    return _cached_names(access, ids, _facility_names, query)


def names_of(access: RecordAccess, rows: Iterable[Any]) -> Names:
    """The display names the views of `rows` (entries or versions) show: authors, facilities."""
    rows = list(rows)
    return Names(
        practitioner_names(access, (row.author_practitioner_id for row in rows)),
        facility_names(access, (row.facility_id for row in rows)),
    )


def immunization_doses(
    access: RecordAccess, *, citizen_id: uuid.UUID
) -> list[RecordEntry]:
    """The citizen's current immunization entries (caller has checked the permission)."""
    return list(access.session.scalars(
        select(RecordEntry).where(
            RecordEntry.citizen_id == citizen_id,
            RecordEntry.section == "immunizations",
            RecordEntry.status == STATUS_CURRENT,
        ).order_by(RecordEntry.clinical_date.asc())
    ))
