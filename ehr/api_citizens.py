"""HTTP surface of the registry and citizen-level views: registration, lookup, demographics,
the phone's summary, the immunization schedule, family doctor, export and the vaccine catalogue.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auth.resource import current_caller, has_scope, remembers_principal, require_scope
from consent import services as consent_services
from consent.audit import audit_rides_with_content
from consent.pdp import request_context
from consent.views import consent_view, guardian_view
from core.conditional import json_with_etag, require_if_match, version_etag
from core.db import db
from core.errors import Conflict, Message, NotFound, ValidationFailed, problem_body
from core.hooks import Hook
from core.http import json_body
from core.i18n import current_language
from core.schemas import load_or_problem
from ehr import batch, demographics, records
from ehr.access import RecordAccess
from ehr.api import idempotent_create, new_access, today_in_vietnam
from ehr.fhir.api_operations import everything_response, wants_fhir
from ehr.repository import RecordRepository
from ehr.schedule_service import schedule_for, schedule_view
from ehr.views import citizen_view, entry_view, iso, lookup_view, version_view
from registry.caller import Caller
from registry.reference.vaccines import vaccine_catalogue, vaccine_catalogue_source
from registry.schemas import CitizenCreateSchema, CitizenUpdateSchema
from registry.services import (
    family_doctor_history,
    find_citizen_by_health_id,
    register_citizen,
)

bp = Blueprint("citizens", __name__, url_prefix="/api/v1")

UnreadCounter = Callable[[Session, uuid.UUID], int]
ExportPart = Callable[[Session, uuid.UUID, Caller], dict[str, Any]]

# Answered by notifications (above the record): the citizen's unread count on the home screen.
UNREAD_COUNT: Hook[UnreadCounter] = Hook("summary-unread-count", lambda session, citizen: 0)
# Answered by notifications: the notifications held about the person, as this caller may see
# them (an export key and its list, or nothing).
EXPORT_NOTIFICATIONS: Hook[ExportPart] = Hook(
    "export-notifications", lambda session, citizen, caller: {})
log = logging.getLogger("phr.registry")

SUMMARY_SECTIONS = ("allergies", "conditions", "medications", "immunizations")


# Registry ----------

@bp.post("/citizens")
def register() -> Response:
    """Register a person (newborns included) — stations and practitioners."""
    require_scope(resource="Patient", interaction="c")
    body = json_body()
    data = load_or_problem(CitizenCreateSchema(), body)
    # The parents a station names from the birth papers: the consent layer's to decide.
    parents = data.pop("guardians", [])
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
        consent_services.name_parents_at_registration(
            db.session, actor=access.caller.acting_for_citizen(new_id), citizen_id=new_id,
            parents=[consent_services.NamedParent(**parent) for parent in parents],
            context=request_context(access.caller), account_id=access.caller.account_id,
            now=access.now)
        return citizen_view(citizen, full=True), version_etag(citizen.id, 1), str(citizen.id)

    try:
        return idempotent_create(route="/citizens", citizen_id=new_id, body=body, create=create,
                                 section=None)
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
    digits = health_id.strip() if isinstance(health_id, str) else ""
    if not (digits.isascii() and digits.isdigit() and len(digits) == 12):
        errors["health_id"] = [Message("record.lookup-health-id")]
    if errors:
        raise ValidationFailed(errors=errors)
    access = new_access()
    citizen = find_citizen_by_health_id(session=db.session, health_id=health_id)
    if citizen is None:
        # Whoever may not look people up learns nothing about which numbers exist: the
        # permission is asked all the same and audited in the caller's lookup chain.
        decision = access.decide_unknown_lookup()
        if not decision.permit:
            access.deny(entry=False, decision=decision)
        db.session.commit()
        log.info("lookup found no one", extra={"caller_role": access.caller.role})
        raise NotFound()
    access.require(citizen_id=citizen.id, section="identity-lookup", action="lookup")
    payload = lookup_view(citizen)
    db.session.commit()
    return jsonify(payload)


@bp.get("/citizens/<uuid:citizen_id>")
def read_citizen(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="Patient", interaction="r")
    view, etag = demographics.read_demographics(new_access(), citizen_id)
    db.session.commit()
    return json_with_etag(view, etag=etag)


@bp.patch("/citizens/<uuid:citizen_id>")
def update_citizen(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="Patient", interaction="u")
    changes = load_or_problem(CitizenUpdateSchema(), json_body())
    view, etag = demographics.correct_demographics(new_access(), citizen_id, changes,
                                                   check_version=require_if_match)
    db.session.commit()
    return json_with_etag(view, etag=etag)


# The phone's home screen ----------

@bp.get("/citizens/<uuid:citizen_id>/summary")
@remembers_principal
def summary(citizen_id: uuid.UUID) -> Response:
    """Identity, family doctor, allergies, active conditions, current medications, latest vitals,
    vaccination status with the next dose due and unread notifications, in one call."""
    require_scope(resource="Patient", interaction="r")
    access = new_access()
    citizen, found = RecordRepository(access).summary(citizen_id=citizen_id,
                                                      sections=SUMMARY_SECTIONS)
    lang = current_language()
    by_section, vitals = found.entries, found.vitals
    names = records.names_of(access, [e for part in by_section.values() for e in part] + vitals)
    facts = access.facts(citizen_id)
    today = today_in_vietnam()
    payload: dict[str, Any] = {
        "citizen": citizen_view(citizen, full=False),
        "family_doctor": _family_doctor_view(access, facts.family_doctor),
        "allergies": [entry_view(e, names) for e in found.active("allergies", "clinical_status")],
        "active_conditions": [entry_view(e, names)
                              for e in found.active("conditions", "clinical_status")],
        "current_medications": [entry_view(e, names)
                                for e in found.active("medications", "medication_status")],
        "latest_vitals": [entry_view(e, names) for e in found.latest_vitals()],
        "vaccination": None,
        "unread_notifications": _unread(citizen_id, access),
        "sections_shown": sorted(set(found.sections) | ({"observations"} if vitals else set())),
    }
    if "immunizations" in found.visible:
        doses = schedule_for(citizen, by_section["immunizations"], today=today)
        view = schedule_view(doses, citizen_id=citizen_id, today=today, lang=lang)
        payload["vaccination"] = {"counts": view["counts"], "next_due": view["next_due"]}
    db.session.commit()
    return json_with_etag(payload)


def _unread(citizen_id: uuid.UUID, access: RecordAccess) -> int | None:
    """The citizen's badge, for the citizen (or their guardian) only: a clinician reading the
    summary has no business with a patient's inbox (null)."""
    if access.caller.role != "citizen":
        return None
    return int(UNREAD_COUNT()(db.session, citizen_id))


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
@remembers_principal
def immunization_schedule(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="Immunization", interaction="r")
    access = new_access()
    citizen = records.get_citizen(access, citizen_id)
    with audit_rides_with_content(db.session):  # the read's audit append and its doses
        access.require(citizen_id=citizen_id, section="immunization-schedule", action="read")
        counted = RecordRepository(access).schedule_doses(citizen_id=citizen_id)
    today = today_in_vietnam()
    doses = schedule_for(citizen, counted, today=today)
    payload = schedule_view(doses, citizen_id=citizen_id, today=today, lang=current_language())
    db.session.commit()
    return json_with_etag(payload)


# Family doctor ----------

@bp.get("/citizens/<uuid:citizen_id>/family-doctor")
def get_family_doctor(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="Patient", interaction="r")
    access = new_access()
    history = consent_services.family_doctor_of(
        db.session, actor=access.caller.acting_for_citizen(citizen_id), citizen_id=citizen_id,
        context=request_context(access.caller), now=access.now)
    payload = _family_doctor_payload(access, citizen_id, history)
    db.session.commit()
    return json_with_etag(payload)


def _family_doctor_payload(access: RecordAccess, citizen_id: uuid.UUID,
                           history: list[Any] | None = None) -> dict[str, Any]:
    """The registration and its history (read here when the caller has not: the export)."""
    if history is None:
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
    # The rules (who may, catchment, who may be a family doctor, history, audit, notices) are
    # the consent layer's: a relationship that opens the record.
    history = consent_services.register_family_doctor(
        db.session, actor=access.caller.acting_for_citizen(citizen_id), citizen_id=citizen_id,
        practitioner_id=ids["practitioner_id"], facility_id=ids["facility_id"],
        context=request_context(access.caller), account_id=access.caller.account_id,
        now=access.now)
    payload = _family_doctor_payload(access, citizen_id, history)
    db.session.commit()
    return jsonify(payload)


# Export (data-subject right) ----------

@bp.get("/citizens/<uuid:citizen_id>/export")
def export(citizen_id: uuid.UUID) -> Response:
    """Everything held about the person (the data-subject right), as this caller may see it:
    demographics, family doctor, the entries of every section with their earlier versions
    (what the caller's lists and versions routes show), consents, guardians and proxies, the
    access log, and the parts packages above the record add."""
    require_scope(resource="Patient", interaction="r")
    if wants_fhir():  # the same export, as FHIR resources (`$everything`)
        return everything_response(citizen_id, attachment="health-record.fhir.json")
    access = new_access()
    citizen = records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="export", action="read")
    payload = {
        "exported_at": iso(access.now),
        "citizen": citizen_view(citizen, full=True),
        "family_doctor": _family_doctor_payload(access, citizen_id),
        **_exported_entries(access, citizen_id),
        **exported_relationships(access, citizen_id),
    }
    payload.update(EXPORT_NOTIFICATIONS()(db.session, citizen_id, access.caller))
    db.session.commit()
    response = jsonify(payload)
    response.headers["Content-Disposition"] = "attachment; filename=health-record.json"
    return response


# The access log is exported in pages of this size (each page is one audited read of it).
EXPORT_LOG_PAGE = 500


def _exported_entries(access: RecordAccess, citizen_id: uuid.UUID) -> dict[str, Any]:
    """The sections, each as the caller's list with entered-in-error entries shows it, every
    entry with the earlier versions its versions route shows (oldest first)."""
    exported = RecordRepository(access).export(citizen_id=citizen_id)
    earlier = [version for found in exported.versions.values() for version in found]
    names = records.names_of(access, [*exported.entries, *earlier])
    sections: dict[str, list[dict[str, Any]]] = {s: [] for s in records.SECTIONS}
    for entry in exported.entries:
        view = entry_view(entry, names)
        view["earlier_versions"] = [version_view(version, names)
                                    for version in exported.versions.get(entry.id, [])]
        sections[entry.section].append(view)
    return {"sections": sections, "sections_shown": list(exported.sections)}


def exported_relationships(access: RecordAccess, citizen_id: uuid.UUID) -> dict[str, Any]:
    """Consents, guardians and proxies, and the access log, each as its own route shows it to
    this caller (the consent package decides and audits each part, ended items included); a
    part the token's scopes do not cover is left out."""
    session, caller, now = access.session, access.caller, access.now
    actor, context = caller.acting_for_citizen(citizen_id), request_context(caller)
    parts: dict[str, Any] = {}
    if has_scope(caller, resource="consents", interaction="s"):
        consents = consent_services.list_consents(
            session, actor=actor, citizen_id=citizen_id, context=context, include_ended=True,
            now=now)
        names = consent_services.grantee_names(session, consents)
        parts["consents"] = [consent_view(row, names, now) for row in consents]
    if has_scope(caller, resource="guardians", interaction="s"):
        parts["guardians"] = [guardian_view(view) for view in consent_services.list_guardians(
            session, actor=actor, citizen_id=citizen_id, context=context, include_ended=True,
            now=now)]
    if has_scope(caller, resource="access-log", interaction="s"):
        items: list[dict[str, Any]] = []
        before = None
        while True:
            page = consent_services.read_access_log(
                session, actor=actor, citizen_id=citizen_id, context=context,
                lang=current_language(), limit=EXPORT_LOG_PAGE, before=before,
                include_own=True, now=now)
            items.extend(page.items)
            if page.next_before is None:
                break
            before = page.next_before
        parts["access_log"] = items
    return parts


# Vaccine catalogue ----------

@bp.get("/vaccines")
def vaccines() -> Response:
    current_caller()
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
