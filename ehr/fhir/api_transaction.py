"""`POST /fhir/R4`: a facility's system pushes a transaction Bundle (hospital and lab results).

Thin handler: a facility system's token (client credentials) holding `system/<Type>.c` for
every resource type the Bundle adds (and `system/Patient.s` when it names the person by a
Patient entry: resolving a health ID is the lookup a station makes), one service call
(`ehr.fhir.transaction.import_bundle`), one commit. The answer is a `transaction-response`
Bundle; a refusal an OperationOutcome naming each failing element, with nothing written but
the audit events of the decisions taken.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, json

from auth.errors import RoleNotAllowed
from auth.resource import require_role, require_scope, smart_context
from core.db import db
from core.errors import PROBLEM_TYPE_BASE, Message
from core.http import json_body
from core.i18n import current_language
from ehr.api import new_access
from ehr.fhir.errors import FHIR_JSON
from ehr.fhir.inbound import SUPPORTED_TYPES, BundleErrors
from ehr.fhir.transaction import import_bundle

bp = Blueprint("fhir_transaction", __name__, url_prefix="/fhir/R4")

_STATUS_TEXT = {200: "200 OK", 201: "201 Created"}
_TYPE = PROBLEM_TYPE_BASE + "validation-error"  # the problem type F1's outcomes code as well


@bp.post("")
def transaction() -> Response:
    """A transaction Bundle of Immunization, Observation, DiagnosticReport, Condition and
    Encounter entries, each a conditional create on the facility's own identifier."""
    caller = require_role("station")
    if smart_context(caller) != "system":
        raise RoleNotAllowed(Message("fhir.in.system-only"))
    bundle = json_body()
    for resource_type in _types_named(bundle):
        if resource_type == "Patient":
            require_scope(resource="Patient", interaction="s")
        else:
            require_scope(resource=resource_type, interaction="c")
    access = new_access()
    try:
        answers = import_bundle(access, bundle)
    except BundleErrors as refused:
        # Nothing was added; the decisions taken (and a lookup that found no one) stay audited.
        db.session.commit()
        return _refusal(refused)
    db.session.commit()
    return _fhir({
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [{"response": {"status": _STATUS_TEXT[answer.status],
                                "location": answer.location,
                                "etag": 'W/"1"' if answer.status == 201 else None}}
                  for answer in answers],
    })


def _types_named(bundle: Any) -> list[str]:
    """The supported resource types the Bundle's entries name (scopes are checked before
    anything of the Bundle is validated: a client without them learns nothing from it)."""
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    named: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind in (*SUPPORTED_TYPES, "Patient") and kind not in named:
            named.append(kind)
    return named


def _refusal(refused: BundleErrors) -> Response:
    lang = current_language()
    outcome = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": error.code,
         "details": {"coding": [{"system": "urn:phr-vn:problem",
                                 "code": _TYPE.removeprefix(PROBLEM_TYPE_BASE)}],
                     "text": error.message.render(lang)},
         "expression": [error.expression]}
        for error in refused.errors]}
    return _fhir(outcome, status=422)


def _fhir(resource: dict[str, Any], *, status: int = 200) -> Response:
    cleaned = _drop_none(resource)
    response = Response(json.dumps(cleaned, ensure_ascii=False), status=status,
                        content_type=FHIR_JSON + "; charset=utf-8")
    response.headers["Content-Language"] = current_language()
    return response


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
