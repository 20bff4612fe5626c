"""One-time account codes: a station's activation code, and a password-reset code by SMS.

A code is eight digits (easy to type on a phone and to print), single use, short-lived
(ACCOUNT_ACTIVATION_HOURS, PASSWORD_RESET_MINUTES), and dies after five wrong tries; a new code
of a person supersedes their older unused ones of the same purpose.

Where the digits are: nowhere at rest. A code is derived from its row's id, person and purpose
by an HMAC under a key derived from SECRET_KEY, so the SMS can be written at delivery time
(notifications/account_notices.py) from the row's id alone, and the row keeps only a second
HMAC of the digits (under another derived key) to check them against. With eight digits the
two are equally strong: whoever holds SECRET_KEY and the table could try the 10^8 values of
any keyed hash as fast as they could recompute the derivation.

Every check and every "forgot password" request goes through the login throttle's buckets (per
health ID and per client address, under names of their own), and every way to fail gives the
same answer: an unknown health ID, no code, a wrong, expired, used or burned code are the same
"code or health ID is not valid".
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from auth import clock, throttle
from auth.accounts import (
    AccountError,
    create_account,
    is_health_id,
    normalize_username,
    set_password,
)
from auth.credentials import keyed_digest
from auth.models import ACCOUNT_CODE_PURPOSES, Account, AccountCode
from core.errors import Message, TooManyRequests
from core.events import DomainEvent, emit
from registry.models import Citizen
from registry.services import find_citizen_by_health_id

log = logging.getLogger("phr.auth")

ACTIVATION, PASSWORD_RESET = ACCOUNT_CODE_PURPOSES
CODE_DIGITS = 8
MAX_WRONG_TRIES = 5
SUPERSEDED = "superseded"
BURNED = "burned"

# Domain events (core/events.py) the notifications package turns into SMS to the person's
# registered phone. They carry ids only: the code itself is re-derived when the SMS is written.
CODE_ISSUED = "account.code-issued"  # data: code_id, purpose
ACCOUNT_ACTIVATED = "account.activated"  # data: account_id
PASSWORD_RESET_DONE = "account.password-reset"  # noqa: S105  data: account_id, code_id

# A "forgot password" answer never comes sooner than this, whether a code was sent or not: the
# time it takes must not tell whether the health ID has an account.
FORGOT_MIN_SECONDS = 0.25

_CODE_BUCKETS = "account-code"
_FORGOT_BUCKETS = "account-forgot"


class CodesLocked(TooManyRequests):
    """Too many wrong codes, or too many requests, for this health ID or from this address."""

    code = "account-codes-locked"

    def __init__(self, retry_after: int, **kwargs: Any) -> None:
        kwargs.setdefault("detail", Message("problem.account-codes-locked.detail",
                                            minutes=max(1, -(-int(retry_after) // 60))))
        super().__init__(retry_after, **kwargs)


@dataclass(frozen=True)
class IssuedCode:
    """A code just issued: the digits are shown once (printed, or sent) and never stored."""

    id: uuid.UUID
    purpose: str
    code: str
    expires_at: datetime


# --- the code itself ------------------------------------------------------------------------


def _key(label: str) -> bytes:
    secret = current_app.config["SECRET_KEY"]
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    return hmac.new(key, b"phr-account-code\x00" + label.encode(), hashlib.sha256).digest()


def _subject(code_id: uuid.UUID, citizen_id: uuid.UUID, purpose: str) -> str:
    return f"{code_id}|{citizen_id}|{purpose}"


def derive_code(code_id: uuid.UUID, citizen_id: uuid.UUID, purpose: str) -> str:
    """The digits of a code (what the SMS says): an HMAC of the row, never stored."""
    mac = hmac.new(_key("digits"), _subject(code_id, citizen_id, purpose).encode(),
                   hashlib.sha256).digest()
    return f"{int.from_bytes(mac, 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def _code_hash(code_id: uuid.UUID, citizen_id: uuid.UUID, purpose: str, code: str) -> bytes:
    message = (_subject(code_id, citizen_id, purpose) + "|" + code).encode()
    return hmac.new(_key("check"), message, hashlib.sha256).digest()


def normalize_code(value: str) -> str:
    """The code as typed, without the spaces and dashes people put between digit groups."""
    return "".join(ch for ch in value if ch not in " -\t\u00a0")


def _well_formed(code: str) -> bool:
    return len(code) == CODE_DIGITS and code.isascii() and code.isdigit()


def lifetime(purpose: str) -> timedelta:
    config = current_app.config
    if purpose == ACTIVATION:
        return timedelta(hours=int(config.get("ACCOUNT_ACTIVATION_HOURS", 72)))
    return timedelta(minutes=int(config.get("PASSWORD_RESET_MINUTES", 15)))


# --- issuing and checking -------------------------------------------------------------------


def _supersede(session: Session, citizen_id: uuid.UUID, purpose: str, now: datetime) -> None:
    session.execute(
        update(AccountCode)
        .where(AccountCode.citizen_id == citizen_id, AccountCode.purpose == purpose,
               AccountCode.used_at.is_(None), AccountCode.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=SUPERSEDED)
    )


def issue_code(
    *,
    session: Session,
    citizen_id: uuid.UUID,
    purpose: str,
    issued_by_account_id: uuid.UUID | None = None,
    issued_by_facility_id: uuid.UUID | None = None,
    issued_by_client_id: str | None = None,
) -> IssuedCode:
    """A new code for the person (their older unused ones of the purpose end), and the event
    that sends it to their registered phone. The caller commits."""
    if purpose not in ACCOUNT_CODE_PURPOSES:
        raise ValueError(f"unknown account code purpose {purpose!r}")
    now = clock.now()
    _supersede(session, citizen_id, purpose, now)
    code_id = uuid.uuid4()
    code = derive_code(code_id, citizen_id, purpose)
    row = AccountCode(
        id=code_id, purpose=purpose, citizen_id=citizen_id,
        code_hash=_code_hash(code_id, citizen_id, purpose, code), created_at=now,
        expires_at=now + lifetime(purpose), attempts=0,
        issued_by_account_id=issued_by_account_id, issued_by_facility_id=issued_by_facility_id,
        issued_by_client_id=issued_by_client_id,
    )
    session.add(row)
    session.flush()
    emit(session, DomainEvent(name=CODE_ISSUED, citizen_id=citizen_id,
                              data={"code_id": str(code_id), "purpose": purpose}))
    log.info("account code issued", extra={"code_id": str(code_id), "purpose": purpose})
    return IssuedCode(id=code_id, purpose=purpose, code=code, expires_at=row.expires_at)


def live_code(session: Session, *, code_id: uuid.UUID) -> AccountCode | None:
    """The code if it can still be used (the SMS of an ended code is not worth sending)."""
    row = session.get(AccountCode, code_id)
    if row is None or row.used_at is not None or row.revoked_at is not None:
        return None
    return row if row.expires_at > clock.now() else None


def _current(session: Session, citizen_id: uuid.UUID, purpose: str,
             now: datetime) -> AccountCode | None:
    return session.scalars(
        select(AccountCode)
        .where(AccountCode.citizen_id == citizen_id, AccountCode.purpose == purpose,
               AccountCode.used_at.is_(None), AccountCode.revoked_at.is_(None),
               AccountCode.expires_at > now)
        .order_by(AccountCode.created_at.desc())
        .limit(1)
        .with_for_update()
    ).first()


def check_code(
    *, session: Session, citizen_id: uuid.UUID | None, purpose: str, code: str, now: datetime
) -> AccountCode | None:
    """The person's live code of the purpose, marked used, when `code` is its digits; None
    otherwise, with the wrong try counted on the live code (the fifth ends it). The caller
    commits. Without a person, the same query and hash run on nobody."""
    code = normalize_code(code)
    row = _current(session, citizen_id or uuid.uuid4(), purpose, now)
    if row is None:
        _code_hash(uuid.uuid4(), uuid.uuid4(), purpose, code)  # the same work as a real check
        return None
    expected = row.code_hash
    given = _code_hash(row.id, row.citizen_id, purpose, code)
    if _well_formed(code) and hmac.compare_digest(expected, given):
        row.used_at = now
        return row
    row.attempts += 1
    if row.attempts >= MAX_WRONG_TRIES:
        row.revoked_at = now
        row.revoked_reason = BURNED
    return None


# --- the pages' services --------------------------------------------------------------------


def _bucket_keys(kind: str, *, health_id: str, address: str | None) -> dict[str, bytes]:
    """Throttle buckets of their own (a wrong code does not lock the person's login)."""
    secret = current_app.config["SECRET_KEY"]
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    return {
        throttle.USER: keyed_digest(key, kind, throttle.USER, health_id),
        throttle.ADDRESS: keyed_digest(key, kind, throttle.ADDRESS,
                                       throttle.address_bucket(address)),
    }


def _citizen(session: Session, health_id: str) -> Citizen | None:
    return (find_citizen_by_health_id(session=session, health_id=health_id)
            if is_health_id(health_id) else None)


def _account_of(session: Session, citizen_id: uuid.UUID) -> Account | None:
    return session.scalars(select(Account).where(Account.citizen_id == citizen_id)).one_or_none()


def has_account(session: Session, citizen_id: uuid.UUID) -> bool:
    return session.scalars(
        select(Account.id).where(Account.citizen_id == citizen_id)
    ).first() is not None


def _throttled_citizen(
    session: Session, buckets: str, *, health_id: str, address: str | None, now: datetime
) -> tuple[dict[str, bytes], Citizen | None]:
    """A code form's throttle keys and the citizen its health ID names (if any). Raises
    CodesLocked while a bucket is locked, before anything is looked up."""
    name = normalize_username(health_id)
    keys = _bucket_keys(buckets, health_id=name, address=address)
    wait = throttle.locked_for(session=session, keys=keys, now=now)
    if wait is not None:
        session.rollback()
        raise CodesLocked(wait)
    return keys, _citizen(session, name)


def _redeem(
    session: Session, *, purpose: str, health_id: str, code: str, address: str | None
) -> AccountCode | None:
    """The code, used now, when it is right; None (committed: the wrong try and the throttle
    count) otherwise. Raises CodesLocked while, or as soon as, a bucket is locked."""
    now = clock.now()
    keys, citizen = _throttled_citizen(session, _CODE_BUCKETS, health_id=health_id,
                                       address=address, now=now)
    row = check_code(session=session, citizen_id=citizen.id if citizen else None,
                     purpose=purpose, code=code, now=now)
    if row is None:
        locked = throttle.record_failure(session=session, keys=keys, now=now)
        session.commit()
        log.info("account code refused", extra={"purpose": purpose, "locked": locked is not None})
        if locked is not None:
            raise CodesLocked(locked)
        return None
    throttle.record_success(session=session, keys=keys)
    return row


@dataclass(frozen=True)
class Outcome:
    """What a code page did: `account` on success, else the catalogue key of what to say."""

    account: Account | None = None
    error: str | None = None


INVALID = "account.code.invalid"
HAS_ACCOUNT = "account.code.has-account"


def activate_account(
    *, session: Session, health_id: str, code: str, password: str, address: str | None
) -> Outcome:
    """Open the person's citizen account with their activation code. Commits."""
    row = _redeem(session, purpose=ACTIVATION, health_id=health_id, code=code, address=address)
    if row is None:
        return Outcome(error=INVALID)
    try:
        account = create_account(session=session, role="citizen", password=password,
                                 citizen_id=row.citizen_id)
    except AccountError as error:
        if error.key != "has-account":
            session.rollback()  # a password the page let through: nothing is spent
            return Outcome(error=error.key)
        session.commit()  # the code is spent: an account exists, it opens nothing more
        return Outcome(error=HAS_ACCOUNT)
    session.flush()
    emit(session, DomainEvent(name=ACCOUNT_ACTIVATED, citizen_id=row.citizen_id,
                              data={"account_id": str(account.id)}))
    session.commit()
    log.info("account activated with a code", extra={"account_id": str(account.id)})
    return Outcome(account=account)


def reset_password(
    *, session: Session, health_id: str, code: str, password: str, address: str | None
) -> Outcome:
    """Set a new password with a reset code; every token of the account is revoked, and the
    login lockout of the health ID lifted (the person just proved they hold the phone).
    Commits."""
    row = _redeem(session, purpose=PASSWORD_RESET, health_id=health_id, code=code,
                  address=address)
    if row is None:
        return Outcome(error=INVALID)
    account = _account_of(session, row.citizen_id)
    if account is None or not account.active:
        session.commit()  # disabled since the code was sent: the code is spent all the same
        return Outcome(error=INVALID)
    try:
        set_password(session=session, account=account, password=password)
    except AccountError as error:
        session.rollback()
        return Outcome(error=error.key)
    login_keys = throttle.bucket_keys(username=normalize_username(health_id), address=address)
    throttle.record_success(session=session, keys=login_keys)
    emit(session, DomainEvent(name=PASSWORD_RESET_DONE, citizen_id=row.citizen_id,
                              data={"account_id": str(account.id), "code_id": str(row.id)}))
    session.commit()
    log.info("password reset with a code", extra={"account_id": str(account.id)})
    return Outcome(account=account)


def request_password_reset(*, session: Session, health_id: str, address: str | None) -> None:
    """Send a reset code to the registered phone when the health ID has an active account and
    a phone; otherwise do the same work on nobody. Every request counts in the throttle. The
    caller answers the same whatever happened. Commits."""
    started = time.monotonic()
    now = clock.now()
    keys, citizen = _throttled_citizen(session, _FORGOT_BUCKETS, health_id=health_id,
                                       address=address, now=now)
    account = _account_of(session, citizen.id) if citizen is not None else None
    if citizen is not None and account is not None and account.active \
            and citizen.phone_ct is not None:
        issue_code(session=session, citizen_id=citizen.id, purpose=PASSWORD_RESET)
    else:
        _supersede(session, uuid.uuid4(), PASSWORD_RESET, now)
        derive_code(uuid.uuid4(), uuid.uuid4(), PASSWORD_RESET)
    throttle.record_failure(session=session, keys=keys, now=now)
    session.commit()
    _wait_until(started + float(current_app.config.get("ACCOUNT_FORGOT_MIN_SECONDS",
                                                       FORGOT_MIN_SECONDS)))


def _wait_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        # Jitter too: a constant floor plus a little noise hides the rest of the difference.
        time.sleep(remaining + secrets.randbelow(20) / 1000)
