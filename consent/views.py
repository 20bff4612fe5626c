"""JSON views of consent artefacts (one per resource; names resolved by the caller)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.access_log import FlagForReview, flag_view
from consent.consents import consent_status
from consent.guardians import ClaimView, GuardianView, end_reason
from consent.models import AccessRequest, BreakGlassSession, Consent
from core.encryption import ERASED
from registry.models import Facility, Practitioner


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _id(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def _text(value: Any) -> str | None:
    return None if value is ERASED else value


def consent_view(row: Consent, names: dict[uuid.UUID, str], now: dt.datetime) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "citizen_id": str(row.citizen_id),
        "grantee": {"type": row.grantee_type, "id": str(row.grantee_id),
                    "name": names.get(row.grantee_id)},
        "sections": list(row.sections),
        "categories": list(row.categories),
        "access": row.access,
        "purpose": row.purpose,
        "data_from": _iso(row.data_from),
        "data_until": _iso(row.data_until),
        "expires_at": _iso(row.expires_at),
        "revoked_at": _iso(row.revoked_at),
        "created_at": _iso(row.created_at),
        "status": consent_status(row, now),
        "access_request_id": _id(row.access_request_id),
    }


class Register:
    """Practitioner and facility names for a batch of rows (one query per kind)."""

    def __init__(self, session: Session, *, practitioners: Iterable[uuid.UUID | None] = (),
                 facilities: Iterable[uuid.UUID | None] = ()) -> None:
        self.practitioners = _load(session, Practitioner, practitioners)
        self.facilities = _load(session, Facility, facilities)

    def practitioner(self, practitioner_id: uuid.UUID | None) -> dict[str, Any] | None:
        item = self.practitioners.get(practitioner_id)
        if practitioner_id is None:
            return None
        return {"id": str(practitioner_id), "name": item.full_name if item else None,
                "profession": item.profession if item else None}

    def facility(self, facility_id: uuid.UUID | None) -> dict[str, Any] | None:
        item = self.facilities.get(facility_id)
        if facility_id is None:
            return None
        return {"id": str(facility_id), "name": item.name if item else None}


def _load(session: Session, model: Any, ids: Iterable[uuid.UUID | None]) -> dict[Any, Any]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {item.id: item for item in session.scalars(select(model).where(model.id.in_(wanted)))}


def access_request_view(row: AccessRequest, register: Register) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "citizen_id": str(row.citizen_id),
        "practitioner": register.practitioner(row.practitioner_id),
        "facility": register.facility(row.facility_id),
        "sections": list(row.sections),
        "categories": list(row.categories),
        "access": row.access,
        "reason": _text(row.reason),
        "status": row.status,
        "created_at": _iso(row.created_at),
        "answered_at": _iso(row.answered_at),
        "consent_id": _id(row.consent_id),
    }


def break_glass_view(row: BreakGlassSession, register: Register) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "citizen_id": str(row.citizen_id),
        "practitioner": register.practitioner(row.practitioner_id),
        "facility": register.facility(row.facility_id),
        "reason": _text(row.reason),
        "opened_at": _iso(row.opened_at),
        "expires_at": _iso(row.expires_at),
        "closed_at": _iso(row.closed_at),
        "reviewed_at": _iso(row.reviewed_at),
    }


def guardian_view(view: GuardianView) -> dict[str, Any]:
    row = view.row
    return {
        "id": str(row.id),
        "guardian": {"citizen_id": str(row.guardian_citizen_id), "full_name": view.guardian_name},
        "dependant_citizen_id": str(row.dependant_citizen_id),
        "kind": row.kind,
        "relationship": row.relationship,
        "categories": list(row.categories or ()),
        "status": view.status,
        "created_via": row.created_via,
        "valid_from": _iso(row.valid_from),
        "revoked_at": _iso(row.revoked_at),
        "end_reason": end_reason(row),
        "created_at": _iso(row.created_at),
    }


def claim_view(view: ClaimView) -> dict[str, Any]:
    """A claim to be a child's guardian: who claims, and where it stands (nothing about the
    child but their id, which the claimant gave)."""
    row = view.row
    return {
        "id": str(row.id),
        "dependant_citizen_id": str(row.dependant_citizen_id),
        "claimant": {"citizen_id": str(row.claimant_citizen_id),
                     "full_name": _text(view.claimant_name)},
        "relationship": row.relationship,
        "status": row.status,
        "created_at": _iso(row.created_at),
        "answered_at": _iso(row.answered_at),
        "guardianship_id": _id(row.guardianship_id),
    }


def flag_for_review_view(item: FlagForReview, register: Register) -> dict[str, Any]:
    """A flag as the facility reviews it: the access it is about and the person's note."""
    flag, event = item.flag, item.event
    return {
        **flag_view(flag),
        "citizen_id": str(flag.citizen_id),
        "note": _text(flag.note) if flag.note_ct is not None else None,
        "access": {
            "occurred_at": _iso(event.occurred_at),
            "action": event.action,
            "section": event.section,
            "decision": event.decision,
            "practitioner": register.practitioner(event.actor_practitioner_id),
            "facility": register.facility(event.actor_facility_id),
        },
    }
