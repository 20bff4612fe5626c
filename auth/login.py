"""Checking a username and password, throttled, with one code path for every failure.

An unknown username, a disabled account and a wrong password take the same path: one argon2
verification (a dummy one when there is no account), one failure counted, the same answer.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from auth import clock, throttle
from auth.accounts import find_login_account, normalize_username
from auth.errors import LoginLocked
from auth.models import Account
from auth.passwords import burn_verification, hash_password, needs_rehash, verify_password

log = logging.getLogger("phr.auth")


def authenticate(
    *, session: Session, username: str, password: str, address: str | None
) -> Account | None:
    """The account when the credentials are right; None when not. Raises LoginLocked (429)
    while the username or the address is locked, and on the failure that locks it.

    Commits the session: failure counters must persist whatever the caller does next.
    """
    now = clock.now()
    keys = throttle.bucket_keys(username=normalize_username(username), address=address)
    wait = throttle.locked_for(session=session, keys=keys, now=now)
    if wait is not None:
        session.rollback()
        raise LoginLocked(wait)

    account = find_login_account(session=session, username=username)
    if account is None:
        burn_verification(password)
    elif not verify_password(account.password_hash, password) or not account.active:
        account = None

    if account is None:
        locked = throttle.record_failure(session=session, keys=keys, now=now)
        session.commit()
        log.info("login failed", extra={"locked": locked is not None})
        if locked is not None:
            raise LoginLocked(locked)
        return None

    throttle.record_success(session=session, keys=keys)
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    account.last_login_at = now
    session.commit()
    log.info("login succeeded", extra={"account_id": str(account.id), "role": account.role})
    return account
