"""The policy's promise that standing decisions rest on (consent.standing): a practitioner's
read is decided by her relationships to the person alone (family doctor, consents,
break-glass sessions), never by who the person is, their age, or their guardians; so one
decision holds for everyone with the same relationships. Citizens' decisions do depend on
the person (their own record, a child's age)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from consent.policy import decide, decides_on_the_person, visible_scope
from consent.policy_types import SECTIONS, Actor, Facts, FamilyDoctor, Guardianship, Target

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
DOCTOR = uuid.uuid4()
STATION = uuid.uuid4()
ELSEWHERE = uuid.uuid4()
BIRTH_DATES = (None, dt.date(2026, 10, 1), dt.date(2013, 12, 8), dt.date(2013, 12, 7),
               dt.date(2008, 6, 1), dt.date(1961, 3, 14))


def _people(family_doctor: FamilyDoctor | None) -> list[Facts]:
    people = []
    for born in BIRTH_DATES:
        citizen = uuid.uuid4()
        people.append(Facts(citizen_id=citizen, now=NOW, citizen_birth_date=born,
                            family_doctor=family_doctor))
        people.append(Facts(citizen_id=citizen, now=NOW, citizen_birth_date=born,
                            family_doctor=family_doctor, guardianships=(Guardianship(
                                guardian_citizen_id=uuid.uuid4(), dependant_citizen_id=citizen,
                                kind="minor", valid_from=NOW - dt.timedelta(days=400)),)))
    return people


@pytest.mark.parametrize("family_doctor", [
    FamilyDoctor(practitioner_id=DOCTOR, facility_id=STATION),
    FamilyDoctor(practitioner_id=DOCTOR, facility_id=ELSEWHERE),  # membership lapsed
    FamilyDoctor(practitioner_id=uuid.uuid4(), facility_id=STATION),  # another's patient
    None,
])
def test_a_practitioners_read_is_the_same_for_every_person_with_the_same_relationships(
        family_doctor):
    doctor = Actor(role="practitioner", practitioner_id=DOCTOR, facility_ids={STATION})
    assert not decides_on_the_person(doctor)
    for section in sorted(SECTIONS):
        scopes, decisions = set(), set()
        for facts in _people(family_doctor):
            scope = visible_scope(actor=doctor, citizen_id=facts.citizen_id, section=section,
                                  facts=facts)
            scopes.add(scope)
            # A view's own decision (a summary's), asked of the section as a whole.
            decisions.add(decide(actor=doctor, action="read", facts=facts,
                                 target=Target(citizen_id=facts.citizen_id, section=section)))
        assert len(scopes) == 1, (section, scopes)
        assert len(decisions) == 1, (section, decisions)


@pytest.mark.parametrize("role", ["citizen", "station", "admin"])
def test_every_other_role_is_decided_per_person(role):
    actor = Actor(role=role, citizen_id=uuid.uuid4() if role == "citizen" else None,
                  facility_ids={STATION} if role == "station" else frozenset())
    assert decides_on_the_person(actor)
