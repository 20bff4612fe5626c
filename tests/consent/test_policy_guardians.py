"""Guardians of minors and proxies of adults: age limits, teen privacy, revocation."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from consent.policy import (
    RESTRICTED_LABELS,
    SECTIONS,
    Actor,
    Facts,
    PolicySettings,
    Target,
    birthday,
    decide,
)
from tests.consent.test_policy_builders import (
    ADULT_BIRTH_DATE,
    CITIZEN,
    GUARDIAN,
    NOW,
    SECOND,
    STRANGER,
    citizen_actor,
    facts,
    guardian_actor,
    guardianship,
    local_midnight,
    target,
)

RESTRICTED = sorted(RESTRICTED_LABELS)
CHILD_BIRTH_DATE = date(2016, 3, 10)  # nine at NOW
SINCE_BIRTH = (guardianship(valid_from=local_midnight(date(2008, 2, 29))),)
TEEN_BIRTH_DATE = date(2011, 9, 1)  # thirteen at NOW

# Boundary worlds: 2 June 2025 is the 12th birthday of one child and the 16th of another.
TWELFTH = date(2013, 6, 2)
SIXTEENTH = date(2009, 6, 2)
BIRTHDAY = date(2025, 6, 2)
DAY_BEFORE = local_midnight(BIRTHDAY) - SECOND  # 23:59:59 on 1 June in Vietnam
ON_BIRTHDAY = local_midnight(BIRTHDAY)  # 00:00 on 2 June in Vietnam, still 1 June in UTC


def child(**fields: object) -> Facts:
    """A nine-year-old with GUARDIAN as guardian."""
    values: dict[str, object] = {
        "citizen_birth_date": CHILD_BIRTH_DATE,
        "guardianships": (guardianship(),),
    }
    values.update(fields)
    return facts(**values)


def proxied(**grant_fields: object) -> Facts:
    """An adult who named GUARDIAN as proxy."""
    return facts(guardianships=(guardianship(kind="proxy", **grant_fields),))


def case(
    case_id: str,
    tgt: Target,
    action: str,
    world: Facts,
    permit: bool,
    rule: str,
    *,
    actor: Actor | None = None,
    purpose: str | None = None,
) -> object:
    """One row: the guardian (unless another actor is given) asks about CITIZEN."""
    return pytest.param(
        actor or guardian_actor(), tgt, action, purpose, world, permit, rule, id=case_id
    )


GUARDIANS = [
    *[
        case(f"read-{section}", target(section), "read", child(), True, "guardian")
        for section in sorted(SECTIONS)
    ],
    *[
        case(
            f"young-child-{label}-visible",
            target(sensitivity=label),
            "read",
            child(),
            True,
            "guardian",
        )
        for label in RESTRICTED
    ],
    *[
        case(f"read-{name}", target(name), "read", child(), True, "guardian")
        for name in (
            "demographics",
            "summary",
            "immunization-schedule",
            "consents",
            "guardians",
            "access-log",
            "export",
            "family-doctor",
        )
    ],
    *[
        case(f"manage-{name}", target(name), "manage", child(), True, "guardian")
        for name in (
            "consents",
            "guardians",
            "family-doctor",
            "notification-preferences",
            "access-requests",
        )
    ],
    case(
        "reports-an-allergy",
        target("allergies", source="citizen-reported"),
        "create",
        child(),
        True,
        "guardian",
    ),
    case(
        "cannot-write-clinician-entries",
        target("allergies", source="clinician"),
        "update",
        child(),
        False,
        "self-reported-only",
    ),
    case(
        "cannot-record-diagnoses",
        target("conditions", source="citizen-reported"),
        "create",
        child(),
        False,
        "self-reported-only",
    ),
    case("no-lookup", target("identity-lookup"), "lookup", child(), False, "default-deny"),
    case("no-break-glass", target("summary"), "break-glass", child(), False, "default-deny"),
    case("guardian-purpose", target(), "read", child(), True, "guardian", purpose="guardian"),
    case(
        "self-purpose-is-the-childs",
        target(),
        "read",
        child(),
        False,
        "purpose-not-covered",
        purpose="self",
    ),
    # Teen privacy.
    *[
        case(
            f"teen-{label}-hidden",
            target(sensitivity=label),
            "read",
            child(citizen_birth_date=TEEN_BIRTH_DATE),
            False,
            "guardian-teen-privacy",
        )
        for label in RESTRICTED
    ],
    case(
        "teen-normal-visible",
        target(),
        "read",
        child(citizen_birth_date=TEEN_BIRTH_DATE),
        True,
        "guardian",
    ),
    case(
        "teen-restricted-access-log-hidden",
        target("access-log", sensitivity="hiv-sti"),
        "read",
        child(citizen_birth_date=TEEN_BIRTH_DATE),
        False,
        "guardian-teen-privacy",
    ),
    case(
        "teen-restricted-self-report-refused",
        target("history", sensitivity="substance-use", source="citizen-reported"),
        "create",
        child(citizen_birth_date=TEEN_BIRTH_DATE),
        False,
        "guardian-teen-privacy",
    ),
    case(
        "teen-shared-category",
        target(sensitivity="reproductive"),
        "read",
        child(
            citizen_birth_date=TEEN_BIRTH_DATE,
            guardianships=(guardianship(categories=frozenset({"reproductive"})),),
        ),
        True,
        "guardian",
    ),
    case(
        "teen-shared-category-is-per-category",
        target(sensitivity="mental-health"),
        "read",
        child(
            citizen_birth_date=TEEN_BIRTH_DATE,
            guardianships=(guardianship(categories=frozenset({"reproductive"})),),
        ),
        False,
        "guardian-teen-privacy",
    ),
    case(
        "day-before-12th-birthday",
        target(sensitivity="mental-health"),
        "read",
        child(citizen_birth_date=TWELFTH, now=DAY_BEFORE),
        True,
        "guardian",
    ),
    case(
        "on-12th-birthday",
        target(sensitivity="mental-health"),
        "read",
        child(citizen_birth_date=TWELFTH, now=ON_BIRTHDAY),
        False,
        "guardian-teen-privacy",
    ),
    case(
        "on-12th-birthday-normal-still-visible",
        target(),
        "read",
        child(citizen_birth_date=TWELFTH, now=ON_BIRTHDAY),
        True,
        "guardian",
    ),
    case(
        "configured-teen-age",
        target(sensitivity="mental-health"),
        "read",
        child(citizen_birth_date=TEEN_BIRTH_DATE, settings=PolicySettings(teen_privacy_age=14)),
        True,
        "guardian",
    ),
    # The age limit.
    case(
        "day-before-16th-birthday",
        target(),
        "read",
        child(citizen_birth_date=SIXTEENTH, now=DAY_BEFORE),
        True,
        "guardian",
    ),
    case(
        "on-16th-birthday",
        target(),
        "read",
        child(citizen_birth_date=SIXTEENTH, now=ON_BIRTHDAY),
        False,
        "guardian-age-limit",
    ),
    case(
        "on-16th-birthday-no-management",
        target("consents"),
        "manage",
        child(citizen_birth_date=SIXTEENTH, now=ON_BIRTHDAY),
        False,
        "guardian-age-limit",
    ),
    case(
        "adult-with-stale-minor-guardianship",
        target(),
        "read",
        child(citizen_birth_date=ADULT_BIRTH_DATE),
        False,
        "guardian-age-limit",
    ),
    case(
        "configured-age-limit",
        target(),
        "read",
        child(citizen_birth_date=date(2008, 1, 1), settings=PolicySettings(guardian_age_limit=18)),
        True,
        "guardian",
    ),
    case(
        "29-february-day-before",
        target(),
        "read",
        child(
            citizen_birth_date=date(2008, 2, 29),
            now=local_midnight(date(2023, 2, 28)) - SECOND,
            settings=PolicySettings(guardian_age_limit=15),
            guardianships=SINCE_BIRTH,
        ),
        True,
        "guardian",
    ),
    case(
        "29-february-turns-on-28-february",
        target(),
        "read",
        child(
            citizen_birth_date=date(2008, 2, 29),
            now=local_midnight(date(2023, 2, 28)),
            settings=PolicySettings(guardian_age_limit=15),
            guardianships=SINCE_BIRTH,
        ),
        False,
        "guardian-age-limit",
    ),
    case(
        "birth-date-unknown",
        target(),
        "read",
        child(citizen_birth_date=None),
        False,
        "guardian-age-unknown",
    ),
    # Validity of the guardianship itself.
    case(
        "revoked-one-second-ago",
        target(),
        "read",
        child(guardianships=(guardianship(revoked_at=NOW - SECOND),)),
        False,
        "guardian-revoked",
    ),
    case(
        "revoked-now",
        target(),
        "read",
        child(guardianships=(guardianship(revoked_at=NOW),)),
        False,
        "guardian-revoked",
    ),
    case(
        "valid-until-one-second-ahead",
        target(),
        "read",
        child(guardianships=(guardianship(valid_until=NOW + SECOND),)),
        True,
        "guardian",
    ),
    case(
        "valid-until-passed",
        target(),
        "read",
        child(guardianships=(guardianship(valid_until=NOW - SECOND),)),
        False,
        "guardian-expired",
    ),
    case(
        "not-yet-valid",
        target(),
        "read",
        child(guardianships=(guardianship(valid_from=NOW + SECOND),)),
        False,
        "guardian-not-yet-valid",
    ),
    case("no-guardianship", target(), "read", child(guardianships=()), False, "no-guardianship"),
    case(
        "someone-elses-guardianship",
        target(),
        "read",
        child(guardianships=(guardianship(guardian_citizen_id=STRANGER),)),
        False,
        "no-guardianship",
    ),
    case(
        "unknown-kind",
        target(),
        "read",
        child(guardianships=(guardianship(kind="custodian"),)),
        False,
        "no-guardianship",
    ),
    case(
        "acting-for-another-dependant",
        target(),
        "read",
        child(),
        False,
        "other-citizen",
        actor=guardian_actor(dependant=STRANGER),
    ),
    case(
        "not-acting-for-the-child",
        target(),
        "read",
        child(),
        False,
        "other-citizen",
        actor=citizen_actor(GUARDIAN),
    ),
    # Proxies of adults.
    *[
        case(f"proxy-read-{section}", target(section), "read", proxied(), True, "proxy")
        for section in sorted(SECTIONS)
    ],
    *[
        case(
            f"proxy-{label}-hidden",
            target(sensitivity=label),
            "read",
            proxied(),
            False,
            "proxy-restricted",
        )
        for label in RESTRICTED
    ],
    *[
        case(
            f"proxy-{label}-named",
            target(sensitivity=label),
            "read",
            proxied(categories=frozenset({label})),
            True,
            "proxy",
        )
        for label in RESTRICTED
    ],
    case(
        "proxy-no-age-limit",
        target(),
        "read",
        facts(citizen_birth_date=date(1931, 1, 1), guardianships=(guardianship(kind="proxy"),)),
        True,
        "proxy",
    ),
    case(
        "proxy-needs-no-birth-date",
        target(),
        "read",
        facts(citizen_birth_date=None, guardianships=(guardianship(kind="proxy"),)),
        True,
        "proxy",
    ),
    case(
        "proxy-of-a-minor-has-no-age-limit",
        target(),
        "read",
        facts(citizen_birth_date=CHILD_BIRTH_DATE, guardianships=(guardianship(kind="proxy"),)),
        True,
        "proxy",
    ),
    case("proxy-manages-consents", target("consents"), "manage", proxied(), True, "proxy"),
    case(
        "proxy-cannot-manage-guardians",
        target("guardians"),
        "manage",
        proxied(),
        False,
        "proxy-cannot-manage-guardians",
    ),
    case("proxy-reads-guardians", target("guardians"), "read", proxied(), True, "proxy"),
    case(
        "proxy-revoked",
        target(),
        "read",
        proxied(revoked_at=NOW - SECOND),
        False,
        "guardian-revoked",
    ),
    case("proxy-expired", target(), "read", proxied(valid_until=NOW), False, "guardian-expired"),
    case(
        "revoked-guardian-active-proxy",
        target(),
        "read",
        facts(guardianships=(guardianship(revoked_at=NOW - SECOND), guardianship(kind="proxy"))),
        True,
        "proxy",
    ),
]


@pytest.mark.parametrize(
    ("actor", "tgt", "action", "purpose", "world", "permit", "rule"), GUARDIANS
)
def test_guardian(actor, tgt, action, purpose, world, permit, rule) -> None:
    decision = decide(actor=actor, target=tgt, action=action, purpose=purpose, facts=world)
    assert (decision.permit, decision.rule) == (permit, rule)


def test_guardian_decision_says_on_whose_behalf() -> None:
    decision = decide(actor=guardian_actor(), target=target(), action="read", facts=child())
    assert decision.via == f"on-behalf-of:{CITIZEN}"
    assert decision.purpose == "guardian"


def test_the_age_limit_ends_access_without_any_change_to_the_data() -> None:
    world = child(citizen_birth_date=SIXTEENTH)
    ask = {"actor": guardian_actor(), "target": target(), "action": "read"}
    before = replace(world, now=DAY_BEFORE)
    after = replace(world, now=DAY_BEFORE + 2 * SECOND)
    assert decide(**ask, facts=before).permit
    assert not decide(**ask, facts=after).permit


@pytest.mark.parametrize(
    ("born", "years", "expected"),
    [
        (date(2009, 6, 2), 16, date(2025, 6, 2)),
        (date(2008, 2, 29), 16, date(2024, 2, 29)),
        (date(2008, 2, 29), 15, date(2023, 2, 28)),
        (date(2012, 2, 29), 13, date(2025, 2, 28)),
        (date(2010, 12, 31), 12, date(2022, 12, 31)),
    ],
    ids=["plain", "leap-to-leap", "leap-to-common", "teen-leap-to-common", "new-years-eve"],
)
def test_birthday(born: date, years: int, expected: date) -> None:
    assert birthday(born, years) == expected


def test_facts_refuse_a_guardianship_over_another_citizen() -> None:
    with pytest.raises(ValueError, match="another citizen"):
        facts(guardianships=(guardianship(dependant_citizen_id=STRANGER),))


def test_guardianship_requires_aware_datetimes() -> None:
    with pytest.raises(ValueError, match="valid_from"):
        guardianship(valid_from=NOW.replace(tzinfo=None))


def test_boundary_moments_are_local_midnight() -> None:
    assert ON_BIRTHDAY.date() == BIRTHDAY - timedelta(days=1)  # UTC still says 1 June
    assert ON_BIRTHDAY - DAY_BEFORE == SECOND
