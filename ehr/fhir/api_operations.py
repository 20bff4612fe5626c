"""FHIR R4 operations on a patient: `$summary` (the International Patient Summary) and
`$everything` (the data-subject export in FHIR).

Thin handlers: the same token scopes as the JSON routes they mirror (`summary`, `export`),
one service call (ehr/fhir/ips.py: the same audited decision and repository call as those
routes), one commit. Errors leave as OperationOutcome.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, json, request

from auth.resource import remembers_principal, require_scope
from core.db import db
from core.i18n import current_language
from ehr.api import new_access, today_in_vietnam
from ehr.fhir.ips import everything_bundle, ips_bundle
from ehr.fhir.mapping import FHIR_JSON

bp = Blueprint("fhir_operations", __name__, url_prefix="/fhir/R4")


def fhir_response(resource: dict[str, Any], *, attachment: str | None = None) -> Response:
    """A FHIR resource as `application/fhir+json` in the reader's language."""
    response = Response(json.dumps(resource, ensure_ascii=False), status=200,
                        content_type=FHIR_JSON + "; charset=utf-8")
    response.headers["Content-Language"] = current_language()
    if attachment:
        response.headers["Content-Disposition"] = f"attachment; filename={attachment}"
    return response


@bp.get("/Patient/<uuid:citizen_id>/$summary")
@remembers_principal
def patient_summary(citizen_id: uuid.UUID) -> Response:
    """The International Patient Summary: what `GET /api/v1/citizens/{id}/summary` shows this
    caller, as an IPS document Bundle."""
    require_scope(resource="Patient", interaction="r")
    bundle = ips_bundle(new_access(), citizen_id, lang=current_language(),
                        today=today_in_vietnam())
    db.session.commit()
    return fhir_response(bundle)


@bp.get("/Patient/<uuid:citizen_id>/$everything")
def patient_everything(citizen_id: uuid.UUID) -> Response:
    """What `GET /api/v1/citizens/{id}/export` shows this caller, as FHIR resources."""
    return everything_response(citizen_id)


def everything_response(citizen_id: uuid.UUID, *, attachment: str | None = None) -> Response:
    """`$everything` (also the export route's answer to `Accept: application/fhir+json`)."""
    # The export route's own parts, read as it reads them (a deferred import: that module
    # imports this one for its content negotiation).
    from ehr.api_citizens import exported_relationships

    require_scope(resource="Patient", interaction="r")
    access = new_access()
    base = request.url_root.rstrip("/") + (bp.url_prefix or "")
    bundle = everything_bundle(
        access, citizen_id, lang=current_language(), base_url=base,
        relationships=lambda: exported_relationships(access, citizen_id))
    db.session.commit()
    return fhir_response(bundle, attachment=attachment)


def wants_fhir() -> bool:
    """Whether the request prefers FHIR (`Accept: application/fhir+json`) to plain JSON; a
    tie or `*/*` keeps the JSON the route always answered."""
    return request.accept_mimetypes.best_match(["application/json", FHIR_JSON]) == FHIR_JSON
