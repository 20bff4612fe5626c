"""HTTP surface of the directory: the practitioners and facilities of the public register.

Any valid access token reads it, whatever its scopes (as the vaccine catalogue): it is public
register data and holds nothing about citizens, and a citizen needs it to name the practitioner
of a consent or a family-doctor choice with a token scoped to their own record
(`patient/...`), which a `Practitioner` read scope in the patient context would not usually be
among. Listing is not audited for the same reason: no personal data is read.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, request

from auth.resource import current_caller
from core.conditional import json_with_etag
from core.db import db
from core.errors import Message, NotFound, ValidationFailed
from core.i18n import register_messages
from core.pagination import decode_cursor, encode_cursor, parse_limit
from core.schemas import text_problems
from ehr.api import today_in_vietnam
from registry import directory
from registry.models import FACILITY_KINDS, PROFESSIONS
from registry.reference import admin_units
from registry.schemas import address_unit_message

bp = Blueprint("directory", __name__, url_prefix="/api/v1")

MAX_Q_LENGTH = 100


def _position() -> directory.Position | None:
    cursor = request.args.get("cursor")
    if not cursor:
        return None
    position = decode_cursor(cursor)
    try:
        return directory.Position.from_cursor(position)
    except (KeyError, ValueError):
        # Signed by us, so only a cursor of another list gets here.
        raise ValidationFailed(errors={"cursor": [Message("directory.cursor")]}) from None


def _cursor(position: directory.Position | None) -> str | None:
    if position is None:
        return None
    return encode_cursor(position.as_cursor())


def _filters(*, allowed: tuple[str, ...]) -> directory.DirectoryFilter:
    """The query's filters, each checked; every bad one is named in one 422 problem."""
    args = request.args
    errors: dict[str, list[Message]] = {}
    values: dict[str, Any] = {}
    q = args.get("q")
    if q is not None and "q" in allowed:
        problems = text_problems(q) if q.strip() else []
        if len(q) > MAX_Q_LENGTH:
            problems.append(Message("directory.q-length", max=MAX_Q_LENGTH))
        if problems:
            errors["q"] = problems
        else:
            values["q"] = q
    commune = args.get("commune_code")
    if commune is not None and "commune_code" in allowed:
        if not (len(commune) == 5 and commune.isascii() and commune.isdigit()):
            errors["commune_code"] = [Message("directory.commune-format")]
        else:
            resolution = admin_units.resolve_commune(commune)
            if resolution.commune is None:
                errors["commune_code"] = [address_unit_message(admin_units.AdminUnitError(
                    "commune_code", resolution.status, resolution.candidates))]
            else:
                values["commune_code"] = resolution.commune.code
    province = args.get("province_code")
    if province is not None and "province_code" in allowed:
        found = (admin_units.current_province(province)
                 if len(province) == 2 and province.isascii() and province.isdigit() else None)
        if found is None:
            errors["province_code"] = [Message("citizen.address.province")]
        else:
            values["province_code"] = found.code
    facility = args.get("facility_id")
    if facility is not None and "facility_id" in allowed:
        try:
            values["facility_id"] = uuid.UUID(facility)
        except ValueError:
            errors["facility_id"] = [Message("directory.facility-id")]
    for name, choices in (("kind", FACILITY_KINDS), ("profession", PROFESSIONS)):
        value = args.get(name)
        if value is not None and name in allowed:
            if value not in choices:
                errors[name] = [Message("directory.one-of", choices=", ".join(choices))]
            else:
                values[name] = value
    if errors:
        raise ValidationFailed(errors=errors)
    return directory.DirectoryFilter(**values)


@bp.get("/practitioners")
def list_practitioners() -> Response:
    current_caller()
    filters = _filters(allowed=("q", "commune_code", "province_code", "facility_id", "kind",
                                "profession"))
    limit = parse_limit(request.args.get("limit"))
    today = today_in_vietnam()
    page = directory.list_practitioners(db.session, filters=filters, limit=limit,
                                        after=_position(), today=today)
    memberships = directory.current_memberships(
        db.session, [p.id for p in page.items], today=today)
    items = [directory.practitioner_view(p, memberships[p.id])
             for p in page.items]
    return json_with_etag({"items": items, "next_cursor": _cursor(page.next_position)})


@bp.get("/practitioners/<uuid:practitioner_id>")
def get_practitioner(practitioner_id: uuid.UUID) -> Response:
    current_caller()
    practitioner = directory.get_practitioner(db.session, practitioner_id)
    if practitioner is None:
        raise NotFound()
    memberships = directory.current_memberships(db.session, [practitioner.id],
                                                today=today_in_vietnam())
    return json_with_etag(directory.practitioner_view(practitioner, memberships[practitioner.id]))


@bp.get("/facilities")
def list_facilities() -> Response:
    current_caller()
    filters = _filters(allowed=("q", "commune_code", "province_code", "kind"))
    limit = parse_limit(request.args.get("limit"))
    page = directory.list_facilities(db.session, filters=filters, limit=limit, after=_position())
    items = [directory.facility_view(f) for f in page.items]
    return json_with_etag({"items": items, "next_cursor": _cursor(page.next_position)})


@bp.get("/facilities/<uuid:facility_id>")
def get_facility(facility_id: uuid.UUID) -> Response:
    current_caller()
    facility = directory.get_facility(db.session, facility_id)
    if facility is None:
        raise NotFound()
    return json_with_etag(directory.facility_view(facility))


MESSAGES = {
    "directory.q-length": {
        "vi": "Từ khóa tìm kiếm dài tối đa {max} ký tự.",
        "en": "The search text may be at most {max} characters long.",
    },
    "directory.commune-format": {
        "vi": "Mã xã, phường gồm đúng 5 chữ số.",
        "en": "A commune code has exactly 5 digits.",
    },
    "directory.facility-id": {
        "vi": "Mã cơ sở y tế không hợp lệ (cần một UUID).",
        "en": "Not a valid facility id (a UUID is expected).",
    },
    "directory.one-of": {
        "vi": "Giá trị phải là một trong: {choices}.",
        "en": "Must be one of: {choices}.",
    },
    "directory.cursor": {
        "vi": "Con trỏ phân trang không thuộc danh sách này.",
        "en": "The cursor does not belong to this list.",
    },
}

register_messages(MESSAGES)
