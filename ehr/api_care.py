"""HTTP surface of the care team: the family doctor's panel (`GET /api/v1/me/patients`)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, request

from auth.resource import current_caller, require_scope
from core.conditional import json_with_etag
from core.db import db
from core.errors import BadRequest, Forbidden, Message, ValidationFailed
from core.i18n import current_language
from core.pagination import decode_cursor, encode_cursor, parse_limit
from ehr.access import RecordAccess
from ehr.api import today_in_vietnam
from ehr.panel import PANEL_FLAGS, PanelPerson, panel_page
from ehr.views import iso
from registry.reference.care_intervals import care_intervals, care_intervals_source

bp = Blueprint("care", __name__, url_prefix="/api/v1")

_PANEL_PARAMS = frozenset({"limit", "cursor", "flag"})


@bp.get("/me/patients")
def my_patients() -> Response:
    """The people registered with the calling family doctor, paged, each with flags."""
    require_scope(resource="Patient", interaction="s")
    caller = current_caller()
    if caller.role != "practitioner" or caller.practitioner_id is None:
        raise Forbidden(Message("panel.practitioners-only"), code="role-not-allowed")
    unknown = sorted(set(request.args) - _PANEL_PARAMS)
    flag = request.args.get("flag")
    errors: dict[str, list[Message | str]] = {
        name: [Message("record.unknown-field")] for name in unknown}
    if flag is not None and flag not in PANEL_FLAGS:
        errors["flag"] = [Message("panel.flag-unknown")]
    if errors:
        raise ValidationFailed(errors=errors)
    limit = parse_limit(request.args.get("limit"))
    after = _after(request.args.get("cursor"))
    lang = current_language()
    page = panel_page(RecordAccess(db.session, caller), practitioner_id=caller.practitioner_id,
                      limit=limit, after=after, flag=flag, today=today_in_vietnam(), lang=lang)
    payload = {
        "items": [_person_view(person) for person in page.people],
        "next_cursor": (encode_cursor({"after": str(page.next_after)})
                        if page.next_after else None),
        "rules": _rules_view(lang),
    }
    db.session.commit()  # each person's audit event, before any of their data leaves
    return json_with_etag(payload)


def _after(cursor: str | None) -> uuid.UUID | None:
    if not cursor:
        return None
    position = decode_cursor(cursor)
    try:
        return uuid.UUID(str(position["after"]))
    except (KeyError, ValueError):
        raise BadRequest(Message("problem.invalid-cursor.detail"),
                         code="invalid-cursor") from None


def _person_view(person: PanelPerson) -> dict[str, Any]:
    citizen = person.citizen
    return {
        "citizen_id": str(citizen.id),
        "full_name": citizen.full_name,
        "date_of_birth": iso(citizen.date_of_birth),
        "sex": citizen.sex,
        "registered_since": iso(person.registered_since),
        "facility_id": str(person.facility_id),
        "flags": [{"code": flag.code, "reason": flag.reason, "date": iso(flag.date),
                   "rule": flag.rule} for flag in person.flags],
    }


def _rules_view(lang: str) -> list[dict[str, Any]]:
    """The follow-up intervals the flags apply, with their sources (the doctor can check)."""
    version = care_intervals_source()["version"]
    return [{"id": f"care-interval:{rule.id}", "condition": rule.condition_name(lang),
             "measurement": rule.measurement_name(lang), "interval": str(rule.interval),
             "confidence": rule.confidence, "source": rule.source, "version": version}
            for rule in care_intervals()]
