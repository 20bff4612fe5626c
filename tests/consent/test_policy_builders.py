"""Shared builders for the consent policy tests (holds no tests of its own)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from consent.policy import (
    Actor,
    BreakGlass,
    Facts,
    FamilyDoctor,
    Grant,
    Guardianship,
    Target,
)

NOW = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)

CITIZEN = UUID(int=1)
GUARDIAN = UUID(int=2)
STRANGER = UUID(int=3)
FAMILY_DOCTOR = UUID(int=10)
OTHER_DOCTOR = UUID(int=11)
COMMUNE_STATION = UUID(int=20)
HOSPITAL = UUID(int=21)
OTHER_CLINIC = UUID(int=22)
CONSENT_ID = UUID(int=100)
BREAK_GLASS_ID = UUID(int=200)
ENTRY = UUID(int=300)

ADULT_BIRTH_DATE = date(1980, 5, 17)


def citizen_actor(citizen_id: UUID = CITIZEN, acting_for: UUID | None = None) -> Actor:
    """A citizen acting for themselves (or, with acting_for, for a dependant)."""
    return Actor(role="citizen", citizen_id=citizen_id, acting_for=acting_for)


def guardian_actor(dependant: UUID = CITIZEN) -> Actor:
    """The guardian citizen acting for the dependant."""
    return Actor(role="citizen", citizen_id=GUARDIAN, acting_for=dependant)


def family_doctor_actor() -> Actor:
    """The citizen's family doctor, member of the commune station."""
    return Actor(
        role="practitioner",
        practitioner_id=FAMILY_DOCTOR,
        facility_ids=frozenset({COMMUNE_STATION}),
    )


def other_doctor_actor(facilities: frozenset[UUID] = frozenset({HOSPITAL})) -> Actor:
    """An unrelated practitioner at the district hospital."""
    return Actor(role="practitioner", practitioner_id=OTHER_DOCTOR, facility_ids=facilities)


def station_actor() -> Actor:
    """The commune station's system client."""
    return Actor(role="station", facility_ids=frozenset({COMMUNE_STATION}))


def admin_actor() -> Actor:
    """An operations administrator."""
    return Actor(role="admin")


def target(section: str = "conditions", **fields: object) -> Target:
    """A target in the citizen's record."""
    return Target(citizen_id=CITIZEN, section=section, **fields)


def facts(**fields: object) -> Facts:
    """Facts about an adult citizen registered with FAMILY_DOCTOR, at NOW."""
    values: dict[str, object] = {
        "citizen_id": CITIZEN,
        "now": NOW,
        "citizen_birth_date": ADULT_BIRTH_DATE,
        "family_doctor": FamilyDoctor(practitioner_id=FAMILY_DOCTOR, facility_id=COMMUNE_STATION),
    }
    values.update(fields)
    return Facts(**values)


def grant(**fields: object) -> Grant:
    """A read consent for conditions to OTHER_DOCTOR, created a day before NOW."""
    values: dict[str, object] = {
        "id": CONSENT_ID,
        "citizen_id": CITIZEN,
        "grantee_type": "practitioner",
        "grantee_id": OTHER_DOCTOR,
        "sections": frozenset({"conditions"}),
        "created_at": NOW - timedelta(days=1),
    }
    values.update(fields)
    return Grant(**values)


def break_glass(**fields: object) -> BreakGlass:
    """A four-hour break-glass session of OTHER_DOCTOR opened an hour before NOW."""
    opened = NOW - timedelta(hours=1)
    values: dict[str, object] = {
        "id": BREAK_GLASS_ID,
        "citizen_id": CITIZEN,
        "practitioner_id": OTHER_DOCTOR,
        "opened_at": opened,
        "expires_at": opened + timedelta(hours=4),
        "reason": "unconscious after a road accident",
    }
    values.update(fields)
    return BreakGlass(**values)


def guardianship(**fields: object) -> Guardianship:
    """GUARDIAN is guardian of the minor CITIZEN since a year before NOW."""
    values: dict[str, object] = {
        "guardian_citizen_id": GUARDIAN,
        "dependant_citizen_id": CITIZEN,
        "kind": "minor",
        "valid_from": NOW - timedelta(days=365),
    }
    values.update(fields)
    return Guardianship(**values)


def local_midnight(day: date) -> datetime:
    """Midnight of `day` in Vietnam, expressed in UTC (17:00 the previous day)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=7)
