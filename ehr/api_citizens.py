"""HTTP surface of the registry and citizen-level views: registration, lookup, demographics,
the phone's summary, the immunization schedule, family doctor, export and the vaccine catalogue.
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import bindparam, or_, select
from sqlalchemy.exc import IntegrityError

from auth.resource import current_principal, require_scope
from auth.scopes import SECTION_RESOURCES
from core.conditional import json_with_etag, require_if_match, version_etag
from core.db import db
from core.errors import Conflict, Message, NotFound, ValidationFailed, problem_body
from core.http import json_body
from core.i18n import current_language
from core.schemas import load_or_problem
from ehr import batch, records
from ehr.access import RecordAccess, ScopeKey, filter_for, scope_key, section_denied
from ehr.api import idempotent_create, new_access, today_in_vietnam
from ehr.citizen_schemas import CitizenCreateSchema, CitizenUpdateSchema, health_id_problems
from ehr.models import PractitionerMembership
from ehr.record_models import STATUS_CURRENT, RecordEntry, RecordEntryVersion
from ehr.reference.vaccines import vaccine_catalogue, vaccine_catalogue_source
from ehr.registry import (
    assign_family_doctor,
    family_doctor_history,
    find_citizen_by_health_id,
    register_citizen,
)
from ehr.schedule_service import schedule_for, schedule_view
from ehr.views import Names, citizen_view, entry_view, iso, lookup_view, version_view

bp = Blueprint("citizens", __name__, url_prefix="/api/v1")
log = logging.getLogger("phr.registry")

SUMMARY_SECTIONS = ("allergies", "conditions", "medications", "immunizations")


def token_allows(*, resource: str, interaction: str) -> bool:
    return current_principal().has_scope(resource=resource, interaction=interaction)


def _full_view_allowed(access: RecordAccess, citizen_id: uuid.UUID) -> bool:
    # Contact details and identifiers: the person, their guardian and clinicians with access.
    return access.caller.role in ("citizen", "practitioner")


# Registry ----------

@bp.post("/citizens")
def register() -> Response:
    """Register a person (newborns included) — stations and practitioners."""
    require_scope(resource="Patient", interaction="c")
    body = json_body()
    data = load_or_problem(CitizenCreateSchema(), body)
    access = new_access()
    new_id = uuid.uuid4()
    access.require(citizen_id=new_id, section="demographics", action="create")
    facility_ids = sorted(access.caller.facility_ids)

    def create() -> tuple[dict[str, Any], str, str]:
        # Checked here, after any replay: a retried registration answers its first 201.
        if find_citizen_by_health_id(session=db.session, health_id=data["health_id"]):
            raise Conflict(Message("record.health-id-taken"), code="health-id-taken")
        citizen = register_citizen(
            session=db.session, registered_by_facility_id=facility_ids[0] if facility_ids else None,
            citizen_id=new_id, **data,
        )
        db.session.flush()
        return citizen_view(citizen, full=True), version_etag(citizen.id, 1), str(citizen.id)

    try:
        return idempotent_create(route="/citizens", citizen_id=new_id, body=body, create=create)
    except IntegrityError:
        db.session.rollback()
        raise Conflict(Message("record.health-id-taken"), code="health-id-taken") from None


@bp.post("/citizens/lookup")
def lookup() -> Response:
    """Find a person by health ID (in the body, never in a URL): minimal identity only."""
    require_scope(resource="Patient", interaction="s")
    body = json_body()
    health_id = body.get("health_id")
    extra = sorted(set(body) - {"health_id"})
    errors: dict[str, list[Message | str]] = {name: [Message("record.unknown-field")]
                                              for name in extra}
    if not isinstance(health_id, str) or not health_id.strip().isdigit() or len(
            health_id.strip()) != 12:
        errors["health_id"] = [Message("record.lookup-health-id")]
    if errors:
        raise ValidationFailed(errors=errors)
    access = new_access()
    citizen = find_citizen_by_health_id(session=db.session, health_id=health_id)
    if citizen is None:
        # Whoever may not look people up learns nothing about which numbers exist: the
        # permission is asked first, of a person who does not exist (no facts, nothing audited).
        from consent.policy import decide
        from consent.policy_types import Facts, Target

        ghost = uuid.uuid4()
        decision = decide(actor=access.caller.actor_for(ghost),
                          target=Target(citizen_id=ghost, section="identity-lookup"),
                          action="lookup", facts=Facts(citizen_id=ghost, now=access.now))
        db.session.rollback()
        if not decision.permit:
            raise section_denied()
        log.info("lookup found no one", extra={"caller_role": access.caller.role})
        raise NotFound()
    access.require(citizen_id=citizen.id, section="identity-lookup", action="lookup")
    payload = lookup_view(citizen)
    db.session.commit()
    return jsonify(payload)


@bp.get("/citizens/<uuid:citizen_id>")
def read_citizen(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="Patient", interaction="r")
    access = new_access()
    citizen = records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="demographics", action="read")
    view = citizen_view(citizen, full=_full_view_allowed(access, citizen_id))
    db.session.commit()
    return json_with_etag(view, etag=version_etag(citizen.id, citizen.version))


# Who may correct which demographic fields (the policy decides who may correct at all).
_CORRECTABLE: dict[str, tuple[frozenset[str], str]] = {
    "citizen": (frozenset({"phone", "email", "address", "preferred_language"}),
                "record.field-station-only"),
    "station": (frozenset({"full_name", "date_of_birth", "sex", "ethnicity",
                           "social_insurance_code"}), "record.field-citizen-only"),
}


@bp.patch("/citizens/<uuid:citizen_id>")
def update_citizen(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="Patient", interaction="u")
    body = json_body()
    data = load_or_problem(CitizenUpdateSchema(), body)
    access = new_access()
    citizen = records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="demographics", action="update")
    require_if_match(version_etag(citizen.id, citizen.version))
    # A person corrects their contact details; identity data changes at a station, against
    # the person's papers, and a station does not touch how the person is reached.
    # A role the policy may come to allow gets no field until it is named here.
    allowed, refusal = _CORRECTABLE.get(access.caller.role,
                                        (frozenset(), "record.field-station-only"))
    refused = sorted(set(data) - allowed)
    if refused:
        raise ValidationFailed(errors={name: [Message(refusal)] for name in refused})
    if "date_of_birth" in data or "sex" in data:
        problems = health_id_problems(
            str(citizen.health_id), date_of_birth=data.get("date_of_birth", citizen.date_of_birth),
            sex=data.get("sex", citizen.sex),
        )
        if problems:
            field = "date_of_birth" if "date_of_birth" in data else "sex"
            raise ValidationFailed(errors={field: problems})
    for name, value in data.items():
        setattr(citizen, name, value)
    citizen.version += 1
    citizen.updated_at = access.now
    db.session.flush()
    view = citizen_view(citizen, full=_full_view_allowed(access, citizen_id))
    db.session.commit()
    return json_with_etag(view, etag=version_etag(citizen.id, citizen.version))


# The phone's home screen ----------

@bp.get("/citizens/<uuid:citizen_id>/summary")
def summary(citizen_id: uuid.UUID) -> Response:
    """Identity, family doctor, allergies, active conditions, current medications, latest vitals,
    vaccination status with the next dose due and unread notifications, in one call."""
    require_scope(resource="Patient", interaction="r")
    access = new_access()
    citizen = records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="summary", action="read")
    lang = current_language()
    sections = [s for s in SUMMARY_SECTIONS if token_allows(resource=SECTION_RESOURCES[s],
                                                              interaction="r")]
    scopes = {s: access.quiet_scope(citizen_id=citizen_id, section=s) for s in sections}
    vitals_key = None
    if token_allows(resource=SECTION_RESOURCES["observations"], interaction="r"):
        vitals_key = scope_key(access.quiet_scope(citizen_id=citizen_id, section="observations"))
    entries_query, vitals_query = _summary_queries(
        tuple((s, key) for s, scope in scopes.items() if (key := scope_key(scope)) is not None),
        vitals_key)
    params = {"citizen_id": citizen_id}
    entries: list[RecordEntry] = (list(db.session.scalars(entries_query, params))
                                  if entries_query is not None else [])
    vitals: list[RecordEntry] = (list(db.session.scalars(vitals_query, params))
                                 if vitals_query is not None else [])
    by_section: dict[str, list[RecordEntry]] = {s: [] for s in SUMMARY_SECTIONS}
    for entry in entries:
        by_section[entry.section].append(entry)
    names = records.names_of(access, entries + vitals)
    facts = access.facts(citizen_id)
    today = today_in_vietnam()
    payload: dict[str, Any] = {
        "citizen": citizen_view(citizen, full=False),
        "family_doctor": _family_doctor_view(access, facts.family_doctor),
        "allergies": [entry_view(e, names) for e in by_section["allergies"]
                      if _active(e, "clinical_status")],
        "active_conditions": [entry_view(e, names) for e in by_section["conditions"]
                              if _active(e, "clinical_status")],
        "current_medications": [entry_view(e, names) for e in by_section["medications"]
                                if _active(e, "medication_status")],
        "latest_vitals": _latest_vitals(vitals, names),
        "vaccination": None,
        "unread_notifications": _unread(citizen_id, access),
        "sections_shown": sorted(set(sections) | ({"observations"} if vitals else set())),
    }
    if "immunizations" in sections and scopes["immunizations"].permit:
        doses = schedule_for(citizen, by_section["immunizations"], today=today)
        view = schedule_view(doses, citizen_id=citizen_id, today=today, lang=lang)
        payload["vaccination"] = {"counts": view["counts"], "next_due": view["next_due"]}
    db.session.commit()
    return json_with_etag(payload)


@functools.lru_cache(maxsize=256)
def _summary_queries(sections: tuple[tuple[str, ScopeKey], ...],
                     vitals: ScopeKey | None) -> tuple[Any, Any]:
    """The summary's two queries (current entries of the summary sections, the latest vitals),
    built once per combination of visible scopes: building them cost more than running them."""
    citizen = bindparam("citizen_id", type_=RecordEntry.__table__.c.citizen_id.type)
    newest_first = RecordEntry.clinical_date.desc().nulls_last()
    entries = None
    if sections:
        entries = select(RecordEntry).where(
            RecordEntry.citizen_id == citizen, RecordEntry.status == STATUS_CURRENT,
            or_(*((RecordEntry.section == s) & filter_for(key) for s, key in sections)),
        ).order_by(newest_first)
    latest_vitals = None
    if vitals is not None:
        latest_vitals = select(RecordEntry).where(
            RecordEntry.citizen_id == citizen, RecordEntry.section == "observations",
            RecordEntry.status == STATUS_CURRENT, filter_for(vitals),
        ).order_by(newest_first).limit(60)
    return entries, latest_vitals


def _active(entry: RecordEntry, field: str) -> bool:
    content = entry.content
    return isinstance(content, dict) and content.get(field, "active") == "active"


def _latest_vitals(entries: list[RecordEntry], names: Names) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for entry in entries:  # newest first
        content = entry.content
        if not isinstance(content, dict):
            continue
        kind = content.get("kind")
        if kind and kind not in latest:
            latest[kind] = entry_view(entry, names)
    return list(latest.values())


def _unread(citizen_id: uuid.UUID, access: RecordAccess) -> int | None:
    """The citizen's badge, for the citizen (or their guardian) only: a clinician reading the
    summary has no business with a patient's inbox (null)."""
    if access.caller.role != "citizen":
        return None
    counter = current_app.extensions.get("phr.unread_count")
    if counter is None:
        return 0
    return int(counter(db.session, citizen_id=citizen_id, account_id=access.caller.account_id))


def _family_doctor_view(access: RecordAccess, doctor: Any) -> dict[str, Any] | None:
    if doctor is None:
        return None
    name = records.practitioner_names(access, [doctor.practitioner_id])
    code, facility = records.facility_names(access, [doctor.facility_id]).get(
        doctor.facility_id, (None, None))
    return {
        "practitioner_id": str(doctor.practitioner_id),
        "name": name.get(doctor.practitioner_id),
        "facility": {"id": str(doctor.facility_id), "code": code, "name": facility},
    }


@bp.get("/citizens/<uuid:citizen_id>/immunization-schedule")
def immunization_schedule(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="Immunization", interaction="r")
    access = new_access()
    citizen = records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="immunization-schedule", action="read")
    today = today_in_vietnam()
    doses = schedule_for(citizen, records.immunization_doses(access, citizen_id=citizen_id),
                         today=today)
    payload = schedule_view(doses, citizen_id=citizen_id, today=today, lang=current_language())
    db.session.commit()
    return json_with_etag(payload)


# Family doctor ----------

@bp.get("/citizens/<uuid:citizen_id>/family-doctor")
def get_family_doctor(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="Patient", interaction="r")
    access = new_access()
    records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="family-doctor", action="read")
    payload = _family_doctor_payload(access, citizen_id)
    db.session.commit()
    return json_with_etag(payload)


def _family_doctor_payload(access: RecordAccess, citizen_id: uuid.UUID) -> dict[str, Any]:
    history = family_doctor_history(session=db.session, citizen_id=citizen_id)
    current = next((a for a in history if a.ended_at is None), None)

    def view(assignment: Any) -> dict[str, Any]:
        return {
            "practitioner_id": str(assignment.practitioner_id),
            "name": assignment.practitioner.full_name,
            "facility": {"id": str(assignment.facility_id), "code": assignment.facility.code,
                         "name": assignment.facility.name},
            "started_at": iso(assignment.started_at),
            "ended_at": iso(assignment.ended_at),
        }

    return {"current": view(current) if current else None,
            "history": [view(a) for a in history]}


@bp.put("/citizens/<uuid:citizen_id>/family-doctor")
def put_family_doctor(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="Patient", interaction="u")
    body = json_body()
    errors: dict[str, list[Message | str]] = {}
    ids: dict[str, uuid.UUID] = {}
    for name in ("practitioner_id", "facility_id"):
        try:
            ids[name] = uuid.UUID(str(body.get(name)))
        except ValueError:
            errors[name] = [Message("record.invalid-uuid")]
    for name in sorted(set(body) - {"practitioner_id", "facility_id"}):
        errors[name] = [Message("record.unknown-field")]
    if errors:
        raise ValidationFailed(errors=errors)
    access = new_access()
    records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="family-doctor", action="manage")
    membership = db.session.scalars(select(PractitionerMembership).where(
        PractitionerMembership.practitioner_id == ids["practitioner_id"],
        PractitionerMembership.facility_id == ids["facility_id"],
        PractitionerMembership.ended_on.is_(None),
    )).first()
    if membership is None or membership.practitioner.profession not in (
            "doctor", "physician-assistant"):
        raise ValidationFailed(
            errors={"practitioner_id": [Message("record.not-a-family-doctor")]}
        )
    assign_family_doctor(
        session=db.session, citizen_id=citizen_id, practitioner_id=ids["practitioner_id"],
        facility_id=ids["facility_id"], changed_by=str(access.caller.account_id or "-"),
    )
    db.session.flush()
    payload = _family_doctor_payload(access, citizen_id)
    db.session.commit()
    return jsonify(payload)


# Export (data-subject right) ----------

@bp.get("/citizens/<uuid:citizen_id>/export")
def export(citizen_id: uuid.UUID) -> Response:
    """Everything held about the person: demographics, every entry and its versions."""
    require_scope(resource="Patient", interaction="r")
    access = new_access()
    citizen = records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="export", action="read")
    # Only the sections the token may read (a token for vaccinations exports vaccinations).
    readable = [s for s in records.SECTIONS
                if token_allows(resource=SECTION_RESOURCES[s], interaction="r")]
    entries = list(db.session.scalars(
        select(RecordEntry).where(RecordEntry.citizen_id == citizen_id,
                                  RecordEntry.section.in_(readable))
        .order_by(RecordEntry.section, RecordEntry.clinical_date.desc().nulls_last())
    ))
    versions = list(db.session.scalars(
        select(RecordEntryVersion).join(RecordEntry, RecordEntry.id == RecordEntryVersion.entry_id)
        .where(RecordEntryVersion.citizen_id == citizen_id, RecordEntry.section.in_(readable))
        .order_by(RecordEntryVersion.entry_id, RecordEntryVersion.version)
    ))
    names = records.names_of(access, [*entries, *versions])
    by_entry: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for version in versions:
        by_entry.setdefault(version.entry_id, []).append(version_view(version, names))
    sections: dict[str, list[dict[str, Any]]] = {s: [] for s in readable}
    for entry in entries:
        view = entry_view(entry, names)
        view["earlier_versions"] = by_entry.get(entry.id, [])
        sections[entry.section].append(view)
    payload = {
        "exported_at": iso(access.now),
        "citizen": citizen_view(citizen, full=True),
        "family_doctor": _family_doctor_payload(access, citizen_id),
        "sections": sections,
    }
    extra = current_app.extensions.get("phr.export_parts", [])
    for part in extra:
        payload.update(part(db.session, citizen_id))
    db.session.commit()
    response = jsonify(payload)
    response.headers["Content-Disposition"] = "attachment; filename=health-record.json"
    return response


# Vaccine catalogue ----------

@bp.get("/vaccines")
def vaccines() -> Response:
    current_principal()
    lang = current_language()
    items = [
        {"code": v.code, "name_vi": v.name("vi"), "name_en": v.name("en"),
         "name": v.name(lang), "antigens": sorted(v.antigens), "in_national_programme": v.is_epi}
        for v in vaccine_catalogue().values()
    ]
    return json_with_etag({"source": dict(vaccine_catalogue_source()), "items": items})


# Station batch upload --------------------------------------------------------------------------

@bp.post("/immunizations/batch")
def immunization_batch() -> Response:
    """Up to 500 immunizations; one result per item; idempotent per client_item_id."""
    require_scope(resource="Immunization", interaction="c")
    body = json_body()
    items = body.get("items")
    errors: dict[str, list[Message | str]] = {name: [Message("record.unknown-field")]
                                              for name in sorted(set(body) - {"items"})}
    if not isinstance(items, list) or not 1 <= len(items) <= batch.MAX_ITEMS:
        errors["items"] = [Message("record.batch-items", max=batch.MAX_ITEMS)]
    if errors:
        raise ValidationFailed(errors=errors)
    access = new_access()
    results = batch.upload(access, items=items)
    db.session.commit()
    payload = {
        "results": [batch.result_view(r, problem_body) for r in results],
        "counts": {
            "created": sum(1 for r in results if r.status == 201),
            "replayed": sum(1 for r in results if r.status == 200),
            "failed": sum(1 for r in results if r.status >= 400),
        },
    }
    return jsonify(payload)
