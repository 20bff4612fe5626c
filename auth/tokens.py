"""Token storage: lifetimes, issuing rows, lookups by digest, rotation claims, revocation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from auth import clock
from auth.credentials import digest
from auth.models import Account, AuthorizationCode, OAuthClient, OAuthToken

# DESIGN.md §4 and issue 5: access tokens live at most 15 minutes, codes at most 60 seconds.
MAX_ACCESS_TOKEN_SECONDS = 900
MAX_CODE_SECONDS = 60


@dataclass(frozen=True)
class TokenSettings:
    access_token: timedelta
    refresh_token: timedelta  # idle: each rotation starts a new period
    session_max: timedelta  # absolute: a family ends this long after the login
    refresh_grace: timedelta  # a lost rotation response may be fetched again this long
    code: timedelta
    id_token: timedelta


def settings() -> TokenSettings:
    """Lifetimes from the app config, capped where the design sets a maximum."""
    config = current_app.config
    access = int(config.get("OAUTH_ACCESS_TOKEN_SECONDS", MAX_ACCESS_TOKEN_SECONDS))
    code = int(config.get("OAUTH_CODE_SECONDS", MAX_CODE_SECONDS))
    return TokenSettings(
        access_token=timedelta(seconds=min(max(access, 1), MAX_ACCESS_TOKEN_SECONDS)),
        refresh_token=timedelta(
            seconds=int(config.get("OAUTH_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600))
        ),
        session_max=timedelta(seconds=int(config.get("OAUTH_SESSION_MAX_SECONDS",
                                                     180 * 24 * 3600))),
        refresh_grace=timedelta(seconds=int(config.get("OAUTH_REFRESH_GRACE_SECONDS", 60))),
        code=timedelta(seconds=min(max(code, 1), MAX_CODE_SECONDS)),
        id_token=timedelta(seconds=int(config.get("OAUTH_ID_TOKEN_SECONDS", 300))),
    )


def add_token(
    *,
    session: Session,
    token: dict[str, Any],
    client: OAuthClient,
    grant_type: str,
    account: Account | None,
    code: AuthorizationCode | None = None,
    parent: OAuthToken | None = None,
) -> OAuthToken:
    """Store the digests of a freshly generated token response as one row of its family."""
    now = clock.now()
    lifetimes = settings()
    row_id = uuid.uuid4()
    if code is not None:
        family_id, auth_time = code.id, code.auth_time
    elif parent is not None:
        family_id, auth_time = parent.family_id, parent.auth_time
    else:
        family_id, auth_time = row_id, None
    refresh = token.get("refresh_token")
    refresh_expires = None
    if refresh:
        refresh_expires = now + lifetimes.refresh_token
        if auth_time is not None:
            refresh_expires = min(refresh_expires, auth_time + lifetimes.session_max)
    row = OAuthToken(
        id=row_id, family_id=family_id, parent_id=parent.id if parent else None,
        client_id=client.client_id, account_id=account.id if account else None,
        grant_type=grant_type, scope=token.get("scope", ""),
        access_token_hash=digest(token["access_token"]),
        refresh_token_hash=digest(refresh) if refresh else None,
        issued_at=now, access_expires_at=now + timedelta(seconds=int(token["expires_in"])),
        refresh_expires_at=refresh_expires, auth_time=auth_time,
    )
    session.add(row)
    session.flush()
    return row


def find_by_access_token(*, session: Session, value: str) -> OAuthToken | None:
    return session.scalars(
        select(OAuthToken).where(OAuthToken.access_token_hash == digest(value))
    ).one_or_none()


def find_by_refresh_token(*, session: Session, value: str) -> OAuthToken | None:
    return session.scalars(
        select(OAuthToken)
        .where(OAuthToken.refresh_token_hash == digest(value))
        .execution_options(populate_existing=True)
    ).one_or_none()


def refresh_usable(row: OAuthToken, now: datetime) -> bool:
    """Not revoked and not expired (a rotated token is still "usable" for replay handling)."""
    return (
        row.revoked_at is None
        and row.refresh_expires_at is not None
        and row.refresh_expires_at > now
    )


def claim_rotation(*, session: Session, row: OAuthToken, now: datetime) -> bool:
    """Mark a refresh token used, atomically: False when another request rotated it first."""
    result = session.execute(
        update(OAuthToken)
        .where(OAuthToken.id == row.id, OAuthToken.refresh_rotated_at.is_(None),
               OAuthToken.revoked_at.is_(None))
        .values(refresh_rotated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    row.refresh_rotated_at = now
    return True


def claim_code(*, session: Session, code: AuthorizationCode, now: datetime) -> bool:
    """Mark a code used, atomically: False when it was used already (a replay)."""
    result = session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == code.id, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    code.used_at = now
    return True


def revoke_family(*, session: Session, family_id: uuid.UUID, reason: str) -> int:
    """Revoke every token of a family (a login's whole chain of rotations)."""
    result = session.execute(
        update(OAuthToken)
        .where(OAuthToken.family_id == family_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=clock.now(), revoked_reason=reason, successor_ct=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class TokenMatch:
    """A stored token found by one of its two values; Authlib's TokenMixin for that value."""

    row: OAuthToken
    kind: str  # "access_token" | "refresh_token"

    def check_client(self, client: OAuthClient) -> bool:
        return self.row.check_client(client)

    def get_scope(self) -> str:
        return self.row.scope

    def get_client_id(self) -> str:
        return self.row.client_id

    def expires_at(self) -> datetime | None:
        if self.kind == "refresh_token":
            return self.row.refresh_expires_at
        return self.row.access_expires_at

    def get_expires_in(self) -> int:
        expires = self.expires_at()
        if expires is None:
            return 0
        return max(0, int((expires - clock.now()).total_seconds()))

    def is_expired(self) -> bool:
        expires = self.expires_at()
        return expires is None or expires <= clock.now()

    def is_revoked(self) -> bool:
        # A rotated refresh token is spent: it is not active any more for introspection.
        if self.kind == "refresh_token" and self.row.refresh_rotated_at is not None:
            return True
        return self.row.revoked_at is not None


def find_token(*, session: Session, value: str) -> TokenMatch | None:
    """The token whose access or refresh value this is (RFC 7009/7662 lookups; both digests
    are unique and indexed, so a `token_type_hint` would not make this cheaper)."""
    hashed = digest(value)
    row = session.scalars(
        select(OAuthToken).where(
            or_(OAuthToken.access_token_hash == hashed, OAuthToken.refresh_token_hash == hashed)
        )
    ).first()
    if row is None:
        return None
    kind = "access_token" if row.access_token_hash == hashed else "refresh_token"
    return TokenMatch(row=row, kind=kind)
