"""Relationships and the access log in FHIR: RelatedPerson (guardians and proxies), Consent
(the citizen's grants) and AuditEvent (the access log, shaped after IHE BALP).

Each maps the JSON view the consent package's own route renders (`guardian_view`,
`consent_view`, an access-log item), so the FHIR answer holds exactly what that route shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auth.scopes import SECTION_RESOURCES, TARGET_RESOURCES
from ehr.fhir import codesystems as cs
from ehr.fhir.mapping import _clean, _ref

_GUARDIAN_ROLES = {"mother": ("MTH", "mother"), "father": ("FTH", "father"),
                   "parent": ("PRN", "parent"), "grandparent": ("GRPRN", "grandparent"),
                   "sibling": ("SIB", "sibling"), "child": ("CHILD", "child"),
                   "spouse": ("SPS", "spouse"), "legal-guardian": ("GUARD", "guardian")}


def related_person_resource(view: Mapping[str, Any]) -> dict[str, Any]:
    """A guardianship (`consent.views.guardian_view`) as the guardian related to the person."""
    guardian = view.get("guardian") or {}
    relationship = str(view.get("relationship") or "")
    role = _GUARDIAN_ROLES.get(relationship)
    codings = [{"system": cs.ROLE_CODE, "code": "GUARD", "display": "guardian"}]
    if role and role[0] != "GUARD":
        codings.append({"system": cs.ROLE_CODE, "code": role[0], "display": role[1]})
    name = guardian.get("full_name")
    return _clean({
        "resourceType": "RelatedPerson",
        "id": view["id"],
        "meta": {"tag": [{"system": cs.GUARDIAN_KIND, "code": view.get("kind")}]},
        "identifier": [{"system": f"{cs.BASE}/sid/citizen-id",
                        "value": guardian.get("citizen_id")}],
        "active": view.get("status") == "active",
        "patient": _ref("Patient", view.get("dependant_citizen_id")),
        "relationship": [{"coding": codings, "text": relationship or None}],
        "name": [{"text": name}] if name else None,
        "period": {"start": view.get("valid_from") or view.get("created_at"),
                   "end": view.get("revoked_at")},
    })


_RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"


def _section_class(section: str) -> dict[str, Any] | None:
    resource = SECTION_RESOURCES.get(section) or TARGET_RESOURCES.get(section)
    if not resource or resource == "*":
        return None
    return {"system": _RESOURCE_TYPES, "code": resource, "display": section}


def consent_resource(view: Mapping[str, Any]) -> dict[str, Any]:
    """A grant (`consent.views.consent_view`) as a privacy Consent whose provision permits
    the grantee to read (or read and write) the sections and restricted categories named."""
    grantee = view.get("grantee") or {}
    kind = "Practitioner" if grantee.get("type") == "practitioner" else "Organization"
    actions = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                            "code": "access"}]}]
    if view.get("access") == "read-write":
        actions.append({"coding": [{"system":
                                    "http://terminology.hl7.org/CodeSystem/consentaction",
                                    "code": "correct"}]})
    security = [{"system": cs.ACT_CODE, "code": cs.SENSITIVITY_ACT_CODES[c]}
                for c in view.get("categories") or () if c in cs.SENSITIVITY_ACT_CODES]
    security += [{"system": cs.SENSITIVITY, "code": c} for c in view.get("categories") or ()]
    status = view.get("status")
    return _clean({
        "resourceType": "Consent",
        "id": view["id"],
        "status": "active" if status == "active" else "inactive",
        "scope": {"coding": [{"system": cs.CONSENT_SCOPE, "code": "patient-privacy",
                              "display": "Privacy Consent"}]},
        "category": [{"coding": [{"system": cs.LOINC, "code": "59284-0",
                                  "display": "Patient Consent"}]}],
        "patient": _ref("Patient", view.get("citizen_id")),
        "dateTime": view.get("created_at"),
        "performer": [_ref("Patient", view.get("citizen_id"))],
        "policyRule": {"coding": [{"system": cs.ACT_CODE, "code": "OPTIN",
                                   "display": "opt-in"}]},
        "provision": {
            "type": "permit",
            "period": {"start": view.get("created_at"),
                       "end": view.get("revoked_at") or view.get("expires_at")},
            "actor": [{"role": {"coding": [{"system": cs.PARTICIPATION_TYPE, "code": "IRCP",
                                            "display": "information recipient"}]},
                       "reference": _ref(kind, grantee.get("id"), grantee.get("name"))}],
            "action": actions,
            "securityLabel": security,
            "purpose": [{"system": cs.PURPOSE_OF_USE, "code": "TREAT", "display": "treatment"}]
            if view.get("purpose") in (None, "treatment") else [
                {"system": f"{cs.BASE}/CodeSystem/purpose", "code": view.get("purpose")}],
            "class": [c for c in (_section_class(s) for s in view.get("sections") or ()) if c],
            "dataPeriod": {"start": view.get("data_from"), "end": view.get("data_until")}
            if view.get("data_from") or view.get("data_until") else None,
        },
    })


_ACTIONS = {"read": ("R", "read"), "create": ("C", "create"), "update": ("U", "update"),
            "delete": ("D", "delete"), "lookup": ("E", "search-type"),
            "entered-in-error": ("U", "update"), "verify": ("U", "update")}
_PURPOSES = {"treatment": "TREAT", "emergency": "ETREAT", "guardian": "PATRQT",
             "self": "PATRQT", "public-health": "PUBHLTH"}


def audit_event_resource(item: Mapping[str, Any], citizen_id: str) -> dict[str, Any]:
    """An access-log item (`consent.access_log`) as an AuditEvent shaped after IHE Basic Audit
    Log Patterns: a RESTful operation on the person's record, the person as the patient
    entity, the actor as the requesting agent, the plain-words sentence as outcomeDesc."""
    action = str(item.get("action") or "")
    code, interaction = _ACTIONS.get(action, ("E", None))
    actor = item.get("actor") or {}
    facility = actor.get("facility") or {}
    who = (_ref("Practitioner", actor["practitioner_id"], actor.get("name"))
           if actor.get("practitioner_id")
           else _ref("Organization", facility.get("id"), facility.get("name"))
           if actor.get("kind") == "station" and facility.get("id")
           else {"display": actor.get("name") or actor.get("kind") or "unknown"})
    purpose = _PURPOSES.get(str(item.get("purpose") or ""))
    if item.get("emergency"):
        purpose = "ETREAT"
    entities: list[dict[str, Any]] = [{
        "what": _ref("Patient", citizen_id),
        "type": {"system": cs.AUDIT_ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1",
                 "display": "Patient"},
    }]
    section = item.get("section")
    resource = SECTION_RESOURCES.get(str(section))
    if item.get("entry_id") and resource:
        entities.append({"what": _ref(resource, item["entry_id"]),
                         "type": {"system": cs.AUDIT_ENTITY_TYPE, "code": "2",
                                  "display": "System Object"}})
    elif section:
        entities.append({"what": {"display": str(section)},
                         "type": {"system": cs.AUDIT_ENTITY_TYPE, "code": "2",
                                  "display": "System Object"},
                         "name": str(section)})
    return _clean({
        "resourceType": "AuditEvent",
        "id": item["id"],
        "type": {"system": cs.AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": cs.AUDIT_EVENT_SUBTYPE, "code": interaction}] if interaction
        else None,
        "action": code,
        "recorded": item.get("occurred_at"),
        "outcome": "0" if item.get("decision") == "permit" else "4",
        "outcomeDesc": item.get("text"),
        "purposeOfEvent": [{"coding": [{"system": cs.PURPOSE_OF_USE, "code": purpose}]}]
        if purpose else None,
        "agent": [{
            "type": {"coding": [{"system": cs.PARTICIPATION_TYPE, "code": "IRCP",
                                 "display": "information recipient"}]},
            "who": who,
            "requestor": True,
        }],
        "source": {"observer": {"display": "phr-vn"},
                   "type": [{"system": cs.AUDIT_SOURCE_TYPE, "code": "4",
                             "display": "Application Server"}]},
        "entity": entities,
    })
