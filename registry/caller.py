"""Who a request acts as: one type, built once per request at the edge (auth, from the token)
and passed as it is to services, the decision point and the pure policy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from uuid import UUID

ROLES = frozenset({"citizen", "practitioner", "station", "admin"})

_SOURCES = {"citizen": "citizen-reported", "station": "station"}


@dataclass(frozen=True)
class Caller:
    """The role and ids a token carries, the client and request it came with, and (for a
    citizen) the person they act for in this request: themselves, a dependant or a principal
    of a proxy. The policy reads the first five fields; the audit the rest."""

    role: str
    citizen_id: UUID | None = None
    practitioner_id: UUID | None = None
    facility_ids: frozenset[UUID] = field(default_factory=frozenset)
    # The citizen a guardian or proxy acts for; None or citizen_id means the citizen themselves.
    acting_for: UUID | None = None
    account_id: UUID | None = None  # None for a facility system's client-credentials token
    client_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    token_id: UUID | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "facility_ids", frozenset(self.facility_ids))

    def acting_for_citizen(self, citizen_id: UUID | None) -> Caller:
        """This caller asking about `citizen_id`: a citizen acts for them (the policy decides
        whether they may, as guardian or proxy); staff never act for someone."""
        acting_for = citizen_id if self.role == "citizen" else None
        if acting_for == self.acting_for:
            return self
        return dataclasses.replace(self, acting_for=acting_for)

    @property
    def source(self) -> str:
        """Where an entry written by this caller comes from."""
        return _SOURCES.get(self.role, "clinician")
