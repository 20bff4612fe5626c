"""The consent layer's service functions, in one place for callers (API, seed, other packages).

Each takes the session, the actor and the request context as keyword arguments, authorizes
through the decision point (which audits), and leaves the commit to the caller.
"""

from consent.access_log import (
    FlagForReview,
    LogPage,
    flag_event,
    list_flags_for_review,
    read_access_log,
    review_flag,
)
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
from consent.family_doctor import family_doctor_of, register_family_doctor
from consent.guardians import (
    ClaimView,
    GuardianView,
    NamedParent,
    PersonRef,
    add_guardian,
    answer_claim,
    claim_dependant,
    claim_views,
    dependants_of,
    describe_guardianship,
    list_claims,
    list_guardians,
    list_my_claims,
    name_parents_at_registration,
    read_claim,
    read_guardianship,
    recipients_for,
    revoke_guardian,
)

__all__ = [
    "ClaimView",
    "ConsentTerms",
    "FlagForReview",
    "GuardianView",
    "LogPage",
    "NamedParent",
    "PersonRef",
    "add_guardian",
    "answer_access_request",
    "answer_claim",
    "claim_dependant",
    "claim_views",
    "consent_status",
    "dependants_of",
    "describe_guardianship",
    "family_doctor_of",
    "flag_event",
    "grant_consent",
    "grantee_names",
    "list_citizen_requests",
    "list_claims",
    "list_consents",
    "list_flags_for_review",
    "list_for_review",
    "list_guardians",
    "list_my_claims",
    "list_practitioner_requests",
    "mark_reviewed",
    "name_parents_at_registration",
    "open_break_glass",
    "read_access_log",
    "read_claim",
    "read_guardianship",
    "recipients_for",
    "register_family_doctor",
    "request_access",
    "review_flag",
    "revoke_consent",
    "revoke_guardian",
]
