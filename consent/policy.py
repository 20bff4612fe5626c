"""The consent policy decision point (DESIGN.md §5): plain facts in, a decision out.

No Flask, no database, no clock: the caller loads the `Facts` for one citizen (including `now`)
and asks. Deny by default: a request is permitted only when one *basis* (self, guardian, family
doctor, a consent, a break-glass session, the station's public-health remit...) covers its
target, action, label, clinical date, entry and purpose, and is in force at `now`.

`decide` answers for one entry or target; `visible_scope` answers for a list query with the
clauses a repository turns into SQL. Both walk the same bases in the same order, so an entry is
permitted by `decide` exactly when `visible_scope` shows it, and by the same rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from consent.policy_types import (
    ACTIONS,
    ACTIONS_BY_TARGET,
    CITIZEN_REPORTABLE_SECTIONS,
    CITIZEN_REPORTED,
    GRANTABLE_NON_CLINICAL,
    GRANTABLE_TARGETS,
    IMPORTABLE_SECTIONS,
    IMPORTED,
    NON_CLINICAL_TARGETS,
    PURPOSES,
    RESTRICTED_LABELS,
    ROLES,
    SECTIONS,
    SENSITIVITY_LABELS,
    TARGETS,
    WRITE_ACTIONS,
    Actor,
    BreakGlass,
    Decision,
    Facts,
    FamilyDoctor,
    Grant,
    Guardianship,
    PolicySettings,
    Scope,
    ScopeClause,
    Target,
    date_in_period,
)

__all__ = [
    "ACTIONS",
    "ACTIONS_BY_TARGET",
    "CITIZEN_REPORTABLE_SECTIONS",
    "GRANTABLE_TARGETS",
    "NON_CLINICAL_TARGETS",
    "PURPOSES",
    "RESTRICTED_LABELS",
    "ROLES",
    "SECTIONS",
    "SENSITIVITY_LABELS",
    "TARGETS",
    "Actor",
    "BreakGlass",
    "Decision",
    "Facts",
    "FamilyDoctor",
    "Grant",
    "Guardianship",
    "PolicySettings",
    "Scope",
    "ScopeClause",
    "Target",
    "birthday",
    "decide",
    "decides_on_the_person",
    "open_break_glass",
    "visible_scope",
]

_READ = frozenset({"read"})
_READ_MANAGE = frozenset({"read", "manage"})
_NORMAL = frozenset({"normal"})
_PERMIT = 7  # above every deny stage below

Permissions = Mapping[str, frozenset[str]]


@dataclass(slots=True)  # not frozen: built on every request and frozen init is slow
class _Basis:
    """One reason an actor may act on a citizen's record, and how far it reaches."""

    rule: str
    purposes: tuple[str, ...]  # the first is the one recorded when the caller names none
    permissions: Permissions  # target -> actions
    labels: frozenset[str]
    data_from: date | None = None
    data_until: date | None = None
    via: str | None = None
    consent_id: UUID | None = None
    break_glass_id: UUID | None = None
    inactive_rule: str | None = None  # set when the basis exists but is not in force at `now`
    action_deny_rule: str | None = None
    label_deny_rule: str = "restricted-needs-grant"
    # Entry-level condition (author, source). Only write-only bases carry one, which keeps
    # `visible_scope` (reads) exact.
    entry_check: Callable[[Target, Actor], str | None] | None = None
    # Built from a fact that ties the actor to this citizen (self, guardianship, family doctor,
    # consent, break-glass session, catchment), in force or not; relation-free bases (lookup,
    # asking for access, a station's public-health remit) do not.
    relates: bool = False


def _grant_all(targets: Iterable[str], actions: Iterable[str]) -> dict[str, frozenset[str]]:
    """The same actions on every one of the targets."""
    frozen = frozenset(actions)
    return dict.fromkeys(targets, frozen)


# What a citizen may do on their own record (and a guardian on the dependant's).
_SELF_CLINICAL_READ = _grant_all(SECTIONS, _READ)
_SELF_PERMISSIONS: Permissions = {
    # Contact details only: the citizen-facing schema limits which fields may change.
    "demographics": frozenset({"read", "update"}),
    "immunization-schedule": _READ,
    "summary": _READ,
    "consents": _READ_MANAGE,
    "guardians": _READ,
    "access-requests": _READ_MANAGE,
    "access-log": _READ,
    "export": _READ,
    "family-doctor": _READ_MANAGE,
    "notification-preferences": _READ_MANAGE,
}
_SELF_WRITE_PERMISSIONS = _grant_all(CITIZEN_REPORTABLE_SECTIONS, WRITE_ACTIONS)
_MANAGE_GUARDIANS: Permissions = {"guardians": frozenset({"manage"})}

_FAMILY_DOCTOR_PERMISSIONS: Permissions = {
    **_grant_all(SECTIONS, WRITE_ACTIONS | _READ),
    **_grant_all(("demographics", "summary", "immunization-schedule", "family-doctor",
                  "care-panel"), _READ),
}
_BREAK_GLASS_PERMISSIONS = _grant_all(SECTIONS | GRANTABLE_NON_CLINICAL, _READ)

_STATION_LOOKUP: Permissions = {"identity-lookup": frozenset({"lookup"})}
_STATION_IMMUNIZATIONS: Permissions = {
    "immunizations": frozenset({"read", "create"}),
    "immunization-schedule": _READ,
    "immunization-worklist": _READ,
}
# DESIGN.md §2, §5 and §7: stations register newborns, their guardians and family doctors,
# and correct identity data against the person's papers (the citizen changes contact details
# only). These are registry actions, not clinical access, and only for people of the station's
# own catchment (Facts.catchment): the papers are seen at the commune's station. Registering a
# person who does not exist yet has no catchment to ask.
_STATION_REGISTRATION: Permissions = {"demographics": frozenset({"create"})}
_STATION_REGISTRY: Permissions = {
    "demographics": frozenset({"update"}),
    "guardians": _READ_MANAGE,
    "family-doctor": _READ_MANAGE,
}
# The (target, action) pairs of the registry acts: the decision point loads the catchment for
# these only.
STATION_REGISTRY_ACTIONS = frozenset(
    (target, action) for target, actions in _STATION_REGISTRY.items() for action in actions)


def birthday(birth_date: date, years: int) -> date:
    """The day a person born on birth_date turns `years` old.

    Someone born on 29 February turns a year older on 28 February in common years: the
    earlier of the two candidates, so guardian access ends and teen privacy starts no later.
    """
    try:
        return birth_date.replace(year=birth_date.year + years)
    except ValueError:
        return date(birth_date.year + years, 2, 28)


def open_break_glass(
    *,
    session_id: UUID,
    citizen_id: UUID,
    practitioner_id: UUID,
    reason: str,
    now: datetime,
    settings: PolicySettings | None = None,
) -> BreakGlass:
    """Build a break-glass session lasting the configured window; the reason is mandatory."""
    reason = reason.strip()
    if not reason:
        raise ValueError("break-glass needs a reason")
    window = (settings or PolicySettings()).break_glass_window
    return BreakGlass(
        id=session_id,
        citizen_id=citizen_id,
        practitioner_id=practitioner_id,
        opened_at=now,
        expires_at=now + window,
        reason=reason,
    )


def decide(
    *,
    actor: Actor,
    target: Target,
    action: str,
    purpose: str | None = None,
    facts: Facts,
) -> Decision:
    """Decide whether actor may perform action on target for purpose, given facts.

    purpose None means "whatever the actor's relationship allows"; the decision then records
    the purpose of the rule that permitted (e.g. "emergency" under break-glass).
    """
    _require_same_citizen(target.citizen_id, facts)
    invalid = _invalid_request(actor, target.section, action, purpose, target.sensitivity)
    if invalid is not None:
        return Decision(permit=False, rule=invalid, purpose=purpose,
                        related=_related_anyway(actor, target.citizen_id, facts))
    bases, best_rule = _bases(actor, target.citizen_id, facts)
    best_stage = -1
    for basis in bases:
        stage, rule = _evaluate(basis, actor=actor, target=target, action=action, purpose=purpose)
        if stage == _PERMIT:
            return Decision(
                permit=True,
                rule=basis.rule,
                purpose=purpose or basis.purposes[0],
                via=basis.via,
                consent_id=basis.consent_id,
                break_glass_id=basis.break_glass_id,
                related=basis.relates or _relates(bases),
            )
        if rule is not None and stage > best_stage:
            best_stage, best_rule = stage, rule
    related = _relates(bases) or (target.section, action) in _NOBODY_TO_HIDE
    return Decision(permit=False, rule=best_rule, purpose=purpose, related=related)


def visible_scope(
    *,
    actor: Actor,
    citizen_id: UUID,
    section: str,
    action: str = "read",
    purpose: str | None = None,
    facts: Facts,
) -> Scope:
    """Which entries of one citizen's section the actor may list, as clauses for SQL."""
    if action != "read":
        # Writes depend on the entry (author, source); decide them one entry at a time.
        raise ValueError("visible_scope answers for read only")
    _require_same_citizen(citizen_id, facts)
    invalid = _invalid_request(actor, section, action, purpose, "normal")
    if invalid is not None:
        return Scope(permit=False, rule=invalid,
                     related=_related_anyway(actor, citizen_id, facts))
    bases, best_rule = _bases(actor, citizen_id, facts)
    related = _relates(bases)
    best_stage = -1
    clauses: list[ScopeClause] = []
    for basis in bases:
        stage, rule = _evaluate_section(basis, section=section, action=action, purpose=purpose)
        if stage == _PERMIT and basis.entry_check is None:
            _add_clause(clauses, _clause(basis, purpose))
        elif rule is not None and stage > best_stage:
            best_stage, best_rule = stage, rule
    if clauses:
        return Scope(permit=True, rule=clauses[0].rule, clauses=tuple(clauses), related=related)
    return Scope(permit=False, rule=best_rule, related=related)


# Requests that name no existing person (registering a new one): a refusal hides nobody.
_NOBODY_TO_HIDE = frozenset({("demographics", "create")})


def _relates(bases: list[_Basis]) -> bool:
    """Whether any basis comes from a relationship between the actor and the citizen."""
    return any(basis.relates for basis in bases)


def _related_anyway(actor: Actor, citizen_id: UUID, facts: Facts) -> bool:
    """Relatedness for a malformed request (a caller bug, not a probe): the same facts decide,
    so a wrong action on one's own record is not answered as if the record did not exist."""
    if actor.role not in ROLES or not _actor_is_complete(actor):
        return False
    return _relates(_bases(actor, citizen_id, facts)[0])


# --- request validation -------------------------------------------------------------------


def _require_same_citizen(citizen_id: UUID, facts: Facts) -> None:
    """Facts about another citizen would decide the wrong record: a caller bug."""
    if facts.citizen_id != citizen_id:
        raise ValueError("facts were loaded for another citizen than the target")


def _invalid_request(
    actor: Actor, section: str, action: str, purpose: str | None, sensitivity: str
) -> str | None:
    """The deny rule for a malformed request, or None when it is well formed."""
    if actor.role not in ROLES:
        return "unknown-role"
    if section not in TARGETS:
        return "unknown-section"
    if action not in ACTIONS:
        return "unknown-action"
    if action not in ACTIONS_BY_TARGET[section]:
        return "action-not-applicable"
    if sensitivity not in SENSITIVITY_LABELS:
        return "unknown-sensitivity"
    if purpose is not None and purpose not in PURPOSES:
        return "unknown-purpose"
    if not _actor_is_complete(actor):
        return "invalid-actor"
    return None


def _actor_is_complete(actor: Actor) -> bool:
    """Whether the actor carries the ids its role needs."""
    if actor.role == "citizen":
        return actor.citizen_id is not None
    if actor.role == "practitioner":
        return actor.practitioner_id is not None
    if actor.role == "station":
        return bool(actor.facility_ids)
    return True


# --- evaluation -----------------------------------------------------------------------------
# How far a basis got before it stopped. Of all bases that stopped, the denial reported is the
# one that got furthest (so "consent-expired" wins over "default-deny"); ties go to the first.
_STAGE_ACTION = 1  # covers the target, not the action
_STAGE_ENTRY = 2  # not this entry (author, source)
_STAGE_LABEL = 3  # the label is not shown
_STAGE_PERIOD = 4  # the clinical date is outside the data period
_STAGE_PURPOSE = 5  # would permit, for another purpose
_STAGE_INACTIVE = 6  # would permit, but is expired, revoked, closed...


def _evaluate(
    basis: _Basis, *, actor: Actor, target: Target, action: str, purpose: str | None
) -> tuple[int, str | None]:
    """How far one basis goes toward permitting the request, and its deny rule if it stops."""
    stage, rule = _evaluate_section(basis, section=target.section, action=action, purpose=None)
    if stage != _PERMIT:
        return stage, rule
    # Entry conditions first: a basis about someone else's entry says less than a label would.
    if basis.entry_check is not None:
        entry_rule = basis.entry_check(target, actor)
        if entry_rule is not None:
            return _STAGE_ENTRY, entry_rule
    if target.sensitivity not in basis.labels:
        return _STAGE_LABEL, basis.label_deny_rule
    if not date_in_period(target.clinical_date, basis.data_from, basis.data_until):
        return _STAGE_PERIOD, "outside-data-period"
    if purpose is not None and purpose not in basis.purposes:
        return _STAGE_PURPOSE, "purpose-not-covered"
    return _PERMIT, None


def _evaluate_section(
    basis: _Basis, *, section: str, action: str, purpose: str | None
) -> tuple[int, str | None]:
    """The entry-independent part of `_evaluate`."""
    allowed = basis.permissions.get(section)
    if allowed is None:
        return 0, None
    if action not in allowed:
        return _STAGE_ACTION, basis.action_deny_rule
    if basis.inactive_rule is not None:
        return _STAGE_INACTIVE, basis.inactive_rule
    if purpose is not None and purpose not in basis.purposes:
        return _STAGE_PURPOSE, "purpose-not-covered"
    return _PERMIT, None


def _clause(basis: _Basis, purpose: str | None) -> ScopeClause:
    """The scope clause a permitting basis contributes."""
    return ScopeClause(
        labels=basis.labels,
        data_from=basis.data_from,
        data_until=basis.data_until,
        rule=basis.rule,
        purpose=purpose or basis.purposes[0],
        via=basis.via,
        consent_id=basis.consent_id,
        break_glass_id=basis.break_glass_id,
    )


def _add_clause(clauses: list[ScopeClause], new: ScopeClause) -> None:
    """Append unless an earlier clause already shows everything the new one would."""
    for old in clauses:
        if new.labels <= old.labels and _period_within(new, old):
            return
    clauses.append(new)


def _period_within(inner: ScopeClause, outer: ScopeClause) -> bool:
    """Whether every date inside inner's period is inside outer's."""
    if outer.all_dates:
        return True
    if inner.all_dates:
        return False
    starts_inside = outer.data_from is None or (
        inner.data_from is not None and inner.data_from >= outer.data_from
    )
    ends_inside = outer.data_until is None or (
        inner.data_until is not None and inner.data_until <= outer.data_until
    )
    return starts_inside and ends_inside


# --- bases per role -------------------------------------------------------------------------


def _bases(actor: Actor, citizen_id: UUID, facts: Facts) -> tuple[list[_Basis], str]:
    """Every basis the actor has on this citizen's record, and the deny rule when none fits."""
    if actor.role == "citizen":
        return _citizen_bases(actor, citizen_id, facts)
    if actor.role == "practitioner":
        return _practitioner_bases(actor, facts), "default-deny"
    if actor.role == "station":
        served = bool(actor.facility_ids & facts.catchment)
        registry = _STATION_REGISTRY_BASIS if served else _OUTSIDE_CATCHMENT
        return [*_STATION_BASES, registry], "station-scope"
    # An admin runs the registry (clients, facilities, practitioners), never a citizen's data.
    return [], "admin-no-clinical"


def _citizen_bases(actor: Actor, citizen_id: UUID, facts: Facts) -> tuple[list[_Basis], str]:
    """A citizen on their own record, or a guardian/proxy on the record they act for."""
    subject = actor.acting_for or actor.citizen_id
    if subject != citizen_id:
        return [], "other-citizen"
    if subject == actor.citizen_id:
        return _self_bases(facts), "default-deny"
    held = [g for g in facts.guardianships if g.guardian_citizen_id == actor.citizen_id]
    bases = [basis for guardianship in held for basis in _guardian_bases(guardianship, facts)]
    return bases, "default-deny" if bases else "no-guardianship"


def _self_bases(facts: Facts) -> list[_Basis]:
    """The citizen themselves: everything to read, self-reported writes, their own settings."""
    minor = _is_minor(facts)
    guardians_inactive = None
    if minor is None:
        guardians_inactive = "birth-date-unknown"
    elif minor:
        # A child must not be able to dismiss their guardians; the guardian manages them.
        guardians_inactive = "minor-cannot-manage-guardians"
    return _acting_citizen_bases(
        rule="self",
        purpose="self",
        labels=SENSITIVITY_LABELS,
        via=None,
        label_deny_rule="restricted-needs-grant",
        inactive_rule=None,
        guardians_inactive_rule=guardians_inactive,
    )


def _guardian_bases(guardianship: Guardianship, facts: Facts) -> list[_Basis]:
    """A guardian acts with the dependant's permissions, minus what the dependant keeps private."""
    inactive = _guardianship_inactive(guardianship, facts)
    shared = _NORMAL | (guardianship.categories & RESTRICTED_LABELS)
    via = f"on-behalf-of:{guardianship.dependant_citizen_id}"
    if guardianship.kind == "minor":
        teen = _reached_age(facts, facts.settings.teen_privacy_age)
        return _acting_citizen_bases(
            rule="guardian",
            purpose="guardian",
            labels=shared if teen in (True, None) else SENSITIVITY_LABELS,
            via=via,
            label_deny_rule="guardian-teen-privacy",
            inactive_rule=inactive,
            guardians_inactive_rule=inactive,
        )
    if guardianship.kind == "proxy":
        return _acting_citizen_bases(
            rule="proxy",
            purpose="guardian",
            labels=shared,
            via=via,
            label_deny_rule="proxy-restricted",
            inactive_rule=inactive,
            # An adult's proxy must not be able to appoint or dismiss proxies in their name.
            guardians_inactive_rule="proxy-cannot-manage-guardians",
        )
    return []  # an unknown kind grants nothing


def _acting_citizen_bases(
    *,
    rule: str,
    purpose: str,
    labels: frozenset[str],
    via: str | None,
    label_deny_rule: str,
    inactive_rule: str | None,
    guardians_inactive_rule: str | None,
) -> list[_Basis]:
    """The citizen's own permissions, for the citizen or someone acting for them."""
    return [
        _Basis(
            rule=rule,
            purposes=(purpose,),
            permissions=_SELF_CLINICAL_READ,
            labels=labels,
            via=via,
            label_deny_rule=label_deny_rule,
            inactive_rule=inactive_rule,
            action_deny_rule="self-reported-only",
            relates=True,
        ),
        _Basis(
            rule=rule,
            purposes=(purpose,),
            permissions=_SELF_PERMISSIONS,
            labels=labels,
            via=via,
            label_deny_rule=label_deny_rule,
            inactive_rule=inactive_rule,
            relates=True,
        ),
        _Basis(
            rule=rule,
            purposes=(purpose,),
            permissions=_SELF_WRITE_PERMISSIONS,
            labels=labels,
            via=via,
            label_deny_rule=label_deny_rule,
            inactive_rule=inactive_rule,
            entry_check=_citizen_reported_only,
            relates=True,
        ),
        _Basis(
            rule=rule,
            purposes=(purpose,),
            permissions=_MANAGE_GUARDIANS,
            labels=labels,
            via=via,
            label_deny_rule=label_deny_rule,
            inactive_rule=guardians_inactive_rule,
            relates=True,
        ),
    ]


def _citizen_reported_only(target: Target, actor: Actor) -> str | None:
    """Citizens write only entries that are marked as reported by the citizen."""
    return None if target.source == CITIZEN_REPORTED else "self-reported-only"


def _guardianship_inactive(guardianship: Guardianship, facts: Facts) -> str | None:
    """Why a guardianship is not in force at facts.now, or None when it is."""
    now = facts.now
    if guardianship.revoked_at is not None and guardianship.revoked_at <= now:
        return "guardian-revoked"
    if guardianship.valid_until is not None and guardianship.valid_until <= now:
        return "guardian-expired"
    if guardianship.valid_from > now:
        return "guardian-not-yet-valid"
    if guardianship.kind == "minor":
        minor = _is_minor(facts)
        if minor is None:
            return "guardian-age-unknown"
        if not minor:
            return "guardian-age-limit"
    return None


def _is_minor(facts: Facts) -> bool | None:
    """Whether the citizen is under the guardian age limit today; None when unknown."""
    adult = _reached_age(facts, facts.settings.guardian_age_limit)
    return None if adult is None else not adult


def _reached_age(facts: Facts, years: int) -> bool | None:
    """Whether the citizen has had their `years`th birthday (local date); None when unknown."""
    if facts.citizen_birth_date is None:
        return None
    return facts.local_today >= birthday(facts.citizen_birth_date, years)


def decides_on_the_person(actor: Actor) -> bool:
    """Whether this actor's decisions may depend on who the citizen is or on their birth date.
    A practitioner's do not: `_practitioner_bases` reads the family doctor, consents and
    break-glass sessions of the facts, nothing else, so one decision holds for every person
    with the same relationships (consent.standing relies on it; a test holds it)."""
    return actor.role != "practitioner"


def _practitioner_bases(actor: Actor, facts: Facts) -> list[_Basis]:
    """Family doctor, consents, break-glass, authorship and the few relation-free actions."""
    bases: list[_Basis] = []
    if facts.family_doctor is not None:
        bases.extend(_family_doctor_bases(actor, facts.family_doctor))
    bases.extend(_consent_basis(grant, facts) for grant in facts.consents if _grantee(actor, grant))
    bases.extend(
        _break_glass_basis(session, facts)
        for session in facts.break_glass
        if session.practitioner_id == actor.practitioner_id
    )
    bases.append(_AUTHOR_BASIS)
    bases.extend(_RELATION_FREE_BASES)
    return bases


def _family_doctor_bases(actor: Actor, family_doctor: FamilyDoctor) -> list[_Basis]:
    """The active family doctor: all non-restricted sections, read and write."""
    if family_doctor.practitioner_id != actor.practitioner_id:
        return []
    # The registration is with a practitioner *at a facility*: it lapses with the membership.
    member = family_doctor.facility_id in actor.facility_ids
    return [
        _Basis(
            rule="family-doctor",
            purposes=("treatment",),
            permissions=_FAMILY_DOCTOR_PERMISSIONS,
            labels=_NORMAL,
            inactive_rule=None if member else "family-doctor-facility-membership",
            relates=True,
        )
    ]


def _grantee(actor: Actor, grant: Grant) -> bool:
    """Whether the consent names this practitioner or one of their facilities."""
    if grant.grantee_type == "practitioner":
        return grant.grantee_id == actor.practitioner_id
    if grant.grantee_type == "facility":
        return grant.grantee_id in actor.facility_ids
    return False


def _consent_basis(grant: Grant, facts: Facts) -> _Basis:
    """What one consent lets its grantee do: named sections, named restricted categories."""
    if grant.access == "read-write":
        clinical_actions = WRITE_ACTIONS | _READ
    elif grant.access == "read":
        clinical_actions = _READ
    else:
        clinical_actions = frozenset()  # an unknown access level grants nothing
    permissions = {
        **_grant_all(grant.sections & SECTIONS, clinical_actions),
        **_grant_all(grant.sections & GRANTABLE_NON_CLINICAL, _READ & clinical_actions),
    }
    via = f"facility:{grant.grantee_id}" if grant.grantee_type == "facility" else None
    return _Basis(
        rule=f"consent:{grant.id}",
        purposes=(grant.purpose,),
        permissions=permissions,
        labels=_NORMAL | (grant.categories & RESTRICTED_LABELS),
        data_from=grant.data_from,
        data_until=grant.data_until,
        via=via,
        consent_id=grant.id,
        inactive_rule=_consent_inactive(grant, facts.now),
        action_deny_rule="consent-read-only" if grant.access == "read" else None,
        relates=True,
    )


def _consent_inactive(grant: Grant, now: datetime) -> str | None:
    """Why a consent is not in force at now (checked on every request), or None."""
    if grant.revoked_at is not None and grant.revoked_at <= now:
        return "consent-revoked"
    if grant.expires_at is not None and grant.expires_at <= now:
        return "consent-expired"
    if grant.created_at > now:
        return "consent-not-yet-valid"
    return None


def _break_glass_basis(session: BreakGlass, facts: Facts) -> _Basis:
    """An emergency session: read non-restricted sections while the window is open."""
    return _Basis(
        rule="break-glass",
        purposes=("emergency",),
        permissions=_BREAK_GLASS_PERMISSIONS,
        labels=_NORMAL,
        via=f"break-glass:{session.id}",
        break_glass_id=session.id,
        inactive_rule=_break_glass_inactive(session, facts),
        action_deny_rule="break-glass-read-only",
        relates=True,
    )


def _break_glass_inactive(session: BreakGlass, facts: Facts) -> str | None:
    """Why a break-glass session does not open the record at facts.now, or None."""
    now = facts.now
    if not session.reason.strip():
        return "break-glass-no-reason"
    if session.opened_at > now:
        return "break-glass-not-yet-open"
    if session.closed_at is not None and session.closed_at <= now:
        return "break-glass-closed"
    # The configured window caps whatever expiry was stored.
    ends = min(session.expires_at, session.opened_at + facts.settings.break_glass_window)
    if ends <= now:
        return "break-glass-expired"
    return None


def _authored_by_actor(target: Target, actor: Actor) -> str | None:
    """Only the author of an entry may use the author rule on it."""
    return None if target.author_practitioner_id == actor.practitioner_id else "not-author"


# The author of an entry may mark it entered-in-error, whatever their access today.
_AUTHOR_BASIS = _Basis(
    rule="author",
    purposes=("treatment",),
    permissions=_grant_all(SECTIONS, ("entered-in-error",)),
    labels=SENSITIVITY_LABELS,
    entry_check=_authored_by_actor,
)

# What any practitioner may do without a relationship to the citizen.
_RELATION_FREE_BASES = (
    _Basis(
        rule="lookup",
        purposes=("treatment", "emergency"),
        permissions={"identity-lookup": frozenset({"lookup"})},
        labels=_NORMAL,
    ),
    _Basis(
        rule="registration",
        purposes=("treatment",),
        permissions={"demographics": frozenset({"create"})},
        labels=_NORMAL,
    ),
    _Basis(
        rule="access-request",
        purposes=("treatment",),
        permissions={"access-requests": frozenset({"create"})},
        # Asking opens nothing: a request may name any category (the citizen answers).
        labels=SENSITIVITY_LABELS,
    ),
    _Basis(
        rule="break-glass-open",
        purposes=("emergency",),
        permissions=_grant_all(TARGETS, ("break-glass",)),
        labels=SENSITIVITY_LABELS,
    ),
)

def _recorded_by_station(target: Target, actor: Actor) -> str | None:
    """A station may correct or retract only the doses its own facility recorded."""
    own = target.source == "station" and target.facility_id in actor.facility_ids
    return None if own else "not-author"


def _citizen_reported(target: Target, actor: Actor) -> str | None:
    """A station verifies doses the person reported, against the paper record they show."""
    return None if target.source == CITIZEN_REPORTED else "not-citizen-reported"


def _imported_only(target: Target, actor: Actor) -> str | None:
    """A facility appends for anyone only what its own systems send as imported entries."""
    return None if target.source == IMPORTED else "station-scope"


# A facility's station: lookup by health ID, immunizations and registering a new person, for
# anyone (the public-health remit); registry acts only within its catchment (below). Any
# registered facility's system also appends imported results for anyone (a hospital visit's
# lab results, diagnoses, doses): create only, any label (appending shows nothing; a restricted
# result must be recordable), no read, no correction, and no relationship to the person.
_STATION_BASES = (
    _Basis(
        rule="facility-import",
        purposes=("treatment",),
        permissions=_grant_all(IMPORTABLE_SECTIONS, ("create",)),
        labels=SENSITIVITY_LABELS,
        entry_check=_imported_only,
    ),
    _Basis(
        rule="station-lookup",
        purposes=("public-health",),
        permissions=_STATION_LOOKUP,
        labels=_NORMAL,
    ),
    _Basis(
        rule="station-immunizations",
        purposes=("public-health",),
        permissions=_STATION_IMMUNIZATIONS,
        labels=_NORMAL,
        action_deny_rule="station-scope",
    ),
    _Basis(
        rule="station-registration",
        purposes=("public-health",),
        permissions=_STATION_REGISTRATION,
        labels=_NORMAL,
    ),
    _Basis(
        rule="station-own-entry",
        purposes=("public-health",),
        permissions={"immunizations": frozenset({"update", "entered-in-error"})},
        labels=_NORMAL,
        entry_check=_recorded_by_station,
    ),
    _Basis(
        rule="station-verify",
        purposes=("public-health",),
        permissions={"immunizations": frozenset({"verify"})},
        labels=_NORMAL,
        entry_check=_citizen_reported,
    ),
)

_STATION_REGISTRY_BASIS = _Basis(
    rule="station-registry",
    purposes=("public-health",),
    permissions=_STATION_REGISTRY,
    labels=_NORMAL,
    relates=True,
)
# The same acts for someone of another commune: refused, and no relationship.
_OUTSIDE_CATCHMENT = _Basis(
    rule="station-registry",
    purposes=("public-health",),
    permissions=_STATION_REGISTRY,
    labels=_NORMAL,
    inactive_rule="outside-catchment",
)


# --- demographics: which fields, once the policy permits reading or correcting at all ---------

# A person corrects how they are reached; identity data changes at a station, against the
# person's papers, and a station does not touch how the person is reached. A role the policy
# may come to allow to correct gets no field until it is named here.
_CORRECTABLE_DEMOGRAPHICS: dict[str, tuple[frozenset[str], str]] = {
    "citizen": (frozenset({"phone", "email", "address", "preferred_language"}),
                "field-station-only"),
    "station": (frozenset({"full_name", "date_of_birth", "sex", "ethnicity",
                           "social_insurance_code"}), "field-citizen-only"),
}


def correctable_demographics(actor: Actor) -> tuple[frozenset[str], str]:
    """The demographic fields `actor` may correct (after `decide` permitted the update), and
    the reason code that refuses the others."""
    return _CORRECTABLE_DEMOGRAPHICS.get(actor.role, (frozenset(), "field-station-only"))


def sees_contact_details(actor: Actor) -> bool:
    """Whether a permitted demographics read shows contact details and identifiers: the person,
    those acting for them and clinicians; a station reads the minimal identity it works with."""
    return actor.role in ("citizen", "practitioner")
