"""Idempotency-Key: a create replayed with the same key and body returns the first response.

Keys are scoped to (client, account) and stored only as an HMAC; the stored response is
encrypted under the citizen's data key like the record itself. The record is written in the
same transaction as the change it answers for, so a worker killed after the commit leaves a
replayable answer, and a concurrent duplicate loses on the unique index and replays it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import request
from sqlalchemy import Integer, LargeBinary, String, Uuid, bindparam, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import UTCDateTime, db, utcnow
from core.encryption import EncryptedField, EncryptedModelMixin, encrypted_column, vault_settings
from core.errors import BadRequest, Message, ValidationFailed

HEADER = "Idempotency-Key"
RETENTION = dt.timedelta(hours=48)  # the contract promises at least 24 h
_SANE_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")


class IdempotencyRecord(EncryptedModelMixin, db.Model):
    __tablename__ = "idempotency_records"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    scope: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    response_status: Mapped[int] = mapped_column(Integer)
    response_ct: Mapped[bytes] = encrypted_column(nullable=False)
    resource_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)

    response = EncryptedField("response_ct", kind="json")


@dataclass(frozen=True)
class Replay:
    status: int
    body: Mapping[str, Any]
    # Whom and what the first answer was about: a caller re-checks its permission on them
    # before serving the answer again (a stored answer holds what was created).
    citizen_id: uuid.UUID | None = None
    resource_id: str | None = None


def header_key() -> str | None:
    """The request's Idempotency-Key, validated; None when absent."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not _SANE_KEY.fullmatch(raw):
        raise BadRequest(Message("problem.invalid-idempotency-key.detail"),
                         code="invalid-idempotency-key")
    return raw


def _mac(domain: bytes, *parts: str) -> bytes:
    key = vault_settings().blind_index_key
    # surrogatepass: the fingerprint of a body with an unpaired surrogate (json_body refuses
    # them; this is the second line) is computed, not a 500; valid text encodes as plain UTF-8.
    encoded = [p.encode("utf-8", "surrogatepass") for p in parts]
    message = domain + b"".join(len(p).to_bytes(4, "big") + p for p in encoded)
    return hmac.digest(key, message, hashlib.sha256)


def scope_of(*, client_id: str | None, account_id: object, key: str) -> bytes:
    return _mac(b"phr-vn/idempotency/scope/v1", client_id or "-", str(account_id or "-"), key)


def fingerprint_of(*, method: str, route: str, body: Any) -> bytes:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                           default=str)
    return _mac(b"phr-vn/idempotency/request/v1", method, route, canonical)


def lookup(session: Session, *, scope: bytes, fingerprint: bytes) -> Replay | None:
    """The first response for this key, or None; 422 when the key was used for another body."""
    # On PostgreSQL the key is unique per (scope, citizen) (core/partitioning): one key reused
    # at the same instant for two persons' creates leaves two rows; the matching one answers.
    records = list(session.scalars(_lookup_query(), {"scope": scope}))
    if not records:
        return None
    record = next((r for r in records if hmac.compare_digest(r.fingerprint, fingerprint)),
                  records[0])
    if record.expires_at <= utcnow():
        session.delete(record)
        session.flush()
        return None
    if not hmac.compare_digest(record.fingerprint, fingerprint):
        raise _key_reused()
    return _replay(record)


def lookup_many(
    session: Session, keys: Sequence[tuple[bytes, bytes]]
) -> dict[bytes, Replay | ValidationFailed]:
    """`lookup` for many (scope, fingerprint) pairs in one query (a batch's items): per scope
    the first answer, or the 422 of a key used for another body; unknown and expired keys are
    absent (an expired one is removed, so the key can be used again)."""
    if not keys:
        return {}
    records = session.scalars(_lookup_many_query(), {"scopes": [scope for scope, _ in keys]})
    found: dict[bytes, IdempotencyRecord] = {}
    wanted = dict(keys)
    for record in records:  # two rows of one scope: see `lookup`; the matching one answers
        if record.scope not in found or hmac.compare_digest(record.fingerprint,
                                                             wanted[record.scope]):
            found[record.scope] = record
    now = utcnow()
    expired = [record for record in found.values() if record.expires_at <= now]
    for record in expired:
        session.delete(record)
        del found[record.scope]
    if expired:
        session.flush()
    answers: dict[bytes, Replay | ValidationFailed] = {}
    for scope, fingerprint in keys:
        record = found.get(scope)
        if record is not None:
            answers[scope] = (_replay(record)
                              if hmac.compare_digest(record.fingerprint, fingerprint)
                              else _key_reused())
    return answers


def _replay(record: IdempotencyRecord) -> Replay:
    return Replay(status=record.response_status, body=record.response,
                  citizen_id=record.citizen_id, resource_id=record.resource_id)


def _key_reused() -> ValidationFailed:
    return ValidationFailed(Message("problem.idempotency-key-reused.detail"),
                            code="idempotency-key-reused")


@functools.cache
def _lookup_query() -> Any:
    # Built once: every create with an Idempotency-Key runs it.
    return select(IdempotencyRecord).where(IdempotencyRecord.scope == bindparam("scope"))


@functools.cache
def _lookup_many_query() -> Any:
    return select(IdempotencyRecord).where(
        IdempotencyRecord.scope.in_(bindparam("scopes", expanding=True)))


def remember(
    session: Session,
    *,
    scope: bytes,
    fingerprint: bytes,
    citizen_id: uuid.UUID,
    status: int,
    body: Mapping[str, Any],
    resource_id: str | None = None,
    stage: bool = True,
) -> IdempotencyRecord:
    """Add the response to the caller's transaction (it commits with the change); with
    `stage=False` the caller inserts it (a batch, with `core.db.insert_unstaged`)."""
    now = utcnow()
    record = IdempotencyRecord(
        id=uuid.uuid4(), citizen_id=citizen_id, scope=scope, fingerprint=fingerprint,
        response_status=status, resource_id=resource_id, created_at=now,
        expires_at=now + RETENTION,
    )
    record.response = dict(body)
    if stage:
        session.add(record)
    return record


def purge_expired(session: Session, *, now: dt.datetime | None = None) -> int:
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= (now or utcnow()))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
