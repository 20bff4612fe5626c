"""Who an account is, in words: display names and OpenID Connect claims."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from auth.models import Account
from core.encryption import ERASED
from registry.models import Citizen, Practitioner


def display_name(*, session: Session, account: Account) -> str | None:
    """The citizen's name (decrypted), the practitioner's name, or the staff username."""
    if account.citizen_id is not None:
        citizen = session.get(Citizen, account.citizen_id)
        name = citizen.full_name if citizen is not None else None
        return None if name is None or name is ERASED else str(name)
    if account.practitioner_id is not None:
        practitioner = session.get(Practitioner, account.practitioner_id)
        if practitioner is not None:
            return practitioner.full_name
    return account.username


def preferred_locale(*, session: Session, account: Account) -> str:
    if account.citizen_id is not None:
        citizen = session.get(Citizen, account.citizen_id)
        if citizen is not None and citizen.preferred_language in ("vi", "en"):
            return citizen.preferred_language
    return "vi"


def user_claims(*, session: Session, account: Account, scopes: list[str]) -> dict[str, Any]:
    """OIDC claims for the granted scopes: `sub` always, name and locale with `profile`.

    Never the health ID: it is a personal identifier, and `sub` (the account id) suffices.
    """
    claims: dict[str, Any] = {"sub": str(account.id)}
    if "profile" in scopes:
        name = display_name(session=session, account=account)
        if name:
            claims["name"] = name
        claims["locale"] = preferred_locale(session=session, account=account)
    return claims
