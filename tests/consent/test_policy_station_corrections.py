"""A station corrects or retracts only the doses its own facility recorded."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from consent.policy import decide
from consent.policy_types import Actor, Facts, Target

STATION = uuid.uuid4()
OTHER_STATION = uuid.uuid4()
CITIZEN = uuid.uuid4()
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


def _decide(action: str, *, facility: uuid.UUID, source: str, section: str = "immunizations",
            sensitivity: str = "normal"):
    actor = Actor(role="station", facility_ids=frozenset({STATION}))
    target = Target(citizen_id=CITIZEN, section=section, entry_id=uuid.uuid4(),
                    sensitivity=sensitivity, source=source, facility_id=facility)
    return decide(actor=actor, target=target, action=action,
                  facts=Facts(citizen_id=CITIZEN, now=NOW))


@pytest.mark.parametrize("action", ["update", "entered-in-error"])
def test_station_corrects_its_own_dose(action):
    decision = _decide(action, facility=STATION, source="station")
    assert decision.permit
    assert decision.rule == "station-own-entry"


@pytest.mark.parametrize(
    ("facility", "source", "section"),
    [
        (OTHER_STATION, "station", "immunizations"),  # another station's dose
        (STATION, "clinician", "immunizations"),  # a doctor's entry at the same facility
        (STATION, "station", "allergies"),  # not an immunization
    ],
)
@pytest.mark.parametrize("action", ["update", "entered-in-error"])
def test_station_cannot_touch_what_it_did_not_record(facility, source, section, action):
    assert not _decide(action, facility=facility, source=source, section=section).permit
