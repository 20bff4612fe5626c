"""Record services: validate, create, correct and retract entries of a citizen's record.

Each function takes a `RecordAccess` (session + caller) and plain arguments; the permission
check (and its audit event), the change and its domain event share the caller's transaction,
which the API commits once. Reads, and the rows a write starts from, come from
`ehr.repository` (the one module that selects record content); display names of authors and
facilities from the worker's cache here.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.pdp import citizen_birth_date, loaded_citizen
from consent.policy_types import CITIZEN_REPORTED
from core.errors import Conflict, Message, NotFound, ValidationFailed
from core.events import ENTRY_CREATED, DomainEvent, emit
from core.schemas import load_or_problem
from ehr.access import RecordAccess
from ehr.citizen_reports import REPORTED_SCHEMAS
from ehr.record_models import STATUS_ENTERED_IN_ERROR
from ehr.repository import RecordRepository
from ehr.section_schemas import (
    CLINICAL_DATE_FIELD,
    SECTION_SCHEMAS,
    SENSITIVITY_LABELS,
    ObservationSchema,
)
from ehr.views import Names
from registry.models import Citizen, Facility, Practitioner
from registry.reference.icd10 import default_sensitivity, normalize_icd10_code

if TYPE_CHECKING:
    from ehr.record_models import RecordEntry

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
def _section_schema(section: str, reported: bool = False) -> Any:
    # One instance per section, reused: building a schema (binding and copying its fields) cost
    # more than validating with it, 500 times per station batch. Loading keeps no state on it.
    if reported and section in REPORTED_SCHEMAS:
        return REPORTED_SCHEMAS[section]()
    return SECTION_SCHEMAS[section]()


def validate_content(
    section: str, content: Mapping[str, Any], *, source: str | None = None
) -> dict[str, Any]:
    """Validate section content and return it in stored (JSON) form. A citizen-reported entry
    of some sections has a shape of its own (a dose as the person's vaccination book shows it)."""
    schema = _section_schema(section, source == CITIZEN_REPORTED)
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
    source = envelope.get("source") or access.caller.source
    try:
        content = validate_content(section, content_raw, source=source)
    except ValidationFailed as exc:
        problems.update(exc.errors or {})
    if problems:
        raise ValidationFailed(errors=problems)
    _check_references(references, section, content)
    return PreparedEntry(
        content=content,
        sensitivity=_effective_sensitivity(section, envelope["sensitivity"], content),
        source=source,
        clinical_date=_clinical_date(section, content),
    )


def _author_facility(
    access: RecordAccess, content: Mapping[str, Any], references: References, source: str
) -> uuid.UUID | None:
    if source == CITIZEN_REPORTED:
        # No facility recorded what a person reports: the place named in their book stays in
        # the content (a recording facility may correct or retract its doses; this is not one).
        return None
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
    entry = RecordRepository(access).new_entry(
        citizen_id=citizen_id, section=section, content=prepared.content,
        clinical_date=prepared.clinical_date, sensitivity=prepared.sensitivity,
        source=prepared.source, facility_id=_author_facility(access, prepared.content, references,
                                     prepared.source),
        stage=stage,
    )
    created = DomainEvent(
        name=ENTRY_CREATED, citizen_id=citizen_id, occurred_at=access.now,
        data={"section": section, "entry_id": str(entry.id), "sensitivity": entry.sensitivity,
              "source": entry.source,
              "clinical_date": entry.clinical_date.isoformat() if entry.clinical_date else None,
              "author_practitioner_id": str(entry.author_practitioner_id or "")},
    )
    return entry, created


@dataclass(frozen=True)
class _CorrectedEntry:
    """What the policy reads of an entry (`ehr.access.EntryFacts`), after a correction."""

    id: uuid.UUID
    sensitivity: str
    author_practitioner_id: uuid.UUID | None
    clinical_date: dt.date | None
    source: str
    facility_id: uuid.UUID | None


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
    repository = RecordRepository(access)
    entry = repository.entry_to_change(citizen_id=citizen_id, section=section,
                                       entry_id=entry_id, action="update")
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
    content = validate_content(section, merged, source=entry.source)
    _check_dates_against_birth(require_citizen(access, citizen_id), section, content)
    _check_references(References(access.session), section, content)
    sensitivity = _effective_sensitivity(section, envelope["sensitivity"], content)
    clinical_date = _clinical_date(section, content)
    if sensitivity != entry.sensitivity or clinical_date != entry.clinical_date:
        # The corrected entry must be writable by the caller under its new label and date too,
        # decided on the entry as it would be (its author and recording facility unchanged: a
        # station corrects its own dose's date by the same rule that let it open the dose).
        corrected = _CorrectedEntry(
            id=entry.id, sensitivity=sensitivity, clinical_date=clinical_date,
            author_practitioner_id=entry.author_practitioner_id, source=entry.source,
            facility_id=entry.facility_id)
        decision = access.decide(citizen_id=citizen_id, section=section, action="update",
                                 entry=corrected)
        if not decision.permit:
            access.deny(entry=False, decision=decision)
    repository.keep_version(entry)
    if entry.verified_at is not None and content != entry.content:
        # A verification vouches for the content that was checked against the paper record;
        # changed content is unverified again until a station checks it (the kept version
        # still shows who verified what).
        entry.verified_at = None
        entry.verified_by_practitioner_id = None
        entry.verified_facility_id = None
    entry.content = content
    entry.sensitivity = sensitivity
    entry.clinical_date = clinical_date
    entry.version += 1
    entry.author_practitioner_id = access.caller.practitioner_id or entry.author_practitioner_id
    entry.author_account_id = access.caller.account_id
    entry.updated_at = access.now
    return entry


def mark_entered_in_error(
    access: RecordAccess,
    *,
    citizen_id: uuid.UUID,
    section: str,
    entry_id: uuid.UUID,
    reason: str,
) -> RecordEntry:
    """Retract an entry: kept, versioned, hidden from summaries, shown as entered-in-error."""
    repository = RecordRepository(access)
    entry = repository.entry_to_change(citizen_id=citizen_id, section=section,
                                       entry_id=entry_id, action="entered-in-error")
    if entry.status == STATUS_ENTERED_IN_ERROR:
        raise Conflict(Message("record.entered-in-error"), code="entered-in-error")
    repository.keep_version(entry)
    entry.status = STATUS_ENTERED_IN_ERROR
    entry.error_reason = reason
    entry.entered_in_error_at = access.now
    entry.version += 1
    entry.author_account_id = access.caller.account_id
    entry.updated_at = access.now
    return entry


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
