"""Failed-login throttling and lockout, kept in the database (any app instance sees it).

Two buckets per attempt: the username typed (whether or not an account has it, so a lockout
says nothing about which usernames exist) and the client address (IPv6 by /64). A bucket
counts failures in a window; reaching the limit locks it for a while. Keys are HMACs under the
app's secret key, so the table holds neither usernames nor addresses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auth.credentials import keyed_digest
from auth.models import LoginThrottle
from core.rate_limits import address_bucket  # one unit for every budget kept per address

USER = "user"
ADDRESS = "address"


@dataclass(frozen=True)
class Limit:
    max_failures: int
    window: timedelta
    lockout: timedelta


def limits() -> dict[str, Limit]:
    """Limits from the app config (defaults: 5 per username, 100 per address, per 15 min).

    The per-address limit is high because mobile carriers put many people behind one address.
    """
    config = current_app.config
    window = timedelta(seconds=int(config.get("AUTH_LOGIN_WINDOW_SECONDS", 900)))
    lockout = timedelta(seconds=int(config.get("AUTH_LOGIN_LOCKOUT_SECONDS", 900)))
    return {
        USER: Limit(int(config.get("AUTH_LOGIN_MAX_FAILURES", 5)), window, lockout),
        ADDRESS: Limit(
            int(config.get("AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS", 100)), window, lockout
        ),
    }


def bucket_keys(*, username: str, address: str | None) -> dict[str, bytes]:
    secret = current_app.config["SECRET_KEY"]
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    return {
        USER: keyed_digest(key, "login-throttle", USER, username),
        ADDRESS: keyed_digest(key, "login-throttle", ADDRESS, address_bucket(address)),
    }


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def locked_for(*, session: Session, keys: dict[str, bytes], now: datetime) -> int | None:
    """Seconds until every bucket of this attempt is unlocked, or None when none is locked."""
    rows = session.scalars(
        select(LoginThrottle).where(LoginThrottle.key.in_(list(keys.values())))
    ).all()
    waits = [
        _seconds_until(row.locked_until, now)
        for row in rows
        if row.locked_until is not None and row.locked_until > now
    ]
    return max(waits) if waits else None


def _bucket(*, session: Session, key: bytes, kind: str, now: datetime) -> LoginThrottle:
    row = session.scalars(
        select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
    ).one_or_none()
    if row is not None:
        return row
    row = LoginThrottle(key=key, kind=kind, failures=0, window_started_at=now, lockouts=0,
                        updated_at=now)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another request created it first: use theirs.
        return session.scalars(
            select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
        ).one()
    return row


def record_failure(*, session: Session, keys: dict[str, bytes], now: datetime) -> int | None:
    """Count a failed login in every bucket; seconds locked when this failure hit a limit."""
    configured = limits()
    locked = []
    for kind, key in keys.items():
        limit = configured[kind]
        row = _bucket(session=session, key=key, kind=kind, now=now)
        if row.window_started_at + limit.window <= now or (
            row.locked_until is not None and row.locked_until <= now
        ):
            row.failures = 0
            row.window_started_at = now
            row.locked_until = None
        row.failures += 1
        row.updated_at = now
        if row.failures >= limit.max_failures:
            row.locked_until = now + limit.lockout
            row.lockouts += 1
            locked.append(_seconds_until(row.locked_until, now))
    return max(locked) if locked else None


def record_success(*, session: Session, keys: dict[str, bytes]) -> None:
    """A successful login clears its username's bucket (not the address's: one good account
    must not reset the count of an address guessing others)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys[USER]))


def purge(*, session: Session, before: datetime) -> int:
    """Forget buckets untouched since `before` (their windows and locks are long over)."""
    result = session.execute(delete(LoginThrottle).where(LoginThrottle.updated_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
