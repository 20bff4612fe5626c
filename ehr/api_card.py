"""HTTP surface of the vaccination card and of the verification of citizen-reported doses."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, request

from auth.resource import remembers_principal, require_scope
from core.conditional import json_with_etag, require_if_match, version_etag
from core.db import db
from core.errors import Message, ValidationFailed
from core.http import json_body
from core.i18n import current_language
from ehr.api import entry_response, new_access, today_in_vietnam
from ehr.citizen_reports import verify_dose
from ehr.vaccination_card import card_for

bp = Blueprint("card", __name__, url_prefix="/api/v1")


@bp.get("/citizens/<uuid:citizen_id>/vaccination-card")
@remembers_principal
def vaccination_card(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="Immunization", interaction="r")
    access = new_access()
    payload = card_for(access, citizen_id, today=today_in_vietnam(), lang=current_language())
    db.session.commit()  # the audit event of this read
    return json_with_etag(payload)


@bp.post("/citizens/<uuid:citizen_id>/immunizations/<uuid:entry_id>/verify")
def verify(citizen_id: uuid.UUID, entry_id: uuid.UUID) -> Response:
    """Station staff or a station's system confirm a dose the person reported, having seen the
    paper record. The body is empty or `{}`: what was checked is the dose as it stands (a
    wrong detail is corrected first, by the person or their doctor)."""
    require_scope(resource="Immunization", interaction="u")
    body = json_body() if request.get_data(cache=True) else {}
    if body:
        raise ValidationFailed(errors={name: [Message("record.unknown-field")]
                                       for name in sorted(body)})
    access = new_access()
    entry = verify_dose(
        access, citizen_id=citizen_id, entry_id=entry_id,
        check_version=lambda current: require_if_match(version_etag(current.id, current.version)),
    )
    db.session.flush()
    response = entry_response(access, entry)
    db.session.commit()
    return response
