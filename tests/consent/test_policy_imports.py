"""Issue 16: a registered facility's system appends imported entries for anyone, reads none.

The `facility-import` basis: create of `imported` entries of the importable sections, any
label, for any person, without a relationship; nothing else (no read, no correction, no
entry of another source, no other section).
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from consent.policy import decide, visible_scope
from consent.policy_types import IMPORTABLE_SECTIONS, SECTIONS, Actor, Facts, Target

HOSPITAL = uuid.uuid4()
CITIZEN = uuid.uuid4()
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
FACTS = Facts(citizen_id=CITIZEN, now=NOW, citizen_birth_date=dt.date(1970, 1, 1))
SYSTEM = Actor(role="station", facility_ids=frozenset({HOSPITAL}), client_id="hospital-his")


def _create(section: str, *, source: str | None = "imported", sensitivity: str = "normal",
            actor: Actor = SYSTEM):
    target = Target(citizen_id=CITIZEN, section=section, sensitivity=sensitivity,
                    source=source, clinical_date=dt.date(2026, 11, 20))
    return decide(actor=actor, target=target, action="create", facts=FACTS)


@pytest.mark.parametrize("section", sorted(IMPORTABLE_SECTIONS))
@pytest.mark.parametrize("sensitivity", ["normal", "hiv-sti", "mental-health"])
def test_a_facility_appends_imported_entries_for_anyone(section, sensitivity):
    decision = _create(section, sensitivity=sensitivity)
    assert decision.permit
    assert decision.rule == "facility-import"
    assert decision.purpose == "treatment"
    # Appending ties the facility to nobody: a refusal elsewhere stays "no such person".
    assert not decision.related


@pytest.mark.parametrize("section", sorted(IMPORTABLE_SECTIONS - {"immunizations"}))
@pytest.mark.parametrize("source", ["station", "clinician", None])
def test_only_imported_entries(section, source):
    decision = _create(section, source=source)
    assert not decision.permit
    assert decision.rule == "station-scope"  # as before the import basis existed


@pytest.mark.parametrize("section", sorted(SECTIONS - IMPORTABLE_SECTIONS))
def test_not_the_other_sections(section):
    assert not _create(section).permit


def test_station_doses_keep_their_own_rule():
    decision = _create("immunizations", source="station")
    assert decision.permit
    assert decision.rule == "station-immunizations"


@pytest.mark.parametrize("section", sorted(IMPORTABLE_SECTIONS - {"immunizations"}))
def test_the_facility_reads_nothing_back(section):
    target = Target(citizen_id=CITIZEN, section=section, entry_id=uuid.uuid4(),
                    source="imported", facility_id=HOSPITAL)
    assert not decide(actor=SYSTEM, target=target, action="read", facts=FACTS).permit
    scope = visible_scope(actor=SYSTEM, citizen_id=CITIZEN, section=section, facts=FACTS)
    assert not scope.permit
    assert not scope.related


@pytest.mark.parametrize("action", ["update", "entered-in-error"])
@pytest.mark.parametrize("section", sorted(IMPORTABLE_SECTIONS - {"immunizations"}))
def test_nor_corrects_what_it_imported(section, action):
    target = Target(citizen_id=CITIZEN, section=section, entry_id=uuid.uuid4(),
                    source="imported", facility_id=HOSPITAL)
    assert not decide(actor=SYSTEM, target=target, action=action, facts=FACTS).permit


@pytest.mark.parametrize("role", ["practitioner", "citizen", "admin"])
def test_other_roles_gain_nothing(role):
    actor = Actor(role=role, practitioner_id=uuid.uuid4() if role == "practitioner" else None,
                  citizen_id=uuid.uuid4() if role == "citizen" else None,
                  facility_ids=frozenset({HOSPITAL}) if role == "practitioner" else frozenset())
    assert not _create("lab-results", actor=actor).permit
