"""`GET /api/v1/me`: who the token acts as, for the phone's first screen."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.models import Account, OAuthClient
from auth.resource import current_caller
from auth.userinfo import display_name
from core.db import db
from core.hooks import Hook
from registry.caller import Caller
from registry.models import Facility

bp = Blueprint("auth_api", __name__, url_prefix="/api/v1")

DependantsProvider = Callable[[Session, uuid.UUID], list[dict[str, Any]]]

# Answered by the package that knows guardianships (consent, above auth): the people a citizen
# acts for, as {"citizen_id": ..., "full_name": ...}; nobody until it is installed.
DEPENDANTS: Hook[DependantsProvider] = Hook("dependants", lambda session, citizen_id: [])


def _dependants(principal: Caller) -> list[dict[str, Any]]:
    if principal.role != "citizen" or principal.citizen_id is None:
        return []
    return list(DEPENDANTS()(db.session, principal.citizen_id))


def _facilities(ids: frozenset[uuid.UUID]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = db.session.scalars(select(Facility).where(Facility.id.in_(ids))).all()
    return [
        {"id": str(row.id), "code": row.code, "name": row.name, "kind": row.kind}
        for row in sorted(rows, key=lambda facility: facility.code)
    ]


def _display_name(principal: Caller) -> str | None:
    if principal.account_id is None:
        client = db.session.get(OAuthClient, principal.client_id)
        return client.name if client is not None else None
    account = db.session.get(Account, principal.account_id)
    return display_name(session=db.session, account=account) if account is not None else None


@bp.get("/me")
def me() -> Response:
    """Any valid token: role, ids, display name, facilities, dependants."""
    principal = current_caller()
    return jsonify({
        "role": principal.role,
        "account_id": str(principal.account_id) if principal.account_id else None,
        "client_id": principal.client_id,
        "scopes": sorted(principal.scopes),
        "citizen_id": str(principal.citizen_id) if principal.citizen_id else None,
        "practitioner_id": str(principal.practitioner_id) if principal.practitioner_id else None,
        "facility_ids": sorted(str(facility) for facility in principal.facility_ids),
        "facilities": _facilities(principal.facility_ids),
        "display_name": _display_name(principal),
        "dependants": _dependants(principal),
    })
