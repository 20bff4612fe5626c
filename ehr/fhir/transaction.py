"""A facility's transaction Bundle: hospital and lab results pushed into people's records.

All or nothing: every entry is converted (`ehr.fhir.inbound`), validated by the JSON API's own
create path (`ehr.records.prepare_entry`: schemas, code lists, units), its person found by
health ID, its create decided and audited by the consent decision point (one event per entry,
as the station batch: `RecordAccess.decide_creates`) and checked against the person (dates
before birth) before anything is written; the first refusal of any kind leaves the record as
it was and answers every failing element.

Idempotent per facility and identifier, for good: an imported entry's id is derived (a keyed
MAC, so nobody else can compute it) from the facility, the resource type, the facility's own
identifier and the person. The same Bundle again finds its entries by primary key (a savepoint
per entry, nothing selected: only the records repository selects entries) and answers them
200 with the same location; two identical Bundles at once cannot both insert.

Each written entry carries `source: imported` and the facility as author; each person gets
one "new entry" notification for the whole Bundle, not one per result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from consent.policy_types import IMPORTED
from core.db import insert_unstaged
from core.encryption import vault_settings
from core.errors import Message, ValidationFailed
from core.events import ENTRY_CREATED, DomainEvent, emit_many
from ehr import records
from ehr.access import RecordAccess
from ehr.fhir.inbound import BundleError, BundleErrors, Item, parse_bundle
from registry.models import Citizen
from registry.services import find_citizen_by_health_id


@dataclass(frozen=True)
class Answer:
    """One entry's `response` in the transaction-response Bundle."""

    status: int  # 201 created, 200 found (an earlier Bundle's entry, or the Patient named)
    location: str


@dataclass
class _Pending:
    item: Item
    citizen_id: uuid.UUID
    prepared: records.PreparedEntry
    entry_id: uuid.UUID


def import_bundle(access: RecordAccess, bundle: object) -> list[Answer]:
    """Add a transaction Bundle's entries; one `Answer` per Bundle entry, in order. Raises
    `BundleErrors` (nothing added; the decisions' audit events are kept by the caller)."""
    items = parse_bundle(bundle)
    citizens = _people(access, items)
    facility_id = min(access.caller.facility_ids)
    references = records.References(access.session)
    references.preload(item.body for item in items if item.section is not None)

    pending: list[_Pending] = []
    errors: list[BundleError] = []
    for item in items:
        if item.section is None:
            continue
        try:
            prepared = records.prepare_entry(access, section=item.section, body=item.body,
                                             references=references)
        except ValidationFailed as problem:
            errors.extend(_field_errors(item, problem))
            continue
        citizen = citizens[item.health_id]
        pending.append(_Pending(
            item=item, citizen_id=citizen.id,
            # Where the entry comes from is the import's, whoever the caller is otherwise.
            prepared=dataclasses.replace(prepared, source=IMPORTED),
            entry_id=_entry_id(facility_id, item, citizen.id)))
    if errors:
        raise BundleErrors(errors)

    # Decide (and audit) every create together, as the station batch does.
    decisions = access.decide_creates([
        (p.citizen_id, p.item.section or "", p.prepared.sensitivity, p.prepared.clinical_date,
         p.prepared.source)
        for p in pending
    ])
    for p, decision in zip(pending, decisions, strict=True):
        if decision.permit:
            try:
                records.check_against_person(records.require_citizen(access, p.citizen_id),
                                             p.item.section or "", p.prepared)
            except ValidationFailed as problem:
                errors.extend(_field_errors(p.item, problem))
        elif not decision.related:
            # Answered as for nobody with this number: the facility learns no more than a
            # failed lookup would tell it.
            errors.append(_unknown_person(p.item))
        else:
            errors.append(BundleError(p.item.at, Message("fhir.in.forbidden"),
                                      code="forbidden"))
    if errors:
        raise BundleErrors(errors)

    created = _write(access, pending, references)
    _tell(access, pending, created)

    statuses = {p.item.index: (201 if p.entry_id in created else 200,
                               f"{p.item.resource_type}/{p.entry_id}") for p in pending}
    answers = []
    for item in items:
        if item.folded_into is not None:
            status, location = statuses[item.folded_into]
            answers.append(Answer(status, "DiagnosticReport/" + location.split("/", 1)[1]))
        elif item.section is None:
            answers.append(Answer(200, f"Patient/{citizens[item.health_id].id}"))
        else:
            answers.append(Answer(*statuses[item.index]))
    return answers


def _people(access: RecordAccess, items: list[Item]) -> dict[str, Citizen]:
    """The persons the Bundle names, by health ID. A number that names nobody is refused, the
    lookup audited in the facility's chain of lookups that found no one."""
    found: dict[str, Citizen] = {}
    unknown: list[BundleError] = []
    for item in items:
        if item.health_id in found:
            continue
        citizen = find_citizen_by_health_id(session=access.session, health_id=item.health_id)
        if citizen is None:
            access.decide_unknown_lookup()
            unknown.extend(_unknown_person(other) for other in items
                           if other.health_id == item.health_id)
            found[item.health_id] = None  # type: ignore[assignment]
            continue
        found[item.health_id] = citizen
    if unknown:
        raise BundleErrors(unknown)
    return found


def _unknown_person(item: Item) -> BundleError:
    element = "identifier" if item.resource_type == "Patient" else (
        "patient" if item.resource_type == "Immunization" else "subject")
    return BundleError(f"{item.at}.{element}", Message("fhir.in.person-unknown"),
                       code="not-found")


def _field_errors(item: Item, problem: ValidationFailed) -> list[BundleError]:
    if not problem.errors:
        return [BundleError(item.at, problem.detail_message())]
    return [BundleError(item.expression(name),
                        message if isinstance(message, Message) else Message(
                            "fhir.in.code"), code="invalid")
            for name, messages in problem.errors.items() for message in messages]


def _entry_id(facility_id: uuid.UUID, item: Item, citizen_id: uuid.UUID) -> uuid.UUID:
    """The id of the entry this facility's identifier names for this person: the same on every
    resend, unguessable without the service's blind-index key."""
    system, value = item.identifier or ("", "")  # every clinical item has one (`_request`)
    parts = ("phr-vn/fhir-import/v1", str(facility_id), item.resource_type, system, value,
             str(citizen_id))
    message = b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in parts)
    digest = hmac.digest(vault_settings().blind_index_key, message, hashlib.sha256)
    return uuid.UUID(bytes=digest[:16], version=4)


def _write(access: RecordAccess, pending: list[_Pending],
           references: records.References) -> set[uuid.UUID]:
    """Insert each entry unless an earlier Bundle did (its primary key says so); the ids
    inserted now."""
    created: set[uuid.UUID] = set()
    for p in pending:
        entry, _ = records.add_entry(access, citizen_id=p.citizen_id,
                                     section=p.item.section or "", prepared=p.prepared,
                                     references=references, stage=False)
        entry.id = p.entry_id
        # The content is sealed to its row id: seal it again under the derived one.
        entry.content = dict(p.prepared.content)
        try:
            with access.session.begin_nested():
                insert_unstaged(access.session, [entry])
        except IntegrityError:
            continue  # sent before: the entry stands as it was written (or corrected since)
        created.add(p.entry_id)
    return created


def _tell(access: RecordAccess, pending: list[_Pending], created: set[uuid.UUID]) -> None:
    """One "new entry" event per person: of their new entries, the first that everyone acting
    for them may hear of (a normal one), else the first (told to those who may read it)."""
    chosen: dict[uuid.UUID, _Pending] = {}
    for p in pending:
        if p.entry_id not in created:
            continue
        current = chosen.get(p.citizen_id)
        if current is None or (current.prepared.sensitivity != "normal"
                               and p.prepared.sensitivity == "normal"):
            chosen[p.citizen_id] = p
    emit_many(access.session, [
        DomainEvent(
            name=ENTRY_CREATED, citizen_id=citizen_id, occurred_at=access.now,
            data={"section": p.item.section, "entry_id": str(p.entry_id),
                  "sensitivity": p.prepared.sensitivity, "source": p.prepared.source,
                  "clinical_date": p.prepared.clinical_date.isoformat()
                  if p.prepared.clinical_date else None,
                  "author_practitioner_id": ""})
        for citizen_id, p in chosen.items()
    ])
