"""What can cause a notification, and on which channels it goes out unless the person says no."""

from __future__ import annotations

from dataclasses import dataclass

PUSH = "push"
SMS = "sms"
EMAIL = "email"
EXTERNAL_CHANNELS = (PUSH, SMS, EMAIL)
# The in-app inbox always receives every notification: the other channels only say "open the
# app", so turning the inbox off would leave them pointing at nothing.
IN_APP = "in_app"

PLATFORM_FCM = "fcm"
PLATFORM_WEBPUSH = "webpush"
PLATFORMS = (PLATFORM_FCM, PLATFORM_WEBPUSH)


@dataclass(frozen=True, slots=True)
class Trigger:
    code: str
    defaults: frozenset[str]  # external channels on by default
    urgent: bool = False  # delivered during quiet hours too


VACCINATION_DUE = "vaccination-due"
VACCINATION_OVERDUE = "vaccination-overdue"
ENTRY_CREATED = "entry-created"
RECORD_ACCESSED = "record-accessed"
BREAK_GLASS = "break-glass"
ACCESS_REQUESTED = "access-requested"
ACCESS_REQUEST_ANSWERED = "access-request-answered"
CONSENT_EXPIRING = "consent-expiring"
PERIODIC_EXAM_DUE = "periodic-exam-due"
# Relationship changes (DESIGN §5 "Relationships are the perimeter"): told to everyone whose
# access they change.
GUARDIAN_CLAIMED = "guardian-claimed"
GUARDIAN_CLAIM_ANSWERED = "guardian-claim-answered"
GUARDIANS_CHANGED = "guardians-changed"
FAMILY_DOCTOR_CHANGED = "family-doctor-changed"
CONSENT_GRANTED = "consent-granted"
CONSENT_REVOKED = "consent-revoked"
ACCESS_FLAG_REVIEWED = "access-flag-reviewed"

TRIGGERS: dict[str, Trigger] = {
    t.code: t
    for t in (
        # Bringing a child back for the next dose is the most valuable message we send: SMS too,
        # since many parents in rural communes do not install apps.
        Trigger(VACCINATION_DUE, frozenset({PUSH, SMS})),
        Trigger(VACCINATION_OVERDUE, frozenset({PUSH, SMS})),
        Trigger(ENTRY_CREATED, frozenset({PUSH})),
        Trigger(RECORD_ACCESSED, frozenset({PUSH, EMAIL})),
        # The citizen must learn at once that someone opened their record in an emergency.
        Trigger(BREAK_GLASS, frozenset({PUSH, SMS, EMAIL}), urgent=True),
        Trigger(ACCESS_REQUESTED, frozenset({PUSH})),
        Trigger(ACCESS_REQUEST_ANSWERED, frozenset({PUSH})),
        Trigger(CONSENT_EXPIRING, frozenset({PUSH, EMAIL})),
        Trigger(PERIODIC_EXAM_DUE, frozenset({PUSH})),
        # Someone asks to become a child's guardian: the parents must hear of it, SMS too.
        Trigger(GUARDIAN_CLAIMED, frozenset({PUSH, SMS})),
        Trigger(GUARDIAN_CLAIM_ANSWERED, frozenset({PUSH})),
        Trigger(GUARDIANS_CHANGED, frozenset({PUSH, SMS})),
        Trigger(FAMILY_DOCTOR_CHANGED, frozenset({PUSH})),
        Trigger(CONSENT_GRANTED, frozenset({PUSH})),
        Trigger(CONSENT_REVOKED, frozenset({PUSH})),
        Trigger(ACCESS_FLAG_REVIEWED, frozenset({PUSH, EMAIL})),
    )
}


# Account notices (auth/account_codes.py, notifications/account_notices.py): a one-time code,
# and the warnings that an account was opened or its password reset. They go to the person's
# registered phone whatever their preferences say (a code is how an account is opened; the
# warnings are how a takeover is noticed), at once (urgent), and are not among the choices the
# preferences offer (not in TRIGGERS). The inbox holds them too, without the code.
ACTIVATION_CODE = "account-activation-code"
PASSWORD_RESET_CODE = "password-reset-code"  # noqa: S105 - a trigger code
ACCOUNT_ACTIVATED = "account-activated"
PASSWORD_RESET = "password-reset"  # noqa: S105 - a trigger code

ACCOUNT_NOTICES: dict[str, Trigger] = {
    code: Trigger(code, frozenset({SMS}), urgent=True)
    for code in (ACTIVATION_CODE, PASSWORD_RESET_CODE, ACCOUNT_ACTIVATED, PASSWORD_RESET)
}


def get_trigger(code: str) -> Trigger:
    """The trigger with this code (KeyError for an unknown one: a programming error)."""
    trigger = TRIGGERS.get(code) or ACCOUNT_NOTICES.get(code)
    if trigger is None:
        raise KeyError(code)
    return trigger
