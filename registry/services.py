"""Registry services: citizens, facilities, practitioners and family-doctor assignment.

Service functions take plain arguments and a session; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.encryption import compute_blind_index
from registry.models import (
    Citizen,
    Facility,
    FamilyDoctorAssignment,
    Practitioner,
    PractitionerMembership,
)
from registry.reference.admin_units import current_codes
from registry.reference.text import fold

SEARCH_NAME_LENGTH = 255


# The directory matches folded names (registry/directory.py): keep the folded form beside the
# name whenever a name is set, by whichever code sets it (creation, a rename, an import).
@event.listens_for(Practitioner.full_name, "set")
def _practitioner_search_name(target: Practitioner, value: Any, *_: Any) -> None:
    target.search_name = fold(value or "")[:SEARCH_NAME_LENGTH] if value else None


@event.listens_for(Facility.name, "set")
def _facility_search_name(target: Facility, value: Any, *_: Any) -> None:
    target.search_name = fold(value or "")[:SEARCH_NAME_LENGTH] if value else None


def current_address(address: dict[str, Any] | None) -> dict[str, Any] | None:
    """An address with its units in current codes (AdminUnitError, a ValueError, when they name
    none); the district, gone since 1 July 2025, is dropped, its presence marking old codes."""
    if not address or not (address.get("province_code") or address.get("commune_code")):
        return address
    result = dict(address)
    legacy = bool(result.pop("district_code", None))
    province, commune = current_codes(province_code=result.get("province_code"),
                                      commune_code=result.get("commune_code"), legacy=legacy)
    result["province_code"] = province
    if commune is not None:
        result["commune_code"] = commune
    return result


def find_citizen_by_health_id(*, session: Session, health_id: str) -> Citizen | None:
    """Exact lookup through the blind index; the health ID itself is never queried in clear."""
    value = health_id.strip()
    if not value:
        return None
    index = compute_blind_index("health_id", value)
    return session.scalars(select(Citizen).where(Citizen.health_id_bidx == index)).one_or_none()


def register_citizen(
    *,
    session: Session,
    health_id: str,
    full_name: str,
    date_of_birth: dt.date,
    sex: str,
    phone: str | None = None,
    email: str | None = None,
    address: dict[str, Any] | None = None,
    ethnicity: str | None = None,
    social_insurance_code: str | None = None,
    preferred_language: str = "vi",
    registered_by_facility_id: uuid.UUID | None = None,
    citizen_id: uuid.UUID | None = None,
) -> Citizen:
    """Create a citizen; every personal field is encrypted under a new data key of theirs."""
    citizen = Citizen(
        id=citizen_id or uuid.uuid4(),
        preferred_language=preferred_language,
        registered_by_facility_id=registered_by_facility_id,
        status="active",
        version=1,
    )
    citizen.health_id = health_id
    citizen.full_name = full_name
    citizen.date_of_birth = date_of_birth
    citizen.sex = sex
    citizen.phone = phone
    citizen.email = email
    citizen.address = current_address(address)
    citizen.ethnicity = ethnicity
    citizen.social_insurance_code = social_insurance_code
    session.add(citizen)
    return citizen


def get_facility_by_code(*, session: Session, code: str) -> Facility | None:
    return session.scalars(select(Facility).where(Facility.code == code)).one_or_none()


def create_facility(
    *,
    session: Session,
    code: str,
    kind: str,
    name: str,
    province_code: str,
    district_code: str | None = None,
    commune_code: str | None = None,
) -> Facility:
    """A facility located in current units: old codes are mapped, unmappable ones raise
    AdminUnitError (a ValueError). A district code only marks old codes: districts no longer
    exist, so none is stored."""
    province, commune = current_codes(province_code=province_code, commune_code=commune_code,
                                      legacy=bool(district_code))
    facility = Facility(
        id=uuid.uuid4(), code=code, kind=kind, name=name, province_code=province,
        district_code="", commune_code=commune, active=True,
    )
    session.add(facility)
    return facility


def get_practitioner_by_certificate(*, session: Session, certificate: str) -> Practitioner | None:
    return session.scalars(
        select(Practitioner).where(Practitioner.practising_certificate == certificate)
    ).one_or_none()


def create_practitioner(
    *,
    session: Session,
    full_name: str,
    practising_certificate: str,
    profession: str,
    facility: Facility,
    title: str | None = None,
    started_on: dt.date | None = None,
) -> Practitioner:
    practitioner = Practitioner(
        id=uuid.uuid4(), full_name=full_name, practising_certificate=practising_certificate,
        profession=profession, active=True,
    )
    session.add(practitioner)
    session.add(
        PractitionerMembership(
            id=uuid.uuid4(), practitioner=practitioner, facility_id=facility.id, title=title,
            started_on=started_on or utcnow().date(),
        )
    )
    return practitioner


def active_family_doctor(
    *, session: Session, citizen_id: uuid.UUID
) -> FamilyDoctorAssignment | None:
    return session.scalars(
        select(FamilyDoctorAssignment).where(
            FamilyDoctorAssignment.citizen_id == citizen_id,
            FamilyDoctorAssignment.ended_at.is_(None),
        )
    ).one_or_none()


# Who may be a family doctor (DESIGN.md §2): a doctor or a physician assistant.
FAMILY_DOCTOR_PROFESSIONS = ("doctor", "physician-assistant")


def family_doctor_membership(
    *, session: Session, practitioner_id: uuid.UUID, facility_id: uuid.UUID
) -> PractitionerMembership | None:
    """The practitioner's current membership of the facility when they may be a family doctor
    there (an active doctor or physician assistant), else None."""
    membership = session.scalars(select(PractitionerMembership).where(
        PractitionerMembership.practitioner_id == practitioner_id,
        PractitionerMembership.facility_id == facility_id,
        PractitionerMembership.ended_on.is_(None),
    )).first()
    if membership is None:
        return None
    practitioner = membership.practitioner
    if not practitioner.active or practitioner.profession not in FAMILY_DOCTOR_PROFESSIONS:
        return None
    return membership


def assign_family_doctor(
    *,
    session: Session,
    citizen_id: uuid.UUID,
    practitioner_id: uuid.UUID,
    facility_id: uuid.UUID,
    changed_by: str,
    now: dt.datetime | None = None,
) -> FamilyDoctorAssignment:
    """Register the citizen with a family doctor, ending the previous assignment (history kept)."""
    now = now or utcnow()
    current = active_family_doctor(session=session, citizen_id=citizen_id)
    if current is not None:
        if current.practitioner_id == practitioner_id and current.facility_id == facility_id:
            return current
        current.ended_at = now
        current.end_reason = "replaced"
        session.flush()
    assignment = FamilyDoctorAssignment(
        id=uuid.uuid4(), citizen_id=citizen_id, practitioner_id=practitioner_id,
        facility_id=facility_id, started_at=now, changed_by=changed_by,
    )
    session.add(assignment)
    return assignment


def family_doctor_history(
    *, session: Session, citizen_id: uuid.UUID
) -> list[FamilyDoctorAssignment]:
    return list(
        session.scalars(
            select(FamilyDoctorAssignment)
            .where(FamilyDoctorAssignment.citizen_id == citizen_id)
            .order_by(FamilyDoctorAssignment.started_at.desc())
        )
    )
