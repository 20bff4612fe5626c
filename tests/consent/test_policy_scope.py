"""visible_scope: the SQL-shaped answer for list queries, and its agreement with decide."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from uuid import UUID

import pytest

from consent.policy import (
    PURPOSES,
    RESTRICTED_LABELS,
    SENSITIVITY_LABELS,
    Actor,
    Decision,
    Facts,
    FamilyDoctor,
    PolicySettings,
    Scope,
    ScopeClause,
    decide,
    visible_scope,
)
from consent.policy_types import ACTIONS_BY_TARGET, GRANTABLE_TARGETS, TARGETS
from tests.consent.test_policy_builders import (
    CITIZEN,
    COMMUNE_STATION,
    CONSENT_ID,
    FAMILY_DOCTOR,
    GUARDIAN,
    HOSPITAL,
    NOW,
    OTHER_CLINIC,
    OTHER_DOCTOR,
    SECOND,
    STRANGER,
    admin_actor,
    break_glass,
    citizen_actor,
    facts,
    family_doctor_actor,
    grant,
    guardian_actor,
    guardianship,
    other_doctor_actor,
    station_actor,
    target,
)

Y2020 = {"data_from": date(2020, 1, 1), "data_until": date(2020, 12, 31)}
MENTAL_HEALTH_2020 = grant(
    grantee_id=FAMILY_DOCTOR, categories=frozenset({"mental-health"}), **Y2020
)


def scope(actor: Actor, world: Facts, section: str = "conditions", **kw: object) -> Scope:
    """The actor's scope over CITIZEN's section."""
    return visible_scope(actor=actor, citizen_id=CITIZEN, section=section, facts=world, **kw)


def test_self_sees_every_label_and_date() -> None:
    result = scope(citizen_actor(), facts())
    assert (result.permit, result.rule) == (True, "self")
    assert result.labels == SENSITIVITY_LABELS
    assert [c.all_dates for c in result.clauses] == [True]
    assert result.permits("genetic", None)


def test_family_doctor_sees_normal_entries_only() -> None:
    result = scope(family_doctor_actor(), facts())
    assert (result.permit, result.rule) == (True, "family-doctor")
    assert result.labels == {"normal"}
    assert not result.permits("mental-health", date(2020, 5, 1))


def test_clauses_are_a_union_not_a_product() -> None:
    result = scope(family_doctor_actor(), facts(consents=(MENTAL_HEALTH_2020,)))
    assert [(c.rule, c.labels, c.data_from, c.data_until) for c in result.clauses] == [
        ("family-doctor", frozenset({"normal"}), None, None),
        (f"consent:{CONSENT_ID}", frozenset({"normal", "mental-health"}), *Y2020.values()),
    ]
    assert result.permits("normal", date(2023, 1, 1))
    assert result.permits("mental-health", date(2020, 5, 1))
    assert not result.permits("mental-health", date(2023, 1, 1))
    assert not result.permits("mental-health", None)
    assert result.match("mental-health", date(2020, 5, 1)).consent_id == CONSENT_ID


def test_clauses_shown_by_an_earlier_clause_are_dropped() -> None:
    wide = grant(id=UUID(int=101), categories=frozenset({"mental-health"}))
    narrow = grant(id=UUID(int=102), **Y2020)
    assert len(scope(other_doctor_actor(), facts(consents=(wide, narrow))).clauses) == 1
    # The other way round the narrow one decides first for its dates, so both stay.
    assert len(scope(other_doctor_actor(), facts(consents=(narrow, wide))).clauses) == 2


def test_data_period_bounds_are_inclusive() -> None:
    result = scope(other_doctor_actor(), facts(consents=(grant(**Y2020),)))
    assert result.permits("normal", date(2020, 1, 1))
    assert result.permits("normal", date(2020, 12, 31))
    assert not result.permits("normal", date(2019, 12, 31))
    assert not result.permits("normal", date(2021, 1, 1))


@pytest.mark.parametrize(
    ("actor", "section", "world", "permit", "rule"),
    [
        pytest.param(
            station_actor(),
            "immunizations",
            facts(),
            True,
            "station-immunizations",
            id="station-immunizations",
        ),
        pytest.param(
            station_actor(), "conditions", facts(), False, "station-scope", id="station-conditions"
        ),
        pytest.param(
            admin_actor(), "immunizations", facts(), False, "admin-no-clinical", id="admin"
        ),
        pytest.param(
            other_doctor_actor(),
            "conditions",
            facts(),
            False,
            "default-deny",
            id="unrelated-practitioner",
        ),
        pytest.param(
            other_doctor_actor(),
            "conditions",
            facts(consents=(grant(expires_at=NOW - SECOND),)),
            False,
            "consent-expired",
            id="expired-consent",
        ),
        pytest.param(
            other_doctor_actor(),
            "conditions",
            facts(break_glass=(break_glass(closed_at=NOW - SECOND),)),
            False,
            "break-glass-closed",
            id="closed-break-glass",
        ),
        pytest.param(
            citizen_actor(), "billing", facts(), False, "unknown-section", id="unknown-section"
        ),
        pytest.param(
            citizen_actor(STRANGER),
            "conditions",
            facts(),
            False,
            "other-citizen",
            id="other-citizen",
        ),
        pytest.param(
            guardian_actor(), "conditions", facts(), False, "no-guardianship", id="no-guardianship"
        ),
        pytest.param(
            citizen_actor(),
            "identity-lookup",
            facts(),
            False,
            "action-not-applicable",
            id="lookup-is-not-a-list",
        ),
    ],
)
def test_section_level_answers(
    actor: Actor, section: str, world: Facts, permit: bool, rule: str
) -> None:
    result = scope(actor, world, section)
    assert (result.permit, result.rule) == (permit, rule)
    assert bool(result.clauses) == permit


def test_teen_privacy_narrows_the_guardians_labels() -> None:
    world = facts(citizen_birth_date=date(2011, 9, 1), guardianships=(guardianship(),))
    assert scope(guardian_actor(), world).labels == {"normal"}


def test_purpose_selects_the_bases() -> None:
    world = facts(break_glass=(break_glass(practitioner_id=FAMILY_DOCTOR),))
    emergency = scope(family_doctor_actor(), world, purpose="emergency")
    assert [c.rule for c in emergency.clauses] == ["break-glass"]
    assert emergency.clauses[0].purpose == "emergency"
    default = scope(family_doctor_actor(), world)
    assert [c.rule for c in default.clauses] == ["family-doctor"]  # break-glass adds nothing


def test_scope_is_for_reads_only() -> None:
    with pytest.raises(ValueError, match="read only"):
        scope(family_doctor_actor(), facts(), action="create")


def test_scope_refuses_facts_of_another_citizen() -> None:
    with pytest.raises(ValueError, match="another citizen"):
        visible_scope(
            actor=citizen_actor(), citizen_id=STRANGER, section="conditions", facts=facts()
        )


# --- the agreement property -------------------------------------------------------------------

THIRD_DOCTOR = UUID(int=12)
ACTORS = [
    citizen_actor(),
    citizen_actor(STRANGER),
    guardian_actor(),
    Actor(role="citizen", citizen_id=GUARDIAN),
    family_doctor_actor(),
    Actor(role="practitioner", practitioner_id=FAMILY_DOCTOR),  # left the commune station
    other_doctor_actor(),
    other_doctor_actor(frozenset({HOSPITAL, OTHER_CLINIC})),
    Actor(role="practitioner", practitioner_id=THIRD_DOCTOR, facility_ids=frozenset({HOSPITAL})),
    station_actor(),
    admin_actor(),
]
READ_TARGETS = sorted(t for t in TARGETS if "read" in ACTIONS_BY_TARGET[t])
ENTRY_DATES = [None, date(2019, 6, 1), date(2020, 6, 15), date(2024, 1, 1)]
LABELS = sorted(SENSITIVITY_LABELS)


def _maybe_period(rng: random.Random) -> dict[str, date | None]:
    """No period, or one with either or both ends set."""
    start = rng.choice([None, date(2019, 1, 1), date(2020, 1, 1), date(2021, 1, 1)])
    end = rng.choice([None, date(2020, 12, 31), date(2023, 6, 30)])
    return {"data_from": start, "data_until": end}


def _moment(rng: random.Random) -> object:
    """None or a time around NOW."""
    return rng.choice([None, NOW - SECOND, NOW, NOW + SECOND, NOW - timedelta(days=3)])


def random_world(rng: random.Random) -> Facts:
    """A citizen with a random mix of relationships, grants and sessions."""
    consents = tuple(
        grant(
            id=UUID(int=1000 + i),
            grantee_type=rng.choice(["practitioner", "facility"]),
            grantee_id=rng.choice([OTHER_DOCTOR, FAMILY_DOCTOR, THIRD_DOCTOR, HOSPITAL]),
            sections=frozenset(rng.sample(sorted(GRANTABLE_TARGETS | {"access-log"}), 4)),
            categories=frozenset(rng.sample(sorted(RESTRICTED_LABELS), rng.randint(0, 2))),
            access=rng.choice(["read", "read-write", "bogus"]),
            purpose=rng.choice(["treatment", "treatment", "emergency"]),
            created_at=rng.choice([NOW - timedelta(days=9), NOW + SECOND]),
            expires_at=_moment(rng),
            revoked_at=rng.choice([None, None, NOW - SECOND]),
            **_maybe_period(rng),
        )
        for i in range(rng.randint(0, 3))
    )
    guardianships = tuple(
        guardianship(
            kind=rng.choice(["minor", "proxy"]),
            revoked_at=rng.choice([None, None, NOW]),
            valid_until=rng.choice([None, None, NOW + SECOND, NOW - SECOND]),
            categories=frozenset(rng.sample(sorted(RESTRICTED_LABELS), rng.randint(0, 1))),
        )
        for _ in range(rng.randint(0, 2))
    )
    sessions = tuple(
        break_glass(
            id=UUID(int=2000 + i),
            practitioner_id=rng.choice([OTHER_DOCTOR, FAMILY_DOCTOR]),
            opened_at=NOW - timedelta(hours=rng.choice([0, 1, 5])),
            expires_at=NOW + timedelta(hours=rng.choice([-1, 3])),
            reason=rng.choice(["cardiac arrest", " "]),
        )
        for i in range(rng.randint(0, 2))
    )
    return facts(
        citizen_birth_date=rng.choice(
            [None, date(1950, 2, 3), date(2011, 9, 1), date(2016, 3, 10), date(2009, 6, 2)]
        ),
        family_doctor=rng.choice(
            [
                None,
                FamilyDoctor(FAMILY_DOCTOR, COMMUNE_STATION),
                FamilyDoctor(OTHER_DOCTOR, HOSPITAL),
            ]
        ),
        consents=consents,
        guardianships=guardianships,
        break_glass=sessions,
        settings=rng.choice([PolicySettings(), PolicySettings(break_glass_hours=2)]),
        catchment=rng.choice([frozenset(), frozenset({COMMUNE_STATION}), frozenset({HOSPITAL})]),
    )


def _assert_agree(decision: Decision, clause: ScopeClause | None, result: Scope) -> None:
    """An entry is permitted iff a clause shows it, and then for the same rule and purpose."""
    assert decision.permit == (clause is not None)
    if clause is not None:
        assert result.permit
        assert (decision.rule, decision.purpose, decision.consent_id, decision.via) == (
            clause.rule,
            clause.purpose,
            clause.consent_id,
            clause.via,
        )


def test_decide_and_visible_scope_agree_on_every_entry() -> None:
    rng = random.Random(5316)
    permits_by_rule: Counter[str] = Counter()
    checked = 0
    for _ in range(50):
        world = random_world(rng)
        for actor in ACTORS:
            for section in rng.sample(READ_TARGETS, 4):
                for purpose in (None, *rng.sample(sorted(PURPOSES), 2)):
                    result = scope(actor, world, section, purpose=purpose)
                    relations: set[bool] = set()
                    for label in LABELS:
                        for day in ENTRY_DATES:
                            entry = target(section, sensitivity=label, clinical_date=day)
                            decision = decide(
                                actor=actor,
                                target=entry,
                                action="read",
                                purpose=purpose,
                                facts=world,
                            )
                            checked += 1
                            _assert_agree(decision, result.match(label, day), result)
                            if decision.permit:
                                permits_by_rule[decision.rule.split(":")[0]] += 1
                            else:
                                relations.add(decision.related)
                    # Whether the actor is related does not depend on the entry asked for.
                    assert relations <= {result.related}, (actor, section)
    assert checked > 50_000
    # The worlds must exercise every kind of basis, or the agreement proves little.
    assert {
        "self",
        "guardian",
        "proxy",
        "family-doctor",
        "consent",
        "break-glass",
        "station-immunizations",
        "station-registry",
    } <= set(permits_by_rule)
