"""Vocabularies and value types of the consent policy decision point (DESIGN.md §5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from uuid import UUID

from core.vietnam_time import VIETNAM_TZ as VIETNAM_TZ  # re-exported: the policy's calendar
from registry.caller import ROLES as ROLES
from registry.caller import Caller

# Clinical record sections (DESIGN.md §2, §7 path names).
SECTIONS = frozenset(
    {
        "allergies",
        "conditions",
        "encounters",
        "observations",
        "medications",
        "immunizations",
        "lab-results",
        "family-history",
        "history",
        "examinations",
    }
)

# Targets that are not clinical sections but still belong to one citizen.
NON_CLINICAL_TARGETS = frozenset(
    {
        "demographics",
        "identity-lookup",
        "immunization-schedule",
        "summary",
        "consents",
        "guardians",
        "access-requests",
        "access-log",
        "export",
        "family-doctor",
        "notification-preferences",
        # A family doctor's list of the people registered with them, each with flags.
        "care-panel",
        # A station's list of the children of its commune due or overdue for a dose.
        "immunization-worklist",
    }
)

TARGETS = SECTIONS | NON_CLINICAL_TARGETS

RESTRICTED_LABELS = frozenset(
    {"mental-health", "hiv-sti", "reproductive", "substance-use", "genetic"}
)
SENSITIVITY_LABELS = RESTRICTED_LABELS | {"normal"}

WRITE_ACTIONS = frozenset({"create", "update", "entered-in-error"})
# Actions that write nothing of their own: their audit event is complete by itself.
READ_ACTIONS = frozenset({"read", "lookup"})
# `verify`: station staff confirm a citizen-reported dose against the paper record.
ACTIONS = WRITE_ACTIONS | READ_ACTIONS | {"manage", "break-glass", "verify"}

PURPOSES = frozenset({"treatment", "emergency", "self", "guardian", "public-health"})

# Sections where a citizen (or their guardian) may record `citizen-reported` entries: things a
# person can observe about themselves, and past doses from their own vaccination book (the 2021
# COVID-19 doses): such a dose stays unverified, and does not satisfy the schedule, until station
# staff verify it against the paper record. Diagnoses, encounters, examinations and lab results
# stay clinician-recorded.
CITIZEN_REPORTABLE_SECTIONS = frozenset(
    {"allergies", "observations", "medications", "family-history", "history", "immunizations"}
)
CITIZEN_REPORTED = "citizen-reported"

# Entries a registered facility's system pushes (a hospital's or a lab's results, as a FHIR
# transaction): any facility may append these sections for anyone, and reads none of them back
# by that right (DESIGN.md §5: "they read back only what the policy gives them").
IMPORTED = "imported"
IMPORTABLE_SECTIONS = frozenset(
    {"immunizations", "observations", "lab-results", "conditions", "encounters"}
)

# What a consent may name besides clinical sections (read-only even under a read-write grant).
GRANTABLE_NON_CLINICAL = frozenset({"demographics", "summary", "immunization-schedule"})
GRANTABLE_TARGETS = SECTIONS | GRANTABLE_NON_CLINICAL

# Which actions make sense on which target; anything else is refused before any rule runs.
# `break-glass` is about the whole record, so it is accepted with any target (callers pass
# "summary") and the section is not consulted.
ACTIONS_BY_TARGET: dict[str, frozenset[str]] = {
    **{section: WRITE_ACTIONS | {"read", "break-glass"} for section in SECTIONS},
    "immunizations": WRITE_ACTIONS | {"read", "break-glass", "verify"},
    "demographics": frozenset({"read", "create", "update", "break-glass"}),
    "identity-lookup": frozenset({"lookup", "break-glass"}),
    "immunization-schedule": frozenset({"read", "break-glass"}),
    "summary": frozenset({"read", "break-glass"}),
    "consents": frozenset({"read", "manage", "break-glass"}),
    "guardians": frozenset({"read", "manage", "break-glass"}),
    "access-requests": frozenset({"read", "create", "manage", "break-glass"}),
    "access-log": frozenset({"read", "break-glass"}),
    "export": frozenset({"read", "break-glass"}),
    "family-doctor": frozenset({"read", "manage", "break-glass"}),
    "notification-preferences": frozenset({"read", "manage", "break-glass"}),
    "care-panel": frozenset({"read"}),
    "immunization-worklist": frozenset({"read"}),
}



def _require_aware(name: str, value: datetime | None) -> None:
    """Reject naive datetimes: comparing them with aware ones is a bug, not a denial."""
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be a timezone-aware datetime")


# The policy's name for the caller: the one type auth builds per request.
Actor = Caller


@dataclass(frozen=True)
class Target:
    """What is asked about: one citizen's section, optionally one entry of it.

    For `create`, describe the entry about to be written (its label, clinical date, source).
    """

    citizen_id: UUID
    section: str
    entry_id: UUID | None = None
    sensitivity: str = "normal"
    author_practitioner_id: UUID | None = None
    clinical_date: date | None = None
    source: str | None = None
    # The facility that recorded the entry (a station may correct what it recorded itself).
    facility_id: UUID | None = None


@dataclass(frozen=True)
class FamilyDoctor:
    """The citizen's active family-doctor registration."""

    practitioner_id: UUID
    facility_id: UUID


@dataclass(frozen=True)
class Guardianship:
    """A guardian (kind "minor") or an adult's named proxy (kind "proxy")."""

    guardian_citizen_id: UUID
    dependant_citizen_id: UUID
    kind: str
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_at: datetime | None = None
    # Restricted categories shown to this guardian despite teen privacy or proxy defaults.
    categories: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", frozenset(self.categories))
        for name in ("valid_from", "valid_until", "revoked_at"):
            _require_aware(name, getattr(self, name))


@dataclass(frozen=True)
class Grant:
    """A consent: the citizen lets a practitioner or facility use chosen sections."""

    id: UUID
    citizen_id: UUID
    grantee_type: str  # "practitioner" | "facility"
    grantee_id: UUID
    sections: frozenset[str]
    created_at: datetime
    categories: frozenset[str] = field(default_factory=frozenset)
    access: str = "read"  # "read" | "read-write"
    purpose: str = "treatment"
    data_from: date | None = None
    data_until: date | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sections", frozenset(self.sections))
        object.__setattr__(self, "categories", frozenset(self.categories))
        for name in ("created_at", "expires_at", "revoked_at"):
            _require_aware(name, getattr(self, name))


@dataclass(frozen=True)
class BreakGlass:
    """An emergency access session opened by a practitioner on one citizen's record."""

    id: UUID
    citizen_id: UUID
    practitioner_id: UUID
    opened_at: datetime
    expires_at: datetime
    reason: str
    closed_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("opened_at", "expires_at", "closed_at"):
            _require_aware(name, getattr(self, name))


@dataclass(frozen=True)
class PolicySettings:
    """Tunable numbers of the default policy."""

    guardian_age_limit: int = 16
    teen_privacy_age: int = 12
    break_glass_hours: float = 4
    # Birthdays turn over at local midnight, not UTC midnight.
    local_timezone: tzinfo = VIETNAM_TZ

    def __post_init__(self) -> None:
        if not 0 < self.teen_privacy_age <= self.guardian_age_limit:
            raise ValueError("need 0 < teen_privacy_age <= guardian_age_limit")
        if self.break_glass_hours <= 0:
            raise ValueError("break_glass_hours must be positive")

    @property
    def break_glass_window(self) -> timedelta:
        """The longest a break-glass session may stay open."""
        return timedelta(hours=self.break_glass_hours)


@dataclass(frozen=True)
class Facts:
    """Everything the policy needs to know about one citizen, loaded by the caller."""

    citizen_id: UUID
    now: datetime
    citizen_birth_date: date | None = None
    family_doctor: FamilyDoctor | None = None
    guardianships: tuple[Guardianship, ...] = ()
    consents: tuple[Grant, ...] = ()
    break_glass: tuple[BreakGlass, ...] = ()
    settings: PolicySettings = field(default_factory=PolicySettings)
    # The facilities whose catchment holds the citizen: the commune station of their address,
    # and the facility that registered them. Loaded only when a station's registry act asks.
    catchment: frozenset[UUID] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        _require_aware("now", self.now)
        object.__setattr__(self, "catchment", frozenset(self.catchment))
        object.__setattr__(self, "guardianships", tuple(self.guardianships))
        object.__setattr__(self, "consents", tuple(self.consents))
        object.__setattr__(self, "break_glass", tuple(self.break_glass))
        # A fact about another citizen here is a loader bug that could leak access: fail loudly.
        owners = {g.dependant_citizen_id for g in self.guardianships}
        owners |= {c.citizen_id for c in self.consents}
        owners |= {b.citizen_id for b in self.break_glass}
        if owners - {self.citizen_id}:
            raise ValueError("facts hold guardianships, consents or break-glass of another citizen")

    @property
    def local_today(self) -> date:
        """Today's date where the citizen lives."""
        return self.now.astimezone(self.settings.local_timezone).date()


@dataclass(frozen=True)
class Decision:
    """The answer for one request, with the stable code of the rule that decided."""

    permit: bool
    rule: str
    purpose: str | None = None  # the purpose the permit was given for (or the one asked)
    via: str | None = None  # how the actor is connected, e.g. "facility:<id>", "on-behalf-of:<id>"
    consent_id: UUID | None = None
    break_glass_id: UUID | None = None
    # Whether a relationship (self, guardian, proxy, family doctor, consent, break-glass
    # session, the station's catchment) ties the actor to this citizen, in force or recently
    # ended. A denial without one is answered as for a person who does not exist (a request
    # naming no existing person, a registration, counts as related: it has nobody to hide).
    related: bool = False


@dataclass(frozen=True)
class ScopeClause:
    """One way of seeing a section: these labels, clinical dates within [data_from, data_until]."""

    labels: frozenset[str]
    data_from: date | None
    data_until: date | None
    rule: str
    purpose: str
    via: str | None = None
    consent_id: UUID | None = None
    break_glass_id: UUID | None = None

    @property
    def all_dates(self) -> bool:
        """True when the clause does not restrict clinical dates (undated entries included)."""
        return self.data_from is None and self.data_until is None

    def as_decision(self, *, related: bool) -> Decision:
        """The permit this clause gives a request it covers (what the audit records)."""
        return Decision(permit=True, rule=self.rule, purpose=self.purpose, via=self.via,
                        consent_id=self.consent_id, break_glass_id=self.break_glass_id,
                        related=related)

    def covers(self, sensitivity: str, clinical_date: date | None) -> bool:
        """Whether an entry with this label and clinical date falls inside the clause."""
        return sensitivity in self.labels and date_in_period(
            clinical_date, self.data_from, self.data_until
        )


@dataclass(frozen=True)
class Scope:
    """What of one section a list query may return: entries matching ANY clause.

    In SQL: OR over clauses of (sensitivity IN labels AND clinical_date within the period; a
    bounded period excludes entries without a clinical date). Clauses are not a product of
    labels × periods because two consents (say, all dates for normal entries, 2020 only for
    mental-health) cannot be expressed that way.
    """

    permit: bool
    rule: str
    clauses: tuple[ScopeClause, ...] = ()
    related: bool = False  # as Decision.related

    @property
    def labels(self) -> frozenset[str]:
        """Every label visible under at least one clause."""
        return frozenset().union(*(clause.labels for clause in self.clauses))

    def as_decision(self, purpose: str | None = None) -> Decision:
        """The decision a list read on this scope is audited with: a permitted scope's first
        clause's (its rule is the scope's), or the denial."""
        if self.clauses:
            return self.clauses[0].as_decision(related=self.related)
        return Decision(permit=False, rule=self.rule, purpose=purpose, related=self.related)

    def match(self, sensitivity: str, clinical_date: date | None) -> ScopeClause | None:
        """The first clause that shows an entry with this label and date, if any."""
        return next((c for c in self.clauses if c.covers(sensitivity, clinical_date)), None)

    def permits(self, sensitivity: str, clinical_date: date | None) -> bool:
        """Whether an entry with this label and clinical date is visible."""
        return self.match(sensitivity, clinical_date) is not None


def date_in_period(day: date | None, start: date | None, end: date | None) -> bool:
    """Inclusive period check; an undated entry is only inside an unbounded period."""
    if start is None and end is None:
        return True
    if day is None:
        return False
    return (start is None or day >= start) and (end is None or day <= end)
