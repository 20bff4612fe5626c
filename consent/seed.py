"""Demo data of the consent layer: the parent is guardian of the infant, and the district
hospital's doctor has asked the chronic patient for access (pending, for the phone to answer)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from consent.models import REQUEST_PENDING, AccessRequest, Guardianship
from core.db import db, utcnow

DEMO_REQUEST_REASON = "Khám chuyên khoa tim mạch theo giấy chuyển tuyến của trạm y tế"


def _by_role(items: list[dict[str, Any]], role: str) -> uuid.UUID | None:
    for item in items:
        if item.get("demo_role") == role:
            return uuid.UUID(item["id"])
    return None


def seed_consent_demo(identities: dict[str, Any]) -> int:
    """Create what is missing; return how many rows were new (0 on a re-run)."""
    session = db.session
    created = 0
    parent = _by_role(identities.get("citizens", []), "parent")
    infant = _by_role(identities.get("citizens", []), "infant")
    adult = _by_role(identities.get("citizens", []), "adult-chronic")
    other_doctor = _by_role(identities.get("practitioners", []), "other-doctor")
    now = utcnow()
    if parent and infant and session.scalars(select(Guardianship.id).where(
        Guardianship.guardian_citizen_id == parent, Guardianship.dependant_citizen_id == infant,
        Guardianship.revoked_at.is_(None),
    )).first() is None:
        session.add(Guardianship(
            id=uuid.uuid4(), guardian_citizen_id=parent, dependant_citizen_id=infant,
            kind="minor", relationship="mother", categories=[], valid_from=now,
            created_via="seed", created_at=now,
        ))
        created += 1
    if adult and other_doctor and session.scalars(select(AccessRequest.id).where(
        AccessRequest.citizen_id == adult, AccessRequest.practitioner_id == other_doctor,
    )).first() is None:
        facility = _facility_of(identities, other_doctor)
        session.add(AccessRequest(
            id=uuid.uuid4(), citizen_id=adult, practitioner_id=other_doctor,
            facility_id=facility, sections=["conditions", "medications", "observations"],
            categories=[], access="read", status=REQUEST_PENDING, created_at=now,
            reason=DEMO_REQUEST_REASON,
        ))
        created += 1
    session.commit()
    return created


def _facility_of(identities: dict[str, Any], practitioner_id: uuid.UUID) -> uuid.UUID | None:
    from registry.models import PractitionerMembership

    return db.session.scalars(select(PractitionerMembership.facility_id).where(
        PractitionerMembership.practitioner_id == practitioner_id,
        PractitionerMembership.ended_on.is_(None),
    )).first()
