"""The consent layer's service functions, in one place for callers (API, seed, other packages).

Each takes the session, the actor and the request context as keyword arguments, authorizes
through the decision point (which audits), and leaves the commit to the caller.
"""

from consent.access_log import LogPage, flag_event, read_access_log
from consent.access_requests import (
    answer_access_request,
    list_citizen_requests,
    list_practitioner_requests,
    request_access,
)
from consent.break_glass import list_for_review, mark_reviewed, open_break_glass
from consent.consents import (
    ConsentTerms,
    consent_status,
    grant_consent,
    grantee_names,
    list_consents,
    revoke_consent,
)
from consent.guardians import (
    GuardianView,
    PersonRef,
    add_guardian,
    claim_dependant,
    dependants_of,
    describe_guardianship,
    list_guardians,
    recipients_for,
    revoke_guardian,
)

__all__ = [
    "ConsentTerms",
    "GuardianView",
    "LogPage",
    "PersonRef",
    "add_guardian",
    "answer_access_request",
    "claim_dependant",
    "consent_status",
    "dependants_of",
    "describe_guardianship",
    "flag_event",
    "grant_consent",
    "grantee_names",
    "list_citizen_requests",
    "list_consents",
    "list_for_review",
    "list_guardians",
    "list_practitioner_requests",
    "mark_reviewed",
    "open_break_glass",
    "read_access_log",
    "recipients_for",
    "request_access",
    "revoke_consent",
    "revoke_guardian",
]
