"""HTTP surface of the station's vaccination worklist (issue 15): JSON, or the printable
session list as CSV on `Accept: text/csv`. Personal data: never stored by caches."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, jsonify, request

from auth.resource import current_caller, has_scope, require_scope
from core.db import db
from core.i18n import current_language
from ehr.api import today_in_vietnam
from ehr.worklist import build_worklist, parse_range, worklist_csv, worklist_view

bp = Blueprint("worklist", __name__, url_prefix="/api/v1")

CSV_TYPE = "text/csv"


@bp.get("/facilities/<uuid:facility_id>/immunization-worklist")
def immunization_worklist(facility_id: uuid.UUID) -> Response:
    caller = current_caller()
    # Listing who needs which dose is a search over immunizations, or over the
    # recommendations the schedule makes: a station's token carries either.
    if not has_scope(caller, resource="ImmunizationRecommendation", interaction="s"):
        require_scope(resource="Immunization", interaction="s")
    dates = parse_range(request.args.get("from"), request.args.get("to"),
                        today=today_in_vietnam())
    worklist = build_worklist(db.session, caller, facility_id=facility_id, dates=dates)
    db.session.commit()  # the audit events of the children considered
    lang = current_language()
    if request.accept_mimetypes.best_match(["application/json", CSV_TYPE]) == CSV_TYPE:
        response = Response(worklist_csv(worklist, lang).encode("utf-8"),
                            mimetype=CSV_TYPE, content_type=f"{CSV_TYPE}; charset=utf-8")
        code = "".join(ch for ch in worklist.facility.code if ch.isalnum() or ch in "-_")
        name = f"worklist-{code}-{dates.start.isoformat()}.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        response.headers["Content-Language"] = lang
    else:
        response = jsonify(worklist_view(worklist, lang))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Accept"
    return response
