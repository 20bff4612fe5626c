"""Every error under /fhir leaves as an OperationOutcome (`application/fhir+json`).

The same problems the JSON API raises (typed, translatable: vi by default, en by
Accept-Language) are rendered here in FHIR's shape: one issue per problem, or one per field
error with the field as its `expression`; the problem's stable type is kept as a coding, and a
500 says nothing but the request id (no traceback, no value ever leaves).
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, json

import ehr.fhir.messages  # noqa: F401  (registers the FHIR face's texts)
from core.errors import PROBLEM_TYPE_BASE, Message, Problem, problem_body
from core.i18n import current_language

FHIR_PREFIX = "/fhir"
FHIR_JSON = "application/fhir+json"

# HTTP status → OperationOutcome issue type (http://hl7.org/fhir/issue-type).
_ISSUE_CODES = {
    400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
    406: "not-supported", 409: "conflict", 410: "deleted", 412: "conflict", 413: "too-long",
    415: "not-supported", 422: "processing", 428: "required", 429: "throttled",
    431: "too-long", 500: "exception", 503: "transient",
}


def operation_outcome(problem: Problem) -> dict[str, Any]:
    """The OperationOutcome of a problem, in the request's language."""
    body = problem_body(problem)
    code = _ISSUE_CODES.get(problem.status, "processing" if problem.status < 500 else "exception")
    details = {"coding": [{"system": "urn:phr-vn:problem",
                           "code": str(body["type"]).removeprefix(PROBLEM_TYPE_BASE),
                           "display": body["title"]}],
               "text": body["detail"]}
    issues: list[dict[str, Any]] = []
    for field, messages in (body.get("errors") or {}).items():
        for message in messages:
            issues.append({"severity": "error", "code": "invalid" if problem.status == 400
                           else "processing" if code == "processing" else code,
                           "details": {**details, "text": message},
                           "expression": [field]})
    if not issues:
        issues.append({"severity": "error" if problem.status < 500 else "fatal", "code": code,
                       "details": details})
    outcome: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": issues}
    request_id = g.get("request_id")
    if request_id:
        outcome["id"] = str(request_id)
    return outcome


def outcome_response(problem: Problem) -> Response:
    """A problem as the FHIR face answers it (the problem's headers kept: WWW-Authenticate,
    Retry-After, Allow)."""
    response = Response(json.dumps(operation_outcome(problem), ensure_ascii=False),
                        status=problem.status, content_type=FHIR_JSON + "; charset=utf-8")
    response.headers["Content-Language"] = current_language()
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def information(message: Message) -> dict[str, Any]:
    """An informational OperationOutcome (a search that found nothing it may show)."""
    return {"resourceType": "OperationOutcome", "issue": [{
        "severity": "information", "code": "informational",
        "details": {"text": message.render(current_language())}}]}
