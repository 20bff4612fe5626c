"""Every rule of DESIGN.md §5 as a table: actor, target, action, purpose, facts -> decision."""

from __future__ import annotations

import ast
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest

from consent.policy import (
    ACTIONS,
    CITIZEN_REPORTABLE_SECTIONS,
    NON_CLINICAL_TARGETS,
    RESTRICTED_LABELS,
    SECTIONS,
    SENSITIVITY_LABELS,
    TARGETS,
    Actor,
    Facts,
    FamilyDoctor,
    PolicySettings,
    Target,
    decide,
    open_break_glass,
)
from consent.policy_types import ACTIONS_BY_TARGET
from tests.consent.test_policy_builders import (
    BREAK_GLASS_ID,
    CITIZEN,
    COMMUNE_STATION,
    CONSENT_ID,
    ENTRY,
    FAMILY_DOCTOR,
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
    other_doctor_actor,
    station_actor,
    target,
)

CLINICAL = sorted(SECTIONS)
RESTRICTED = sorted(RESTRICTED_LABELS)
WRITES = ("create", "update", "entered-in-error")
CONSENT_RULE = f"consent:{CONSENT_ID}"
THIRD_DOCTOR = Actor(role="practitioner", practitioner_id=UUID(int=12))
SECOND_CONSENT_ID = UUID(int=101)
MINOR_BIRTH_DATE = date(2012, 1, 1)


def case(
    case_id: str,
    actor: Actor,
    tgt: Target,
    action: str,
    permit: bool,
    rule: str,
    *,
    purpose: str | None = None,
    world: Facts | None = None,
) -> object:
    """One row of a decision table."""
    return pytest.param(actor, tgt, action, purpose, world or facts(), permit, rule, id=case_id)


def check(
    actor: Actor,
    tgt: Target,
    action: str,
    purpose: str | None,
    world: Facts,
    permit: bool,
    rule: str,
) -> None:
    """Assert the decision and its rule."""
    decision = decide(actor=actor, target=tgt, action=action, purpose=purpose, facts=world)
    assert (decision.permit, decision.rule) == (permit, rule)


TABLE_ARGS = ("actor", "tgt", "action", "purpose", "world", "permit", "rule")


# --- deny by default ----------------------------------------------------------------------

MALFORMED = [
    case("unknown-role", Actor(role="superuser"), target(), "read", False, "unknown-role"),
    case("empty-role", Actor(role=""), target(), "read", False, "unknown-role"),
    case(
        "unknown-section",
        citizen_actor(),
        target("billing"),
        "read",
        False,
        "unknown-section",
    ),
    case("unknown-action", citizen_actor(), target(), "delete", False, "unknown-action"),
    case(
        "lookup-on-a-section",
        station_actor(),
        target("immunizations"),
        "lookup",
        False,
        "action-not-applicable",
    ),
    case(
        "manage-on-a-section",
        citizen_actor(),
        target("allergies"),
        "manage",
        False,
        "action-not-applicable",
    ),
    case(
        "unknown-sensitivity",
        citizen_actor(),
        target(sensitivity="secret"),
        "read",
        False,
        "unknown-sensitivity",
    ),
    case(
        "unknown-purpose",
        citizen_actor(),
        target(),
        "read",
        False,
        "unknown-purpose",
        purpose="marketing",
    ),
    case(
        "practitioner-without-id",
        Actor(role="practitioner", facility_ids=frozenset({HOSPITAL})),
        target(),
        "read",
        False,
        "invalid-actor",
    ),
    case("citizen-without-id", Actor(role="citizen"), target(), "read", False, "invalid-actor"),
    case(
        "station-without-facility",
        Actor(role="station"),
        target("immunizations"),
        "read",
        False,
        "invalid-actor",
    ),
    case("unrelated-practitioner", other_doctor_actor(), target(), "read", False, "default-deny"),
]


@pytest.mark.parametrize(TABLE_ARGS, MALFORMED)
def test_deny_by_default(actor, tgt, action, purpose, world, permit, rule) -> None:
    check(actor, tgt, action, purpose, world, permit, rule)


@pytest.mark.parametrize("role", ["superuser", "Citizen", "system", "guardian"])
@pytest.mark.parametrize("section", sorted(TARGETS))
def test_unknown_roles_never_get_anything(role: str, section: str) -> None:
    actor = Actor(
        role=role,
        citizen_id=CITIZEN,
        practitioner_id=FAMILY_DOCTOR,
        facility_ids=frozenset({COMMUNE_STATION}),
    )
    for action in ACTIONS_BY_TARGET[section]:
        decision = decide(actor=actor, target=target(section), action=action, facts=facts())
        assert (decision.permit, decision.rule) == (False, "unknown-role")


# --- the citizen on their own record -------------------------------------------------------

CARE_LISTS = ("care-panel", "immunization-worklist")
SELF = [
    *[
        case(
            f"read-{section}-{label}",
            citizen_actor(),
            target(section, sensitivity=label),
            "read",
            True,
            "self",
        )
        for section in CLINICAL
        for label in sorted(SENSITIVITY_LABELS)
    ],
    *[
        case(f"read-{name}", citizen_actor(), target(name), "read", True, "self")
        for name in sorted(NON_CLINICAL_TARGETS - {"identity-lookup", *CARE_LISTS})
    ],
    # A care list is a clinician's or a station's view over many people, never one's own.
    *[
        case(f"no-own-{name}", citizen_actor(), target(name), "read", False, "default-deny")
        for name in CARE_LISTS
    ],
    *[
        case(f"manage-{name}", citizen_actor(), target(name), "manage", True, "self")
        for name in (
            "consents",
            "guardians",
            "family-doctor",
            "notification-preferences",
            "access-requests",
        )
    ],
    case(
        "update-own-contact-details",
        citizen_actor(),
        target("demographics"),
        "update",
        True,
        "self",
    ),
    case(
        "cannot-register-themselves",
        citizen_actor(),
        target("demographics"),
        "create",
        False,
        "default-deny",
    ),
    *[
        case(
            f"{action}-self-reported-{section}",
            citizen_actor(),
            target(section, source="citizen-reported"),
            action,
            True,
            "self",
        )
        for section in sorted(CITIZEN_REPORTABLE_SECTIONS)
        for action in WRITES
    ],
    case(
        "self-reported-restricted-history",
        citizen_actor(),
        target("history", sensitivity="substance-use", source="citizen-reported"),
        "create",
        True,
        "self",
    ),
    *[
        case(
            f"create-in-{section}-is-clinician-only",
            citizen_actor(),
            target(section, source="citizen-reported"),
            "create",
            False,
            "self-reported-only",
        )
        for section in sorted(SECTIONS - CITIZEN_REPORTABLE_SECTIONS)
    ],
    case(
        "update-clinician-entry",
        citizen_actor(),
        target("allergies", source="clinician"),
        "update",
        False,
        "self-reported-only",
    ),
    case(
        "entered-in-error-on-clinician-entry",
        citizen_actor(),
        target("medications", source="clinician"),
        "entered-in-error",
        False,
        "self-reported-only",
    ),
    case(
        "create-without-source",
        citizen_actor(),
        target("observations"),
        "create",
        False,
        "self-reported-only",
    ),
    case("no-lookup", citizen_actor(), target("identity-lookup"), "lookup", False, "default-deny"),
    case(
        "no-break-glass", citizen_actor(), target("summary"), "break-glass", False, "default-deny"
    ),
    case("explicit-self-purpose", citizen_actor(), target(), "read", True, "self", purpose="self"),
    case(
        "treatment-purpose-not-theirs",
        citizen_actor(),
        target(),
        "read",
        False,
        "purpose-not-covered",
        purpose="treatment",
    ),
    case(
        "other-citizens-record", citizen_actor(STRANGER), target(), "read", False, "other-citizen"
    ),
    case(
        "acting-for-someone-else-than-the-target",
        citizen_actor(acting_for=STRANGER),
        target(),
        "read",
        False,
        "other-citizen",
    ),
    case(
        "minor-reads-own-restricted",
        citizen_actor(),
        target("conditions", sensitivity="mental-health"),
        "read",
        True,
        "self",
        world=facts(citizen_birth_date=MINOR_BIRTH_DATE),
    ),
    case(
        "minor-cannot-dismiss-guardians",
        citizen_actor(),
        target("guardians"),
        "manage",
        False,
        "minor-cannot-manage-guardians",
        world=facts(citizen_birth_date=MINOR_BIRTH_DATE),
    ),
    case(
        "minor-manages-own-consents",
        citizen_actor(),
        target("consents"),
        "manage",
        True,
        "self",
        world=facts(citizen_birth_date=MINOR_BIRTH_DATE),
    ),
    case(
        "guardians-need-known-age",
        citizen_actor(),
        target("guardians"),
        "manage",
        False,
        "birth-date-unknown",
        world=facts(citizen_birth_date=None),
    ),
]


@pytest.mark.parametrize(TABLE_ARGS, SELF)
def test_citizen_on_own_record(actor, tgt, action, purpose, world, permit, rule) -> None:
    check(actor, tgt, action, purpose, world, permit, rule)


def test_self_decision_records_purpose_self() -> None:
    decision = decide(actor=citizen_actor(), target=target(), action="read", facts=facts())
    assert decision.purpose == "self"
    assert decision.via is None
    assert decision.consent_id is None


# --- the family doctor --------------------------------------------------------------------

DOCTOR_CONSENT = grant(
    grantee_id=FAMILY_DOCTOR, categories=frozenset({"mental-health"}), access="read-write"
)

FAMILY = [
    *[
        case(
            f"{action}-{section}",
            family_doctor_actor(),
            target(section, entry_id=ENTRY),
            action,
            True,
            "family-doctor",
        )
        for section in CLINICAL
        for action in ("read", *WRITES)
    ],
    *[
        case(
            f"{action}-{label}-needs-grant",
            family_doctor_actor(),
            target("conditions", sensitivity=label),
            action,
            False,
            "restricted-needs-grant",
        )
        for label in RESTRICTED
        for action in ("read", *WRITES)
    ],
    case(
        "explicit-grant-for-mental-health",
        family_doctor_actor(),
        target("conditions", sensitivity="mental-health"),
        "read",
        True,
        CONSENT_RULE,
        world=facts(consents=(DOCTOR_CONSENT,)),
    ),
    case(
        "grant-is-per-category",
        family_doctor_actor(),
        target("conditions", sensitivity="hiv-sti"),
        "read",
        False,
        "restricted-needs-grant",
        world=facts(consents=(DOCTOR_CONSENT,)),
    ),
    case(
        "grant-is-per-section",
        family_doctor_actor(),
        target("medications", sensitivity="mental-health"),
        "read",
        False,
        "restricted-needs-grant",
        world=facts(consents=(DOCTOR_CONSENT,)),
    ),
    *[
        case(f"read-{name}", family_doctor_actor(), target(name), "read", True, "family-doctor")
        for name in ("demographics", "summary", "immunization-schedule", "family-doctor")
    ],
    *[
        case(
            f"no-{action}-{name}",
            family_doctor_actor(),
            target(name),
            action,
            False,
            "default-deny",
        )
        for name, action in (
            ("demographics", "update"),
            ("consents", "read"),
            ("consents", "manage"),
            ("guardians", "read"),
            ("access-log", "read"),
            ("export", "read"),
            ("family-doctor", "manage"),
            ("notification-preferences", "read"),
        )
    ],
    case(
        "left-the-facility",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "family-doctor-facility-membership",
        world=facts(family_doctor=FamilyDoctor(OTHER_DOCTOR, OTHER_CLINIC)),
    ),
    case(
        "former-family-doctor",
        family_doctor_actor(),
        target(),
        "read",
        False,
        "default-deny",
        world=facts(family_doctor=FamilyDoctor(OTHER_DOCTOR, HOSPITAL)),
    ),
    case(
        "no-family-doctor",
        family_doctor_actor(),
        target(),
        "read",
        False,
        "default-deny",
        world=facts(family_doctor=None),
    ),
    case(
        "treatment-purpose",
        family_doctor_actor(),
        target(),
        "read",
        True,
        "family-doctor",
        purpose="treatment",
    ),
    case(
        "emergency-purpose-is-break-glass",
        family_doctor_actor(),
        target(),
        "read",
        False,
        "purpose-not-covered",
        purpose="emergency",
    ),
]


@pytest.mark.parametrize(TABLE_ARGS, FAMILY)
def test_family_doctor(actor, tgt, action, purpose, world, permit, rule) -> None:
    check(actor, tgt, action, purpose, world, permit, rule)


# --- another practitioner: consents and access requests ------------------------------------

PERIOD = {"data_from": date(2020, 1, 1), "data_until": date(2020, 12, 31)}

CONSENTS = [
    *[
        case(
            f"no-consent-{section}",
            other_doctor_actor(),
            target(section),
            "read",
            False,
            "default-deny",
        )
        for section in CLINICAL
    ],
    case(
        "consent-to-practitioner",
        other_doctor_actor(),
        target(),
        "read",
        True,
        CONSENT_RULE,
        world=facts(consents=(grant(),)),
    ),
    case(
        "consent-to-someone-else",
        THIRD_DOCTOR,
        target(),
        "read",
        False,
        "default-deny",
        world=facts(consents=(grant(),)),
    ),
    case(
        "consent-to-member-facility",
        other_doctor_actor(),
        target(),
        "read",
        True,
        CONSENT_RULE,
        world=facts(consents=(grant(grantee_type="facility", grantee_id=HOSPITAL),)),
    ),
    case(
        "consent-to-other-facility",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "default-deny",
        world=facts(consents=(grant(grantee_type="facility", grantee_id=OTHER_CLINIC),)),
    ),
    case(
        "consent-to-facility-not-to-its-station",
        station_actor(),
        target(),
        "read",
        False,
        "station-scope",
        world=facts(consents=(grant(grantee_type="facility", grantee_id=COMMUNE_STATION),)),
    ),
    case(
        "unknown-grantee-type",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "default-deny",
        world=facts(consents=(grant(grantee_type="team"),)),
    ),
    case(
        "section-not-granted",
        other_doctor_actor(),
        target("medications"),
        "read",
        False,
        "default-deny",
        world=facts(consents=(grant(),)),
    ),
    *[
        case(
            f"read-only-{action}",
            other_doctor_actor(),
            target(),
            action,
            False,
            "consent-read-only",
            world=facts(consents=(grant(),)),
        )
        for action in ("create", "update")
    ],
    # The author rule is the furthest-reaching denial for entered-in-error.
    case(
        "read-only-entered-in-error",
        other_doctor_actor(),
        target(),
        "entered-in-error",
        False,
        "not-author",
        world=facts(consents=(grant(),)),
    ),
    *[
        case(
            f"read-write-{action}",
            other_doctor_actor(),
            target(),
            action,
            True,
            CONSENT_RULE,
            world=facts(consents=(grant(access="read-write"),)),
        )
        for action in ("read", *WRITES)
    ],
    case(
        "unknown-access-level",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "default-deny",
        world=facts(consents=(grant(access="admin"),)),
    ),
    case(
        "expires-in-one-second",
        other_doctor_actor(),
        target(),
        "read",
        True,
        CONSENT_RULE,
        world=facts(consents=(grant(expires_at=NOW + SECOND),)),
    ),
    case(
        "expires-now",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "consent-expired",
        world=facts(consents=(grant(expires_at=NOW),)),
    ),
    case(
        "expired-one-second-ago",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "consent-expired",
        world=facts(consents=(grant(expires_at=NOW - SECOND),)),
    ),
    case(
        "revoked-one-second-ago",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "consent-revoked",
        world=facts(consents=(grant(revoked_at=NOW - SECOND),)),
    ),
    case(
        "revoked-now",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "consent-revoked",
        world=facts(consents=(grant(revoked_at=NOW),)),
    ),
    case(
        "revocation-scheduled-in-one-second",
        other_doctor_actor(),
        target(),
        "read",
        True,
        CONSENT_RULE,
        world=facts(consents=(grant(revoked_at=NOW + SECOND),)),
    ),
    case(
        "created-in-one-second",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "consent-not-yet-valid",
        world=facts(consents=(grant(created_at=NOW + SECOND),)),
    ),
    *[
        case(
            f"period-{label}",
            other_doctor_actor(),
            target(clinical_date=day),
            "read",
            permit,
            CONSENT_RULE if permit else "outside-data-period",
            world=facts(consents=(grant(**PERIOD),)),
        )
        for label, day, permit in (
            ("first-day", date(2020, 1, 1), True),
            ("last-day", date(2020, 12, 31), True),
            ("day-before", date(2019, 12, 31), False),
            ("day-after", date(2021, 1, 1), False),
            ("undated-entry", None, False),
        )
    ],
    case(
        "period-open-ended",
        other_doctor_actor(),
        target(clinical_date=date(2025, 5, 1)),
        "read",
        True,
        CONSENT_RULE,
        world=facts(consents=(grant(data_from=date(2024, 1, 1)),)),
    ),
    case(
        "period-applies-to-writes",
        other_doctor_actor(),
        target(clinical_date=date(2021, 3, 1)),
        "create",
        False,
        "outside-data-period",
        world=facts(consents=(grant(access="read-write", **PERIOD),)),
    ),
    *[
        case(
            f"category-{label}-granted",
            other_doctor_actor(),
            target(sensitivity=label),
            "read",
            True,
            CONSENT_RULE,
            world=facts(consents=(grant(categories=frozenset({label})),)),
        )
        for label in RESTRICTED
    ],
    *[
        case(
            f"category-{label}-not-granted",
            other_doctor_actor(),
            target(sensitivity=label),
            "read",
            False,
            "restricted-needs-grant",
            world=facts(consents=(grant(categories=frozenset(RESTRICTED_LABELS - {label})),)),
        )
        for label in RESTRICTED
    ],
    case(
        "consent-covers-its-purpose-only",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "purpose-not-covered",
        purpose="emergency",
        world=facts(consents=(grant(),)),
    ),
    case(
        "consent-explicit-purpose",
        other_doctor_actor(),
        target(),
        "read",
        True,
        CONSENT_RULE,
        purpose="treatment",
        world=facts(consents=(grant(),)),
    ),
    *[
        case(
            f"consent-names-{name}",
            other_doctor_actor(),
            target(name),
            "read",
            True,
            CONSENT_RULE,
            world=facts(consents=(grant(sections=frozenset({name})),)),
        )
        for name in ("demographics", "summary", "immunization-schedule")
    ],
    case(
        "demographics-read-only-even-read-write",
        other_doctor_actor(),
        target("demographics"),
        "update",
        False,
        "default-deny",
        world=facts(consents=(grant(sections=frozenset({"demographics"}), access="read-write"),)),
    ),
    case(
        "consent-cannot-open-access-log",
        other_doctor_actor(),
        target("access-log"),
        "read",
        False,
        "default-deny",
        world=facts(consents=(grant(sections=frozenset({"access-log"})),)),
    ),
    case(
        "expired-consent-other-active",
        other_doctor_actor(),
        target(),
        "read",
        True,
        f"consent:{SECOND_CONSENT_ID}",
        world=facts(consents=(grant(expires_at=NOW - SECOND), grant(id=SECOND_CONSENT_ID))),
    ),
]


@pytest.mark.parametrize(TABLE_ARGS, CONSENTS)
def test_other_practitioner_needs_a_consent(
    actor, tgt, action, purpose, world, permit, rule
) -> None:
    check(actor, tgt, action, purpose, world, permit, rule)


def test_consent_decision_names_the_consent_and_facility() -> None:
    world = facts(consents=(grant(grantee_type="facility", grantee_id=HOSPITAL),))
    decision = decide(actor=other_doctor_actor(), target=target(), action="read", facts=world)
    assert decision.consent_id == CONSENT_ID
    assert decision.via == f"facility:{HOSPITAL}"
    assert decision.purpose == "treatment"


def test_revocation_is_effective_on_the_very_next_request() -> None:
    active = facts(consents=(grant(),))
    revoked = facts(consents=(grant(revoked_at=NOW - SECOND),))
    ask = {"actor": other_doctor_actor(), "target": target(), "action": "read"}
    assert decide(**ask, facts=active).permit
    assert decide(**ask, facts=revoked).rule == "consent-revoked"


# --- break-glass --------------------------------------------------------------------------

OPENED = NOW - timedelta(hours=1)
WINDOW = timedelta(hours=4)


def at(moment: datetime, **session: object) -> Facts:
    """Facts at `moment` with OTHER_DOCTOR's break-glass session."""
    return facts(now=moment, break_glass=(break_glass(**session),))


BREAK_GLASS = [
    case("open", other_doctor_actor(), target("summary"), "break-glass", True, "break-glass-open"),
    case(
        "open-needs-emergency-purpose",
        other_doctor_actor(),
        target("summary"),
        "break-glass",
        False,
        "purpose-not-covered",
        purpose="treatment",
    ),
    case(
        "citizen-cannot-open",
        citizen_actor(),
        target("summary"),
        "break-glass",
        False,
        "default-deny",
    ),
    case(
        "station-cannot-open",
        station_actor(),
        target("summary"),
        "break-glass",
        False,
        "station-scope",
    ),
    case(
        "admin-cannot-open",
        admin_actor(),
        target("summary"),
        "break-glass",
        False,
        "admin-no-clinical",
    ),
    *[
        case(
            f"read-{section}",
            other_doctor_actor(),
            target(section),
            "read",
            True,
            "break-glass",
            world=at(NOW),
        )
        for section in CLINICAL
    ],
    *[
        case(
            f"read-{name}",
            other_doctor_actor(),
            target(name),
            "read",
            True,
            "break-glass",
            world=at(NOW),
        )
        for name in ("demographics", "summary", "immunization-schedule")
    ],
    *[
        case(
            f"restricted-{label}-refused",
            other_doctor_actor(),
            target("conditions", sensitivity=label),
            "read",
            False,
            "restricted-needs-grant",
            world=at(NOW),
        )
        for label in RESTRICTED
    ],
    case(
        "one-second-before-opening",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "break-glass-not-yet-open",
        world=at(OPENED - SECOND),
    ),
    case(
        "at-opening", other_doctor_actor(), target(), "read", True, "break-glass", world=at(OPENED)
    ),
    case(
        "last-second-of-window",
        other_doctor_actor(),
        target(),
        "read",
        True,
        "break-glass",
        world=at(OPENED + WINDOW - SECOND),
    ),
    case(
        "window-ends",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "break-glass-expired",
        world=at(OPENED + WINDOW),
    ),
    case(
        "one-second-after-window",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "break-glass-expired",
        world=at(OPENED + WINDOW + SECOND),
    ),
    case(
        "stored-expiry-capped-by-window",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "break-glass-expired",
        world=at(OPENED + timedelta(hours=5), expires_at=OPENED + timedelta(hours=8)),
    ),
    case(
        "shorter-configured-window",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "break-glass-expired",
        world=facts(settings=PolicySettings(break_glass_hours=0.5), break_glass=(break_glass(),)),
    ),
    case(
        "closed-early",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "break-glass-closed",
        world=at(NOW, closed_at=NOW - SECOND),
    ),
    case(
        "blank-reason",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "break-glass-no-reason",
        world=at(NOW, reason="   "),
    ),
    *[
        case(
            f"no-{action}",
            other_doctor_actor(),
            target(),
            action,
            False,
            "break-glass-read-only",
            world=at(NOW),
        )
        for action in ("create", "update")
    ],
    case(
        "not-the-access-log",
        other_doctor_actor(),
        target("access-log"),
        "read",
        False,
        "default-deny",
        world=at(NOW),
    ),
    case(
        "another-practitioners-session",
        THIRD_DOCTOR,
        target(),
        "read",
        False,
        "default-deny",
        world=at(NOW),
    ),
    case(
        "session-covers-emergency-only",
        other_doctor_actor(),
        target(),
        "read",
        False,
        "purpose-not-covered",
        purpose="treatment",
        world=at(NOW),
    ),
    case(
        "explicit-emergency-purpose",
        other_doctor_actor(),
        target(),
        "read",
        True,
        "break-glass",
        purpose="emergency",
        world=at(NOW),
    ),
]


@pytest.mark.parametrize(TABLE_ARGS, BREAK_GLASS)
def test_break_glass(actor, tgt, action, purpose, world, permit, rule) -> None:
    check(actor, tgt, action, purpose, world, permit, rule)


def test_break_glass_decision_is_flaggable() -> None:
    decision = decide(actor=other_doctor_actor(), target=target(), action="read", facts=at(NOW))
    assert decision.break_glass_id == BREAK_GLASS_ID
    assert decision.purpose == "emergency"
    assert decision.via == f"break-glass:{BREAK_GLASS_ID}"


def test_open_break_glass_builds_a_window_from_settings() -> None:
    session = open_break_glass(
        session_id=BREAK_GLASS_ID,
        citizen_id=CITIZEN,
        practitioner_id=OTHER_DOCTOR,
        reason="  anaphylaxis, unconscious  ",
        now=NOW,
    )
    assert session.expires_at - session.opened_at == timedelta(hours=4)
    assert session.reason == "anaphylaxis, unconscious"
    short = open_break_glass(
        session_id=BREAK_GLASS_ID,
        citizen_id=CITIZEN,
        practitioner_id=OTHER_DOCTOR,
        reason="cardiac arrest",
        now=NOW,
        settings=PolicySettings(break_glass_hours=1),
    )
    assert short.expires_at == NOW + timedelta(hours=1)
    world = facts(break_glass=(session,))
    assert decide(actor=other_doctor_actor(), target=target(), action="read", facts=world).permit


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_open_break_glass_requires_a_reason(reason: str) -> None:
    with pytest.raises(ValueError, match="reason"):
        open_break_glass(
            session_id=BREAK_GLASS_ID,
            citizen_id=CITIZEN,
            practitioner_id=OTHER_DOCTOR,
            reason=reason,
            now=NOW,
        )


# --- entered-in-error by the author -----------------------------------------------------------

AUTHOR = [
    case(
        "author-without-relationship",
        other_doctor_actor(),
        target(author_practitioner_id=OTHER_DOCTOR),
        "entered-in-error",
        True,
        "author",
    ),
    case(
        "author-of-restricted-entry",
        other_doctor_actor(),
        target(sensitivity="genetic", author_practitioner_id=OTHER_DOCTOR),
        "entered-in-error",
        True,
        "author",
    ),
    case(
        "not-the-author",
        other_doctor_actor(),
        target(author_practitioner_id=FAMILY_DOCTOR),
        "entered-in-error",
        False,
        "not-author",
    ),
    case(
        "author-cannot-update",
        other_doctor_actor(),
        target(author_practitioner_id=OTHER_DOCTOR),
        "update",
        False,
        "default-deny",
    ),
    case(
        "author-cannot-read",
        other_doctor_actor(),
        target(author_practitioner_id=OTHER_DOCTOR),
        "read",
        False,
        "default-deny",
    ),
    case(
        "family-doctor-corrects-others-entry",
        family_doctor_actor(),
        target(author_practitioner_id=OTHER_DOCTOR),
        "entered-in-error",
        True,
        "family-doctor",
    ),
    case(
        "read-write-grantee",
        other_doctor_actor(),
        target(author_practitioner_id=FAMILY_DOCTOR),
        "entered-in-error",
        True,
        CONSENT_RULE,
        world=facts(consents=(grant(access="read-write"),)),
    ),
]


@pytest.mark.parametrize(TABLE_ARGS, AUTHOR)
def test_entered_in_error(actor, tgt, action, purpose, world, permit, rule) -> None:
    check(actor, tgt, action, purpose, world, permit, rule)


# --- practitioner actions that need no relationship ----------------------------------------

RELATION_FREE = [
    case(
        "lookup-by-health-id",
        other_doctor_actor(),
        target("identity-lookup"),
        "lookup",
        True,
        "lookup",
    ),
    case(
        "lookup-in-emergency",
        other_doctor_actor(),
        target("identity-lookup"),
        "lookup",
        True,
        "lookup",
        purpose="emergency",
    ),
    case(
        "register-a-person",
        other_doctor_actor(),
        target("demographics"),
        "create",
        True,
        "registration",
    ),
    case(
        "ask-for-access",
        other_doctor_actor(),
        target("access-requests"),
        "create",
        True,
        "access-request",
    ),
    case(
        "cannot-answer-access-requests",
        other_doctor_actor(),
        target("access-requests"),
        "manage",
        False,
        "default-deny",
    ),
    case(
        "cannot-read-demographics",
        other_doctor_actor(),
        target("demographics"),
        "read",
        False,
        "default-deny",
    ),
]


@pytest.mark.parametrize(TABLE_ARGS, RELATION_FREE)
def test_practitioner_without_relationship(
    actor, tgt, action, purpose, world, permit, rule
) -> None:
    check(actor, tgt, action, purpose, world, permit, rule)


# --- the station --------------------------------------------------------------------------

STATION_ALLOWED = [
    ("identity-lookup", "lookup", "station-lookup"),
    ("immunizations", "read", "station-immunizations"),
    ("immunizations", "create", "station-immunizations"),
    ("immunization-schedule", "read", "station-immunizations"),
    ("immunization-worklist", "read", "station-immunizations"),
    ("demographics", "create", "station-registration"),
    ("demographics", "update", "station-registry"),
    ("guardians", "read", "station-registry"),
    ("guardians", "manage", "station-registry"),
    ("family-doctor", "read", "station-registry"),
    ("family-doctor", "manage", "station-registry"),
]
STATION_OWN_ENTRY = {("immunizations", "update"), ("immunizations", "entered-in-error")}
# The person lives in the commune the station serves (registry acts need it).
SERVED = facts(catchment=frozenset({COMMUNE_STATION}))
STATION_CASES = [
    *[
        case(f"{action}-{name}", station_actor(), target(name), action, True, rule,
             world=SERVED)
        for name, action, rule in STATION_ALLOWED
    ],
    *[
        case(
            f"{action}-{name}-refused",
            station_actor(),
            target(name),
            action,
            False,
            # A station may correct doses its facility recorded (test_policy_station_
            # corrections); on an entry it did not record the refusal names the author check.
            "not-author" if (name, action) in STATION_OWN_ENTRY
            # A station verifies only doses the person reported (the target here is not one).
            else "not-citizen-reported" if (name, action) == ("immunizations", "verify")
            else "station-scope",
            world=SERVED,
        )
        for name in sorted(TARGETS)
        for action in sorted(ACTIONS_BY_TARGET[name])
        if (name, action) not in {(n, a) for n, a, _ in STATION_ALLOWED}
    ],
    *[
        case(
            f"restricted-immunization-{label}",
            station_actor(),
            target("immunizations", sensitivity=label),
            "read",
            False,
            "restricted-needs-grant",
        )
        for label in RESTRICTED
    ],
    case(
        "public-health-purpose",
        station_actor(),
        target("immunizations"),
        "read",
        True,
        "station-immunizations",
        purpose="public-health",
    ),
    case(
        "not-for-treatment",
        station_actor(),
        target("immunizations"),
        "read",
        False,
        "purpose-not-covered",
        purpose="treatment",
    ),
]


@pytest.mark.parametrize(TABLE_ARGS, STATION_CASES)
def test_station(actor, tgt, action, purpose, world, permit, rule) -> None:
    check(actor, tgt, action, purpose, world, permit, rule)


REGISTRY_ACTS = [(n, a) for n, a, rule in STATION_ALLOWED if rule == "station-registry"]


@pytest.mark.parametrize(("name", "action"), REGISTRY_ACTS)
@pytest.mark.parametrize(
    "catchment", [frozenset(), frozenset({HOSPITAL})], ids=["unknown", "another-facility"])
def test_a_station_acts_on_the_registry_only_for_its_catchment(name, action, catchment) -> None:
    decision = decide(actor=station_actor(), target=target(name), action=action,
                      facts=facts(catchment=catchment))
    assert (decision.permit, decision.rule, decision.related) == (
        False, "outside-catchment", False)


def test_the_public_health_remit_needs_no_catchment() -> None:
    for name, action, rule in STATION_ALLOWED:
        if rule == "station-registry":
            continue
        decision = decide(actor=station_actor(), target=target(name), action=action,
                          facts=facts())
        assert (decision.permit, decision.rule, decision.related) == (True, rule, False), name


# --- relatedness: whom a denial may tell that the person exists (403) -------------------------

RELATED_DENIALS = [
    # (actor, facts, target): a relationship exists, the request is still refused.
    (family_doctor_actor(), facts(), target("consents")),
    (other_doctor_actor(), facts(consents=(grant(),)), target("allergies")),
    (other_doctor_actor(), facts(consents=(grant(revoked_at=NOW - SECOND),)), target()),
    (other_doctor_actor(), facts(break_glass=(break_glass(),)), target("consents")),
    (citizen_actor(), facts(), target("allergies", source="clinician")),
    (station_actor(), SERVED, target("allergies")),
]
UNRELATED_DENIALS = [
    (other_doctor_actor(), facts(), target()),
    (other_doctor_actor(), facts(consents=(grant(grantee_id=UUID(int=99)),)), target()),
    (citizen_actor(STRANGER), facts(), target()),
    (Actor(role="citizen", citizen_id=STRANGER, acting_for=CITIZEN), facts(), target()),
    (station_actor(), facts(), target("allergies")),
    (admin_actor(), facts(), target()),
]


@pytest.mark.parametrize(("actor", "world", "tgt"), RELATED_DENIALS)
def test_a_denial_to_someone_related_says_so(actor, world, tgt) -> None:
    action = "create" if tgt.source == "clinician" else "read"
    decision = decide(actor=actor, target=tgt, action=action, facts=world)
    assert (decision.permit, decision.related) == (False, True)


@pytest.mark.parametrize(("actor", "world", "tgt"), UNRELATED_DENIALS)
def test_a_denial_to_someone_unrelated_does_not(actor, world, tgt) -> None:
    decision = decide(actor=actor, target=tgt, action="read", facts=world)
    assert (decision.permit, decision.related) == (False, False)


def test_station_refusals_cover_every_other_pair() -> None:
    pairs = sum(len(actions) for actions in ACTIONS_BY_TARGET.values())
    refused = [p for p in STATION_CASES if p.id.endswith("-refused")]
    assert len(refused) == pairs - len(STATION_ALLOWED)


# --- the admin ----------------------------------------------------------------------------

ADMIN = [
    case(
        f"{action}-{name}-{label}",
        admin_actor(),
        target(name, sensitivity=label),
        action,
        False,
        "admin-no-clinical",
        purpose=purpose,
    )
    for name in sorted(TARGETS)
    for action in sorted(ACTIONS_BY_TARGET[name])
    for label in ("normal", "mental-health")
    for purpose in (None, "treatment")
]


@pytest.mark.parametrize(TABLE_ARGS, ADMIN)
def test_admin_never_reads_citizen_data(actor, tgt, action, purpose, world, permit, rule) -> None:
    check(actor, tgt, action, purpose, world, permit, rule)


def test_admin_denied_even_with_every_relationship() -> None:
    admin = Actor(
        role="admin",
        citizen_id=CITIZEN,
        practitioner_id=OTHER_DOCTOR,
        facility_ids=frozenset({HOSPITAL}),
    )
    world = facts(consents=(grant(access="read-write"),), break_glass=(break_glass(),))
    decision = decide(actor=admin, target=target(), action="read", facts=world)
    assert (decision.permit, decision.rule) == (False, "admin-no-clinical")


# --- facts and settings are validated -------------------------------------------------------


def test_facts_require_timezone_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Facts(citizen_id=CITIZEN, now=datetime(2025, 6, 1, 9, 0))  # noqa: DTZ001


def test_grants_require_timezone_aware_datetimes() -> None:
    with pytest.raises(ValueError, match="expires_at"):
        grant(expires_at=datetime(2025, 6, 1, 9, 0))  # noqa: DTZ001


def test_facts_about_another_citizen_are_refused() -> None:
    with pytest.raises(ValueError, match="another citizen"):
        facts(consents=(grant(citizen_id=STRANGER),))


def test_target_of_another_citizen_than_the_facts_is_a_bug() -> None:
    stray = Target(citizen_id=STRANGER, section="conditions")
    with pytest.raises(ValueError, match="another citizen"):
        decide(actor=family_doctor_actor(), target=stray, action="read", facts=facts())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"teen_privacy_age": 0},
        {"teen_privacy_age": 17},
        {"break_glass_hours": 0},
    ],
    ids=["teen-zero", "teen-above-limit", "no-window"],
)
def test_settings_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must|need"):
        PolicySettings(**kwargs)


def test_vocabularies() -> None:
    assert RESTRICTED_LABELS == {
        "mental-health",
        "hiv-sti",
        "reproductive",
        "substance-use",
        "genetic",
    }
    assert len(SECTIONS) == 10
    assert not SECTIONS & NON_CLINICAL_TARGETS
    assert set(ACTIONS_BY_TARGET) == TARGETS
    assert all(actions <= ACTIONS for actions in ACTIONS_BY_TARGET.values())


def test_decisions_do_not_depend_on_the_utc_offset_of_now() -> None:
    hanoi = NOW.astimezone(timezone(timedelta(hours=7)))
    first = decide(actor=other_doctor_actor(), target=target(), action="read", facts=at(NOW))
    second = decide(actor=other_doctor_actor(), target=target(), action="read", facts=at(hanoi))
    assert first == second


# The policy's own modules and the two small ones below it that they use.
_PURE_MODULES = {
    "consent.policy": "consent/policy.py",
    "consent.policy_types": "consent/policy_types.py",
    "registry.caller": "registry/caller.py",
    "core.vietnam_time": "core/vietnam_time.py",
}


@pytest.mark.parametrize("module", sorted(_PURE_MODULES))
def test_policy_is_pure_standard_library(module: str) -> None:
    source = (Path(__file__).parents[2] / _PURE_MODULES[module]).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    allowed = {"__future__", "collections.abc", "dataclasses", "datetime", "uuid"}
    assert imported <= allowed | set(_PURE_MODULES)
