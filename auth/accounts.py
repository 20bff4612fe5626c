"""Accounts: creation, password changes and the lookup behind the login form.

Citizens log in with their health ID, which is found through the vault's blind index; the
account row keeps only the citizen id. Staff log in with a username that must start with a
letter, so it can never be mistaken for a health ID.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from auth import clock
from auth.models import ROLES, Account, OAuthToken
from auth.passwords import hash_password, password_problems
from registry.models import Citizen, Facility, Practitioner
from registry.reference.health_id import normalize_health_id
from registry.services import find_citizen_by_health_id

USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")
_HEALTH_ID_PATTERN = re.compile(r"^\d{12}$")


class AccountError(ValueError):
    """An account cannot be created or changed; `field` and `key` say why (catalogue key)."""

    def __init__(self, field: str, key: str) -> None:
        super().__init__(f"{field}: {key}")
        self.field = field
        self.key = key


def normalize_username(value: str) -> str:
    """What the login form's `username` is compared as: a health ID's digits, or lowercase."""
    value = value.strip()
    compact = normalize_health_id(value)
    if _HEALTH_ID_PATTERN.fullmatch(compact):
        return compact
    return value.lower()


def is_health_id(username: str) -> bool:
    return bool(_HEALTH_ID_PATTERN.fullmatch(username))


def find_login_account(*, session: Session, username: str) -> Account | None:
    """The account a login form's username names (health ID or staff username), if any."""
    name = normalize_username(username)
    if not name:
        return None
    if is_health_id(name):
        citizen = find_citizen_by_health_id(session=session, health_id=name)
        if citizen is None:
            return None
        return session.scalars(
            select(Account).where(Account.citizen_id == citizen.id)
        ).one_or_none()
    if not USERNAME_PATTERN.fullmatch(name):
        return None
    return session.scalars(select(Account).where(Account.username == name)).one_or_none()


def _check_links(
    *,
    session: Session,
    role: str,
    citizen_id: uuid.UUID | None,
    username: str | None,
    practitioner_id: uuid.UUID | None,
    facility_id: uuid.UUID | None,
) -> None:
    if role not in ROLES:
        raise AccountError("role", "unknown-role")
    if role == "citizen":
        if citizen_id is None or session.get(Citizen, citizen_id) is None:
            raise AccountError("citizen_id", "unknown-citizen")
        if username is not None:
            raise AccountError("username", "citizens-log-in-with-health-id")
        if practitioner_id is not None or facility_id is not None:
            raise AccountError("role", "citizen-with-staff-links")
        return
    if citizen_id is not None:
        raise AccountError("citizen_id", "staff-with-citizen-link")
    if username is None or not USERNAME_PATTERN.fullmatch(username):
        raise AccountError("username", "invalid-username")
    if role == "practitioner" and practitioner_id is None:
        raise AccountError("practitioner_id", "required")
    if role == "station" and facility_id is None:
        raise AccountError("facility_id", "required")
    if practitioner_id is not None and session.get(Practitioner, practitioner_id) is None:
        raise AccountError("practitioner_id", "unknown-practitioner")
    if facility_id is not None and session.get(Facility, facility_id) is None:
        raise AccountError("facility_id", "unknown-facility")


def create_account(
    *,
    session: Session,
    role: str,
    password: str,
    citizen_id: uuid.UUID | None = None,
    username: str | None = None,
    practitioner_id: uuid.UUID | None = None,
    facility_id: uuid.UUID | None = None,
) -> Account:
    """Create a login. The caller commits; the password is only ever stored as argon2id."""
    username = normalize_username(username) if username is not None else None
    _check_links(
        session=session, role=role, citizen_id=citizen_id, username=username,
        practitioner_id=practitioner_id, facility_id=facility_id,
    )
    problems = password_problems(password, username=username)
    if problems:
        raise AccountError("password", problems[0])
    if username is not None and session.scalars(
        select(Account.id).where(Account.username == username)
    ).first() is not None:
        raise AccountError("username", "taken")
    if citizen_id is not None and session.scalars(
        select(Account.id).where(Account.citizen_id == citizen_id)
    ).first() is not None:
        raise AccountError("citizen_id", "has-account")
    if practitioner_id is not None and session.scalars(
        select(Account.id).where(Account.practitioner_id == practitioner_id)
    ).first() is not None:
        raise AccountError("practitioner_id", "has-account")
    now = clock.now()
    account = Account(
        id=uuid.uuid4(), role=role, username=username, citizen_id=citizen_id,
        practitioner_id=practitioner_id, facility_id=facility_id,
        password_hash=hash_password(password), password_changed_at=now, active=True,
        created_at=now,
    )
    session.add(account)
    return account


def set_password(*, session: Session, account: Account, password: str) -> None:
    """Replace the password and end every session of the account (its tokens are revoked)."""
    problems = password_problems(password, username=account.username)
    if problems:
        raise AccountError("password", problems[0])
    now = clock.now()
    account.password_hash = hash_password(password)
    account.password_changed_at = now
    revoke_account_tokens(session=session, account_id=account.id, reason="password-changed")


def deactivate_account(*, session: Session, account: Account) -> None:
    """Stop the account from logging in; its tokens stop working on the next request."""
    account.active = False
    revoke_account_tokens(session=session, account_id=account.id, reason="account-disabled")


def revoke_account_tokens(*, session: Session, account_id: uuid.UUID, reason: str) -> int:
    result = session.execute(
        update(OAuthToken)
        .where(OAuthToken.account_id == account_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=clock.now(), revoked_reason=reason)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
