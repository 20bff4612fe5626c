"""SMART App Launch v2 scopes over FHIR resource names, and which roles may hold which.

A clinical scope reads `<context>/<Resource>.<interactions>`: context `patient` (a citizen, for
themselves or people in their care), `user` (staff: whatever the consent policy lets the user
see), `system` (a facility's system with client credentials); resource a FHIR type or `*`;
interactions a non-empty subsequence of `cruds` in that order (create, read, update, delete,
search). Besides these, `openid`, `profile` and `offline_access`. SMART v1 forms (`.read`) and
query restrictions (`?category=`) are not accepted: a client is registered with v2 scopes.

Which interaction an API operation needs (the convention every handler follows):
read one resource `r`; list or search a section `s`; create `c`; update, correct or mark
entered-in-error `u` (nothing is hard-deleted through the API); delete (revoke a consent) `d`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

IDENTITY_SCOPES = frozenset({"openid", "profile", "offline_access"})
CONTEXTS = ("patient", "user", "system")
INTERACTIONS = "cruds"
WILDCARD = "*"

# Record sections (DESIGN.md §2, §7) → FHIR resource types (DESIGN.md §4).
SECTION_RESOURCES: dict[str, str] = {
    "allergies": "AllergyIntolerance",
    "conditions": "Condition",
    "encounters": "Encounter",
    "observations": "Observation",
    "medications": "MedicationStatement",
    "immunizations": "Immunization",
    "lab-results": "DiagnosticReport",
    "family-history": "FamilyMemberHistory",
    # Personal history and lifestyle (smoking, alcohol, disability, surgeries, reproductive
    # history) is recorded in FHIR as social-history Observations.
    "history": "Observation",
    # A periodic examination (history, physical exam, results, diagnosis, counselling, the
    # examining doctor) is an Encounter of the periodic-examination type in FHIR.
    "examinations": "Encounter",
}

# Other per-citizen targets (consent.policy_types.NON_CLINICAL_TARGETS) → FHIR resource types.
# The summary and the export gather every section, so only a `*` scope covers them.
TARGET_RESOURCES: dict[str, str] = {
    "citizen": "Patient",
    "demographics": "Patient",
    "identity-lookup": "Patient",
    "immunization-schedule": "ImmunizationRecommendation",
    "consents": "Consent",
    "access-requests": "Consent",
    "guardians": "RelatedPerson",
    "access-log": "AuditEvent",
    "family-doctor": "CareTeam",
    "notification-preferences": "Communication",
    "summary": WILDCARD,
    "export": WILDCARD,
}

RESOURCES = frozenset(SECTION_RESOURCES.values()) | frozenset(
    value for value in TARGET_RESOURCES.values() if value != WILDCARD
) | frozenset({"Practitioner", "Organization"})

# Which clinical contexts a token may carry: by the account's role for a user's token, and
# `system` only for client credentials. Admins manage the service and read no clinical data.
ROLE_CONTEXTS: dict[str, frozenset[str]] = {
    "citizen": frozenset({"patient"}),
    "practitioner": frozenset({"user"}),
    "station": frozenset({"user"}),
    "admin": frozenset(),
}
CLIENT_CREDENTIALS_CONTEXTS = frozenset({"system"})

_SMART = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]{1,63})\.(c?r?u?d?s?)$")


@dataclass(frozen=True)
class SmartScope:
    """One parsed clinical scope."""

    context: str
    resource: str
    interactions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> SmartScope | None:
        """The scope `text` denotes, or None when it is not a valid clinical scope."""
        match = _SMART.fullmatch(text)
        if match is None or not match.group(3):
            return None
        resource = match.group(2)
        if resource != WILDCARD and resource not in RESOURCES:
            return None
        return cls(match.group(1), resource, frozenset(match.group(3)))

    def covers(self, other: SmartScope) -> bool:
        """Whether holding this scope implies holding `other`."""
        return (
            self.context == other.context
            and self.resource in (WILDCARD, other.resource)
            and other.interactions <= self.interactions
        )

    def __str__(self) -> str:
        letters = "".join(letter for letter in INTERACTIONS if letter in self.interactions)
        return f"{self.context}/{self.resource}.{letters}"


def is_valid_scope(text: str) -> bool:
    return text in IDENTITY_SCOPES or SmartScope.parse(text) is not None


def split_scope(value: str | Iterable[str] | None) -> list[str]:
    """Scope values in order, without duplicates."""
    if value is None:
        return []
    items = value.split() if isinstance(value, str) else list(value)
    return list(dict.fromkeys(item for item in items if item))


def join_scope(scopes: Iterable[str]) -> str:
    return " ".join(split_scope(scopes))


def is_covered(scope: str, allowed: Iterable[str]) -> bool:
    """Whether `scope` is one of `allowed` or narrower than one of them."""
    allowed = list(allowed)
    if scope in allowed:
        return True
    wanted = SmartScope.parse(scope)
    if wanted is None:
        return False
    return any(
        held.covers(wanted) for held in (SmartScope.parse(a) for a in allowed) if held is not None
    )


def all_covered(requested: Iterable[str], allowed: Iterable[str]) -> bool:
    allowed = list(allowed)
    return all(is_covered(scope, allowed) for scope in requested)


def allowed_contexts(*, role: str, client_credentials: bool = False) -> frozenset[str]:
    """The clinical contexts a token of this kind may carry."""
    if client_credentials:
        return CLIENT_CREDENTIALS_CONTEXTS
    return ROLE_CONTEXTS.get(role, frozenset())


def trim_for_role(
    scopes: Iterable[str], *, role: str, client_credentials: bool = False
) -> list[str]:
    """Drop the scopes this kind of token may not carry (a citizen gets no `user/` scope...)."""
    contexts = allowed_contexts(role=role, client_credentials=client_credentials)
    kept = []
    for scope in split_scope(scopes):
        if scope in IDENTITY_SCOPES:
            if not client_credentials:  # no user, no identity, no refresh
                kept.append(scope)
            continue
        parsed = SmartScope.parse(scope)
        if parsed is not None and parsed.context in contexts:
            kept.append(scope)
    return kept


def resource_name(resource: str) -> str:
    """A FHIR type (or `*`) from a FHIR type, a record section or a per-citizen target name."""
    if resource == WILDCARD or resource in RESOURCES:
        return resource
    if resource in SECTION_RESOURCES:
        return SECTION_RESOURCES[resource]
    if resource in TARGET_RESOURCES:
        return TARGET_RESOURCES[resource]
    raise ValueError(f"unknown resource {resource!r}")


def check_interaction(interaction: str) -> frozenset[str]:
    letters = frozenset(interaction)
    if not interaction or not letters <= frozenset(INTERACTIONS):
        raise ValueError(f"interaction must be letters of {INTERACTIONS!r}, not {interaction!r}")
    return letters


def grants(scopes: Iterable[str], *, context: str, resource: str, interaction: str) -> bool:
    """Whether the scopes allow `interaction` (e.g. "r", "cu") on `resource` in `context`."""
    needed = SmartScope(context, resource_name(resource), check_interaction(interaction))
    for scope in scopes:
        held = SmartScope.parse(scope)
        if held is not None and held.covers(needed):
            return True
    return False


def required_scope(*, context: str, resource: str, interaction: str) -> str:
    """The narrowest scope that would allow the operation (for `WWW-Authenticate` hints)."""
    return str(SmartScope(context, resource_name(resource), check_interaction(interaction)))
