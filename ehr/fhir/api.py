"""FHIR R4 HTTP surface: metadata, SMART configuration, read and search (DESIGN.md §1
`ehr/fhir/`).

A second face of the same record through the same gate: every handler asks for the same SMART
scope, calls the same repository method (`entry`, `page`, `schedule_doses`) or consent service
(guardians, consents, access log) as the JSON route it mirrors, and commits that route's audit
event. Only the shape changes: resources and `searchset` Bundles without `total` (a denied
resource is absent, and no total counts what the caller may not see); the `next` link carries
the JSON API's cursors. Errors are OperationOutcome (ehr/fhir/errors.py, for every path under
/fhir, whichever blueprint serves it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Blueprint, Response, json, request

from auth.resource import current_caller, has_scope, require_scope
from auth.scopes import CONTEXTS, IDENTITY_SCOPES, SECTION_RESOURCES
from auth.server import issuer
from consent import services as consent_services
from consent.audit import audit_rides_with_content
from consent.models import AuditEvent, Consent, Guardianship
from consent.pdp import request_context
from consent.policy import sees_contact_details
from consent.views import consent_view, guardian_view
from core.conditional import body_etag
from core.db import db, utcnow
from core.errors import PROBLEM_RENDERER, BadRequest, Message, NotFound, Problem
from core.i18n import current_language
from core.pagination import decode_cursor, encode_cursor
from ehr import records
from ehr.access import RecordAccess
from ehr.api import today_in_vietnam
from ehr.fhir import codesystems
from ehr.fhir import search as fhir_search
from ehr.fhir.errors import FHIR_PREFIX, outcome_response
from ehr.fhir.mapping import (
    FHIR_JSON,
    FHIR_VERSION,
    RESOURCE_SECTIONS,
    observation_category,
    organization_resource,
    patient_resource,
    practitioner_resource,
    recommendation_resource,
    resource_of_type,
)
from ehr.fhir.relations import audit_event_resource, consent_resource, related_person_resource
from ehr.repository import RecordRepository
from ehr.schedule_service import schedule_for
from registry import directory

if TYPE_CHECKING:
    from ehr.record_models import RecordEntry

bp = Blueprint("fhir", __name__, url_prefix="/fhir/R4")



def _fhir_problems(path: str, problem: Problem) -> Response | None:
    """Every problem under /fhir (this API's, the operations', unknown routes) as an
    OperationOutcome."""
    if path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/"):
        return outcome_response(problem)
    return None


@bp.record_once
def _answer_problems(state: Any) -> None:
    PROBLEM_RENDERER.install(state.app, _fhir_problems)

CLINICAL_TYPES = tuple(RESOURCE_SECTIONS)
CLINICAL = "<any(" + ", ".join(f'"{t}"' for t in CLINICAL_TYPES) + "):resource_type>"
_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
_COMMON = {"_format", "_count", "_cursor"}
_CLINICAL_PARAMS = {"patient", "date", "code", "category", "_lastUpdated"}
_VACCINE_CODE = "vaccine-code"
# Types whose R4 resource has a category element (the `category` parameter applies).
_HAS_CATEGORY = {"Observation", "Condition", "AllergyIntolerance", "DiagnosticReport"}
# Observation categories narrow the sections searched (the others hold none of them).
_CATEGORY_SECTIONS = {"vital-signs": ("observations",), "exam": ("observations",),
                      "laboratory": ("observations", "lab-results"),
                      "social-history": ("history",)}


class NotAcceptable(Problem):
    status, code = 406, "not-acceptable"


# --- plumbing -----------------------------------------------------------------------------

def _check_format() -> None:
    value = request.args.get("_format")
    if value is not None and value.split(";")[0].strip() not in _FORMATS:
        raise NotAcceptable(Message("problem.not-acceptable.detail", value=value[:40]))


def fhir_response(body: Mapping[str, Any], *, status: int = 200,
                  etag: str | None = None) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status=status,
                        content_type=FHIR_JSON + "; charset=utf-8")
    if etag:
        response.headers["ETag"] = etag
    return response


def base_url() -> str:
    return request.url_root.rstrip("/") + bp.url_prefix


def _single(name: str) -> str | None:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise BadRequest(Message("fhir.repeated-parameter", name=name), code="invalid-parameter")
    return values[0] if values else None


def _check_params(resource_type: str, allowed: set[str]) -> None:
    # Strict: a parameter silently ignored would show a caller more than it filtered for.
    unknown = sorted(set(request.args) - allowed - _COMMON)
    if unknown:
        raise BadRequest(Message("fhir.unknown-parameter", type=resource_type,
                                 names=", ".join(n[:40] for n in unknown[:5])),
                         code="invalid-parameter")


def _patient_param(resource_type: str) -> uuid.UUID:
    raw = _single("patient")
    if raw is None or raw == "":
        raise BadRequest(Message("fhir.patient-required", type=resource_type),
                         code="patient-required")
    return _uuid_ref(raw, "Patient")


def _uuid_ref(raw: str, kind: str) -> uuid.UUID:
    text = raw.strip()
    base = base_url() + "/"
    if text.startswith(base):
        text = text[len(base):]
    if text.startswith(kind + "/"):
        text = text[len(kind) + 1:]
    try:
        return uuid.UUID(text)
    except ValueError:
        raise BadRequest(Message("fhir.invalid-reference"), code="invalid-reference") from None


def _bundle(resources: Iterable[Mapping[str, Any]], *, next_params: Mapping[str, str] | None
            ) -> dict[str, Any]:
    base = base_url()
    self_query = urlencode(list(request.args.items(multi=True)))
    links = [{"relation": "self", "url": f"{base}{_path()}" + (f"?{self_query}"
                                                               if self_query else "")}]
    if next_params is not None:
        params = [(k, v) for k, v in request.args.items(multi=True) if k != "_cursor"]
        params += list(next_params.items())
        links.append({"relation": "next", "url": f"{base}{_path()}?{urlencode(params)}"})
    entries = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                "search": {"mode": "match"}} for r in resources]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": utcnow().isoformat()},
        "type": "searchset",
        "timestamp": utcnow().isoformat(),
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle


def _path() -> str:
    return request.path[len(bp.url_prefix or ""):]


def _new_access() -> RecordAccess:
    return RecordAccess(db.session, current_caller())


# --- conformance --------------------------------------------------------------------------

@bp.get("/metadata")
def metadata() -> Response:
    """The CapabilityStatement (public: no token)."""
    _check_format()
    return fhir_response(capability_statement(), etag=None)


@bp.get("/.well-known/smart-configuration")
def smart_configuration() -> Response:
    """SMART App Launch v2 discovery (public: no token)."""
    base = issuer()
    clinical = [f"{context}/*.cruds" for context in CONTEXTS]
    body = {
        "issuer": base,
        "jwks_uri": f"{base}/oauth/jwks",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                  "none"],
        "scopes_supported": sorted(IDENTITY_SCOPES) + clinical,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-standalone", "client-public", "client-confidential-symmetric",
            "permission-v2", "permission-patient", "permission-user", "permission-offline",
            "context-standalone-patient", "sso-openid-connect", "authorize-post",
        ],
    }
    response = Response(json.dumps(body), content_type="application/json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get('/CodeSystem/<any("vn-vaccines", "vn-antigens"):name>')
def code_system(name: str) -> Response:
    """A code system this service publishes (public: reference data)."""
    _check_format()
    resource = codesystems.code_system(name, lang=current_language())
    if resource is None:
        raise NotFound()
    return fhir_response(resource, etag=body_etag(resource))


_SEARCH_DOCS = {
    "patient": ("reference", "The person (Patient/<id>); required."),
    "date": ("date", "The entry's clinical date (onset, start, effective, issued, given "
                     "or examined date), day precision; prefixes eq ne ge gt le lt."),
    "code": ("token", "A code of the resource (system|code or code; comma = or): ICD-10, "
                      "LOINC, ATC, the national vaccine codes."),
    "category": ("token", "The category (Observation: vital-signs, laboratory, "
                          "social-history, exam)."),
    "_lastUpdated": ("date", "The entry's last change: ge/gt are answered in the delta-sync "
                             "order (oldest change first, entered-in-error entries included); "
                             "le/lt/eq/ne filter the same order."),
    "_count": ("number", "Page size, 1-200 (default 50); a page may hold fewer entries and "
                         "still have a next link when filters apply."),
}


def capability_statement() -> dict[str, Any]:
    base = base_url()
    resources: list[dict[str, Any]] = []

    def params(*names: str) -> list[dict[str, Any]]:
        return [{"name": n, "type": _SEARCH_DOCS[n][0], "documentation": _SEARCH_DOCS[n][1]}
                for n in names]

    for resource_type in CLINICAL_TYPES:
        names = ["patient", "date", "code"]
        if resource_type in _HAS_CATEGORY:
            names.append("category")
        names += ["_lastUpdated", "_count"]
        entry = {"type": resource_type, "interaction": [{"code": "read"},
                                                        {"code": "search-type"}],
                 "versioning": "versioned", "readHistory": False,
                 "searchParam": params(*names)}
        if resource_type == "Immunization":
            entry["searchParam"].append({"name": _VACCINE_CODE, "type": "token",
                                         "documentation": "The vaccine code (as code)."})
        resources.append(entry)
    resources += [
        {"type": "Patient", "interaction": [{"code": "read"}, {"code": "search-type"}],
         "searchParam": [{"name": "_id", "type": "token",
                          "documentation": "The person's id (a citizen without it: "
                                           "themselves)."}],
         "operation": [{"name": "summary",
                        "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"},
                       {"name": "everything",
                        "definition": "http://hl7.org/fhir/OperationDefinition/"
                                      "Patient-everything"}]},
        {"type": "ImmunizationRecommendation",
         "interaction": [{"code": "read"}, {"code": "search-type"}],
         "documentation": "The national schedule against the person's doses; its id is the "
                          "person's id.",
         "searchParam": params("patient")},
        {"type": "RelatedPerson", "interaction": [{"code": "read"}, {"code": "search-type"}],
         "documentation": "Guardians and proxies in force.", "searchParam": params("patient")},
        {"type": "Consent", "interaction": [{"code": "read"}, {"code": "search-type"}],
         "documentation": "The person's grants in force.", "searchParam": params("patient")},
        {"type": "AuditEvent", "interaction": [{"code": "read"}, {"code": "search-type"}],
         "documentation": "The person's access log (IHE BALP shape), newest first.",
         "searchParam": params("patient", "_count")},
        {"type": "Practitioner", "interaction": [{"code": "read"}, {"code": "search-type"}],
         "documentation": "The public register.",
         "searchParam": [{"name": "name", "type": "string"},
                         {"name": "_count", "type": "number"}]},
        {"type": "Organization", "interaction": [{"code": "read"}, {"code": "search-type"}],
         "documentation": "The public register of facilities.",
         "searchParam": [{"name": "name", "type": "string"},
                         {"name": "_count", "type": "number"}]},
        {"type": "CodeSystem", "interaction": [{"code": "read"}],
         "documentation": "vn-vaccines and vn-antigens."},
    ]
    resources.sort(key=lambda r: r["type"])
    return {
        "resourceType": "CapabilityStatement",
        "id": "phr-vn",
        "url": f"{base}/metadata",
        "name": "PhrVnFhirServer",
        "title": "Hồ sơ sức khỏe cá nhân — FHIR R4",
        "status": "active",
        "date": "2025-01-01",
        "publisher": "phr-vn",
        "kind": "instance",
        "implementation": {"description": "Personal health record of Viet Nam (FHIR R4 face)",
                           "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Every read and search passes the consent decision point and is "
                             "audited; a resource the caller may not see is absent, and "
                             "search Bundles carry no total. Searches need `patient`.",
            "security": {
                "cors": True,
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"}]}],
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/"
                           "oauth-uris",
                    "extension": [
                        {"url": "authorize", "valueUri": f"{issuer()}/oauth/authorize"},
                        {"url": "token", "valueUri": f"{issuer()}/oauth/token"},
                        {"url": "revoke", "valueUri": f"{issuer()}/oauth/revoke"},
                        {"url": "introspect", "valueUri": f"{issuer()}/oauth/introspect"},
                    ]}],
            },
            "resource": resources,
            "interaction": [{"code": "transaction"}],
            "operation": [{"name": "summary",
                           "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/"
                                         "summary"}],
        }],
    }


# --- Patient ------------------------------------------------------------------------------

def _patient(access: RecordAccess, citizen_id: uuid.UUID) -> dict[str, Any]:
    # As GET /api/v1/citizens/{id}: the demographics decision, the caller's view of them.
    citizen = records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="demographics", action="read")
    return patient_resource(citizen, lang=current_language(),
                            full=sees_contact_details(access.caller))


@bp.get("/Patient/<uuid:citizen_id>")
def read_patient(citizen_id: uuid.UUID) -> Response:
    _check_format()
    require_scope(resource="Patient", interaction="r")
    resource = _patient(_new_access(), citizen_id)
    db.session.commit()
    return fhir_response(resource, etag=f'W/"{resource["meta"]["versionId"]}"')


@bp.get("/Patient")
def search_patient() -> Response:
    _check_format()
    require_scope(resource="Patient", interaction="s")
    _check_params("Patient", {"_id"})
    access = _new_access()
    raw = _single("_id")
    if raw:
        citizen_id = _uuid_ref(raw, "Patient")
    elif access.caller.citizen_id is not None:
        citizen_id = access.caller.citizen_id
    else:
        raise BadRequest(Message("fhir.patient-required", type="Patient"),
                         code="patient-required")
    resource = _patient(access, citizen_id)
    db.session.commit()
    return fhir_response(_bundle([resource], next_params=None))


# --- record entries -----------------------------------------------------------------------

def _locate(entry_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
    """Whose entry an id is, and in which section: a FHIR read names no person. Only the
    envelope's citizen and section are read (no content); the read itself is then decided
    and audited by the repository as the JSON route's."""
    return RecordRepository(_new_access()).locate(entry_id=entry_id)


def _readable_sections(resource_type: str, interaction: str) -> tuple[str, ...]:
    """The sections of a type the token may read: the FHIR type's scope (required by the
    route) and each section's own (a lab result Observation also needs the lab results'
    DiagnosticReport scope, as the JSON list of lab results does)."""
    caller = current_caller()
    return tuple(s for s in RESOURCE_SECTIONS[resource_type]
                 if has_scope(caller, resource=SECTION_RESOURCES[s], interaction=interaction))


@bp.get("/" + CLINICAL + "/<uuid:entry_id>")
def read_entry(resource_type: str, entry_id: uuid.UUID) -> Response:
    _check_format()
    require_scope(resource=resource_type, interaction="r")
    sections = _readable_sections(resource_type, "r") or RESOURCE_SECTIONS[resource_type][:1]
    located = _locate(entry_id)
    if located is None:
        raise NotFound()
    citizen_id, section = located
    if section not in sections:
        # Asked in the type's own section, as GET /api/v1/citizens/{id}/{section}/{entry_id}
        # of another section would be: audited, 404.
        section = sections[0]
    access = _new_access()
    entry = RecordRepository(access).entry(citizen_id=citizen_id, section=section,
                                           entry_id=entry_id)
    resource = resource_of_type(resource_type, entry, records.names_of(access, [entry]),
                                lang=current_language())
    db.session.commit()
    return fhir_response(resource, etag=f'W/"{entry.version}"')


def _token_params(name: str) -> list[list[fhir_search.Token]]:
    return [fhir_search.parse_tokens(v) for v in request.args.getlist(name)]


_CODE_PATHS: dict[str, Callable[[Mapping[str, Any]], list[Mapping[str, Any]]]] = {
    "Condition": lambda r: [r.get("code") or {}],
    "Observation": lambda r: [r.get("code") or {}],
    "DiagnosticReport": lambda r: [r.get("code") or {}],
    "Immunization": lambda r: [r.get("vaccineCode") or {}],
    "MedicationStatement": lambda r: [r.get("medicationCodeableConcept") or {}],
    "AllergyIntolerance": lambda r: [r.get("code") or {}],
    "FamilyMemberHistory": lambda r: [c.get("code") or {} for c in r.get("condition", [])],
    "Encounter": lambda r: [*r.get("type", []), *r.get("reasonCode", [])],
}


def _codings(concepts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [coding for concept in concepts for coding in concept.get("coding", [])]


def _categories(resource_type: str, resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if resource_type == "AllergyIntolerance":
        return [{"system": "http://hl7.org/fhir/allergy-intolerance-category", "code": c}
                for c in resource.get("category", [])]
    return _codings(resource.get("category", []))


@bp.get("/" + CLINICAL)
def search_entries(resource_type: str) -> Response:
    _check_format()
    require_scope(resource=resource_type, interaction="s")
    allowed = {"patient", "date", "code", "_lastUpdated"}
    if resource_type in _HAS_CATEGORY:
        allowed.add("category")
    if resource_type == "Immunization":
        allowed.add(_VACCINE_CODE)
    _check_params(resource_type, allowed)
    citizen_id = _patient_param(resource_type)
    count = fhir_search.parse_count(_single("_count"))
    filters = fhir_search.Filters(
        dates=[fhir_search.parse_date(v) for v in request.args.getlist("date")],
        codes=_token_params("code") + _token_params(_VACCINE_CODE),
        categories=_token_params("category"),
        updated=[fhir_search.parse_instant(v) for v in request.args.getlist("_lastUpdated")],
    )
    cursor = _single("_cursor")
    state = fhir_search.decode_state(resource_type, cursor) if cursor else None
    sections = _readable_sections(resource_type, "s") or RESOURCE_SECTIONS[resource_type][:1]
    if resource_type == "Observation" and filters.categories:
        wanted: set[str] = set()
        for tokens in filters.categories:
            for token in tokens:
                if token.system in (None, "http://terminology.hl7.org/CodeSystem/"
                                          "observation-category"):
                    wanted.update(_CATEGORY_SECTIONS.get(token.code or "", ()))
        sections = tuple(s for s in sections if s in wanted) or sections[:1]
    access = _new_access()
    lang = current_language()
    names_cache: dict[uuid.UUID, dict[str, Any]] = {}

    def resource_of(entry: RecordEntry) -> dict[str, Any]:
        if entry.id not in names_cache:
            names_cache[entry.id] = resource_of_type(
                resource_type, entry, records.names_of(access, [entry]), lang=lang)
        return names_cache[entry.id]

    def matches(entry: RecordEntry) -> bool:
        if any(not d.matches(entry.clinical_date) for d in filters.dates):
            return False
        if any(not r.matches(entry.updated_at) for r in filters.updated):
            return False
        if resource_type == "Observation" and filters.categories:
            category = observation_category(entry)
            if not all(any(t.code == category and t.system in (
                    None, "http://terminology.hl7.org/CodeSystem/observation-category")
                    for t in tokens) for tokens in filters.categories):
                return False
        elif filters.categories:
            found = _categories(resource_type, resource_of(entry))
            if not all(any(t.matches([c]) for t in tokens for c in found)
                       for tokens in filters.categories):
                return False
        if filters.codes:
            codings = _codings(_CODE_PATHS[resource_type](resource_of(entry)))
            if not all(any(t.matches(codings) for t in tokens) for tokens in filters.codes):
                return False
        return True

    page = fhir_search.search_sections(
        RecordRepository(access), citizen_id=citizen_id, sections=sections, count=count,
        state=state, filters=filters, matches=matches)
    names = records.names_of(access, page.entries)
    resources = [names_cache.get(e.id) or resource_of_type(resource_type, e, names, lang=lang)
                 for e in page.entries]
    next_params = ({"_cursor": fhir_search.encode_state(resource_type, page.next_state)}
                   if page.next_state else None)
    db.session.commit()  # the audit events of these reads
    return fhir_response(_bundle(resources, next_params=next_params))


# --- the schedule -------------------------------------------------------------------------

def _recommendation(access: RecordAccess, citizen_id: uuid.UUID) -> dict[str, Any] | None:
    # As GET /api/v1/citizens/{id}/immunization-schedule.
    citizen = records.get_citizen(access, citizen_id)
    with audit_rides_with_content(db.session):  # the read's audit append and its doses
        access.require(citizen_id=citizen_id, section="immunization-schedule", action="read")
        counted = RecordRepository(access).schedule_doses(citizen_id=citizen_id)
    today = today_in_vietnam()
    doses = schedule_for(citizen, counted, today=today)
    if not doses:
        return None  # an ImmunizationRecommendation needs at least one recommendation
    return recommendation_resource(citizen_id, doses, lang=current_language(), today=today)


@bp.get("/ImmunizationRecommendation/<uuid:citizen_id>")
def read_recommendation(citizen_id: uuid.UUID) -> Response:
    _check_format()
    require_scope(resource="ImmunizationRecommendation", interaction="r")
    resource = _recommendation(_new_access(), citizen_id)
    db.session.commit()
    if resource is None:
        raise NotFound()
    return fhir_response(resource)


@bp.get("/ImmunizationRecommendation")
def search_recommendation() -> Response:
    _check_format()
    require_scope(resource="ImmunizationRecommendation", interaction="s")
    _check_params("ImmunizationRecommendation", {"patient"})
    citizen_id = _patient_param("ImmunizationRecommendation")
    resource = _recommendation(_new_access(), citizen_id)
    db.session.commit()
    return fhir_response(_bundle([resource] if resource else [], next_params=None))


# --- relationships and the access log -----------------------------------------------------

def _actor(citizen_id: uuid.UUID) -> tuple[Any, Any]:
    caller = current_caller()
    return caller.acting_for_citizen(citizen_id), request_context(caller)


@bp.get("/RelatedPerson")
def search_related_persons() -> Response:
    _check_format()
    require_scope(resource="RelatedPerson", interaction="s")
    _check_params("RelatedPerson", {"patient"})
    citizen_id = _patient_param("RelatedPerson")
    actor, context = _actor(citizen_id)
    views = consent_services.list_guardians(db.session, actor=actor, citizen_id=citizen_id,
                                            context=context)
    resources = [related_person_resource(guardian_view(v)) for v in views]
    db.session.commit()
    return fhir_response(_bundle(resources, next_params=None))


@bp.get("/RelatedPerson/<uuid:guardianship_id>")
def read_related_person(guardianship_id: uuid.UUID) -> Response:
    _check_format()
    require_scope(resource="RelatedPerson", interaction="r")
    row = db.session.get(Guardianship, guardianship_id)
    if row is None:
        raise NotFound()
    actor, context = _actor(row.dependant_citizen_id)
    view = consent_services.read_guardianship(
        db.session, actor=actor, citizen_id=row.dependant_citizen_id,
        guardianship_id=guardianship_id, context=context)
    resource = related_person_resource(guardian_view(view))
    db.session.commit()
    return fhir_response(resource)


def _consents(citizen_id: uuid.UUID, *, include_ended: bool) -> list[dict[str, Any]]:
    actor, context = _actor(citizen_id)
    now = utcnow()
    rows = consent_services.list_consents(db.session, actor=actor, citizen_id=citizen_id,
                                          context=context, include_ended=include_ended, now=now)
    names = consent_services.grantee_names(db.session, rows)
    return [consent_view(row, names, now) for row in rows]


@bp.get("/Consent")
def search_consents() -> Response:
    _check_format()
    require_scope(resource="Consent", interaction="s")
    _check_params("Consent", {"patient"})
    citizen_id = _patient_param("Consent")
    resources = [consent_resource(v) for v in _consents(citizen_id, include_ended=False)]
    db.session.commit()
    return fhir_response(_bundle(resources, next_params=None))


@bp.get("/Consent/<uuid:consent_id>")
def read_consent(consent_id: uuid.UUID) -> Response:
    _check_format()
    require_scope(resource="Consent", interaction="r")
    row = db.session.get(Consent, consent_id)
    if row is None:
        raise NotFound()
    # The grants list (ended ones included) decides and filters, as the JSON list does.
    found = [v for v in _consents(row.citizen_id, include_ended=True)
             if v["id"] == str(consent_id)]
    db.session.commit()
    if not found:
        raise NotFound()
    return fhir_response(consent_resource(found[0]))


@bp.get("/AuditEvent")
def search_audit_events() -> Response:
    _check_format()
    require_scope(resource="AuditEvent", interaction="s")
    _check_params("AuditEvent", {"patient"})
    citizen_id = _patient_param("AuditEvent")
    count = fhir_search.parse_count(_single("_count"))
    before = None
    cursor = _single("_cursor")
    if cursor:
        position = decode_cursor(cursor)
        if not isinstance(position.get("seq"), int):
            raise BadRequest(Message("problem.invalid-cursor.detail"), code="invalid-cursor")
        before = position["seq"]
    actor, context = _actor(citizen_id)
    page = consent_services.read_access_log(
        db.session, actor=actor, citizen_id=citizen_id, context=context,
        lang=current_language(), limit=count, before=before)
    resources = [audit_event_resource(item, str(citizen_id)) for item in page.items]
    next_params = ({"_cursor": encode_cursor({"seq": page.next_before})}
                   if page.next_before else None)
    db.session.commit()
    return fhir_response(_bundle(resources, next_params=next_params))


@bp.get("/AuditEvent/<uuid:event_id>")
def read_audit_event(event_id: uuid.UUID) -> Response:
    _check_format()
    require_scope(resource="AuditEvent", interaction="r")
    row = db.session.get(AuditEvent, event_id)
    if row is None or row.citizen_id is None:
        raise NotFound()
    citizen_id, seq = row.citizen_id, row.seq
    actor, context = _actor(citizen_id)
    # The access log's own read (decision, audit, labels the viewer may see) of one event.
    page = consent_services.read_access_log(
        db.session, actor=actor, citizen_id=citizen_id, context=context,
        lang=current_language(), limit=1, before=seq + 1, include_own=True)
    found = [item for item in page.items if item["id"] == str(event_id)]
    db.session.commit()
    if not found:
        raise NotFound()
    return fhir_response(audit_event_resource(found[0], str(citizen_id)))


# --- the public register ------------------------------------------------------------------

def _directory_position() -> directory.Position | None:
    cursor = _single("_cursor")
    if not cursor:
        return None
    position = decode_cursor(cursor)
    try:
        return directory.Position.from_cursor(position)
    except (KeyError, ValueError):
        raise BadRequest(Message("problem.invalid-cursor.detail"),
                         code="invalid-cursor") from None


def _directory_next(position: directory.Position | None) -> dict[str, str] | None:
    if position is None:
        return None
    return {"_cursor": encode_cursor(position.as_cursor())}


def _name_filter() -> directory.DirectoryFilter:
    name = _single("name")
    if name is not None and (not name.strip() or len(name) > 100):
        raise BadRequest(Message("fhir.invalid-token", value=name[:40]), code="invalid-parameter")
    return directory.DirectoryFilter(q=name.strip() if name else None)


@bp.get("/Practitioner/<uuid:practitioner_id>")
def read_practitioner(practitioner_id: uuid.UUID) -> Response:
    _check_format()
    current_caller()  # the public register: any valid token, as /api/v1/practitioners
    practitioner = directory.get_practitioner(db.session, practitioner_id)
    if practitioner is None:
        raise NotFound()
    memberships = directory.current_memberships(db.session, [practitioner.id],
                                                today=today_in_vietnam())
    return fhir_response(practitioner_resource(
        practitioner, [f for _, f in memberships[practitioner.id]]))


@bp.get("/Practitioner")
def search_practitioners() -> Response:
    _check_format()
    current_caller()
    _check_params("Practitioner", {"name"})
    today = today_in_vietnam()
    page = directory.list_practitioners(
        db.session, filters=_name_filter(), limit=fhir_search.parse_count(_single("_count")),
        after=_directory_position(), today=today)
    memberships = directory.current_memberships(db.session, [p.id for p in page.items],
                                                today=today)
    resources = [practitioner_resource(p, [f for _, f in memberships[p.id]])
                 for p in page.items]
    return fhir_response(_bundle(resources, next_params=_directory_next(page.next_position)))


@bp.get("/Organization/<uuid:facility_id>")
def read_organization(facility_id: uuid.UUID) -> Response:
    _check_format()
    current_caller()
    facility = directory.get_facility(db.session, facility_id)
    if facility is None:
        raise NotFound()
    return fhir_response(organization_resource(facility))


@bp.get("/Organization")
def search_organizations() -> Response:
    _check_format()
    current_caller()
    _check_params("Organization", {"name"})
    page = directory.list_facilities(
        db.session, filters=_name_filter(), limit=fhir_search.parse_count(_single("_count")),
        after=_directory_position())
    resources = [organization_resource(f) for f in page.items]
    return fhir_response(_bundle(resources, next_params=_directory_next(page.next_position)))
