"""Portal sessions: create, find, seal and end them. No Flask request in here.

A session's secrets (during login the PKCE verifier and state, afterwards the access and
refresh tokens) are one JSON document sealed with AES-GCM under HKDF(cookie value); the row's
id is the associated data, so a sealed blob moved to another row does not open.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal.models import PortalSession

PENDING = "pending"
ACTIVE = "active"
PENDING_LIFETIME = dt.timedelta(minutes=10)
# Writing last_seen_at on every page would cost a commit per page; a minute's slack is enough.
TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class SessionSettings:
    idle: dt.timedelta
    lifetime: dt.timedelta


@dataclass
class OpenSession:
    """A session found by its cookie, with its secrets unsealed (in memory only)."""

    row: PortalSession
    cookie: str
    secrets: dict[str, Any]

    @property
    def account_id(self) -> uuid.UUID | None:
        return self.row.account_id


def new_cookie_value() -> str:
    return secrets.token_urlsafe(32)


def _digest(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode("ascii", "replace")).digest()


def _key(cookie: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"phr-portal-session").derive(cookie.encode("ascii", "replace"))


def _seal(cookie: str, row_id: uuid.UUID, document: dict[str, Any]) -> bytes:
    nonce = os.urandom(12)
    plain = json.dumps(document, separators=(",", ":")).encode("utf-8")
    return nonce + AESGCM(_key(cookie)).encrypt(nonce, plain, row_id.bytes)


def _unseal(cookie: str, row: PortalSession) -> dict[str, Any] | None:
    blob = row.sealed or b""
    try:
        plain = AESGCM(_key(cookie)).decrypt(blob[:12], blob[12:], row.id.bytes)
    except Exception:  # noqa: BLE001 - a wrong key or a damaged blob: no session
        return None
    value = json.loads(plain)
    return value if isinstance(value, dict) else None


def start_pending(*, session: Session, secrets_: dict[str, Any],
                  now: dt.datetime) -> tuple[str, PortalSession]:
    """A login in progress: returns the new cookie value and its row (the caller commits)."""
    cookie = new_cookie_value()
    row_id = uuid.uuid4()
    row = PortalSession(
        id=row_id, digest=_digest(cookie), phase=PENDING, account_id=None,
        sealed=_seal(cookie, row_id, secrets_), created_at=now, last_seen_at=now,
        expires_at=now + PENDING_LIFETIME,
    )
    session.add(row)
    return cookie, row


def find(*, session: Session, cookie: str | None, now: dt.datetime,
         settings: SessionSettings, phase: str = ACTIVE) -> OpenSession | None:
    """The live session of a cookie, or None (unknown, ended, idle too long, tampered)."""
    if not cookie or len(cookie) > 128:
        return None
    row = session.scalars(
        select(PortalSession).where(PortalSession.digest == _digest(cookie))
    ).one_or_none()
    if row is None or row.phase != phase:
        return None
    if row.expires_at <= now or (phase == ACTIVE and row.last_seen_at + settings.idle <= now):
        session.delete(row)
        session.commit()
        return None
    unsealed = _unseal(cookie, row)
    if unsealed is None:
        return None
    return OpenSession(row=row, cookie=cookie, secrets=unsealed)


def activate(*, session: Session, pending: OpenSession, account_id: uuid.UUID,
             tokens: dict[str, Any], now: dt.datetime,
             settings: SessionSettings) -> tuple[str, OpenSession]:
    """Replace a pending login by a logged-in session under a NEW cookie value (a cookie
    planted before the login is worth nothing after it). The caller commits."""
    session.delete(pending.row)
    cookie = new_cookie_value()
    row_id = uuid.uuid4()
    row = PortalSession(
        id=row_id, digest=_digest(cookie), phase=ACTIVE, account_id=account_id,
        sealed=_seal(cookie, row_id, tokens), created_at=now, last_seen_at=now,
        expires_at=now + settings.lifetime,
    )
    session.add(row)
    return cookie, OpenSession(row=row, cookie=cookie, secrets=tokens)


def store_tokens(*, session: Session, open_session: OpenSession,
                 tokens: dict[str, Any]) -> None:
    """Keep rotated tokens (the caller commits)."""
    open_session.secrets = tokens
    open_session.row.sealed = _seal(open_session.cookie, open_session.row.id, tokens)


def touch(*, session: Session, open_session: OpenSession, now: dt.datetime) -> bool:
    """Move the idle clock; True when the row changed (the caller commits)."""
    if now - open_session.row.last_seen_at < TOUCH_EVERY:
        return False
    open_session.row.last_seen_at = now
    return True


def end(*, session: Session, open_session: OpenSession) -> None:
    session.delete(open_session.row)


def purge_expired(*, session: Session, now: dt.datetime, settings: SessionSettings) -> int:
    """Delete ended sessions (the caller commits); returns how many."""
    result = session.execute(
        delete(PortalSession).where(
            (PortalSession.expires_at <= now)
            | ((PortalSession.phase == ACTIVE)
               & (PortalSession.last_seen_at <= now - settings.idle))
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
