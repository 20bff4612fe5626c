"""Vault operations on the database: verify, KEK rotation, data-key rotation, crypto-shredding.

Each operation walks its rows in keyset-paginated batches and commits after every batch, so it
can stop anywhere (a crash, ``max_batches``) and a re-run carries on from what the database says;
nothing is remembered between runs. The session passed in should be dedicated to the operation:
it is committed and emptied batch by batch. Every encrypted model is found through the ORM
registry, so tables added by later packages are covered without changes here.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, lazyload

from core.db import db, utcnow
from core.encryption import (
    ERASED,
    KEY_ACTIVE,
    KEY_DESTROYED,
    KEY_RETIRED,
    KEY_ROTATING,
    DataKey,
    EncryptedField,
    SessionKeyRing,
    VaultSettings,
    drop_keyring,
    encrypt_value,
)
from core.vault.cipher import as_bytes, ciphertext_key_id
from core.vault.errors import KeyDestroyedError, VaultError

log = logging.getLogger("phr.vault.admin")

DEFAULT_BATCH_SIZE = 500
# Longer than the key file's re-read interval (1 s) and than a request that wrapped a new data
# key under the old KEK just before the switch and has not committed yet.
DEFAULT_KEK_GRACE_SECONDS = 5.0


@runtime_checkable
class RotatableKekProvider(Protocol):
    """A KEK source this process can change (the key file); a KMS or inline JSON cannot."""

    @property
    def active_kek_id(self) -> str: ...

    def kek_ids(self) -> frozenset[str]: ...

    def add_new_active(self) -> str: ...

    def retire(self, kek_id: str) -> bool: ...


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    failed: int
    erased: int = 0  # fields of crypto-shredded citizens: checked, unreadable by design


class KeyFileMismatchError(VaultError):
    """The configured KEKs cannot open the database's data keys (a missing or wrong key file)."""


@dataclass(frozen=True)
class KekRotationReport:
    active_kek: str
    added: bool
    rewrapped: int
    failed: int
    remaining: int
    retired: tuple[str, ...]
    done: bool


@dataclass(frozen=True)
class DataKeyRotationReport:
    resumed: bool
    started: int
    reencrypted: int
    deferred: int
    failed: int
    retired: int
    done: bool


@dataclass(frozen=True)
class ShredReport:
    citizen_id: uuid.UUID
    keys_destroyed: int
    blind_indexes_cleared: int


class _Budget:
    """Counts committed batches; ``max_batches`` None means no limit."""

    def __init__(self, max_batches: int | None) -> None:
        self.left = max_batches

    @property
    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0

    def spend(self) -> None:
        if self.left is not None:
            self.left -= 1


# Walking the encrypted models ----------------------------------------------------------------


def encrypted_models() -> dict[type[Any], tuple[EncryptedField, ...]]:
    """Every mapped class with encrypted fields (inherited ones included), by table name."""
    found: dict[type[Any], tuple[EncryptedField, ...]] = {}
    for mapper in db.Model.registry.mappers:
        cls = mapper.class_
        by_name: dict[str, EncryptedField] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                if isinstance(value, EncryptedField):
                    by_name[value.name] = value
        if by_name:
            found[cls] = tuple(by_name.values())
    return dict(sorted(found.items(), key=lambda item: item[0].__tablename__))


def _citizen_column(model: type[Any]) -> Any:
    return getattr(model, model.vault_citizen_attr)


def _batches(
    session: Session, query: Select[Any], key: Any, batch_size: int
) -> Iterator[list[Any]]:
    """Keyset pagination over ``query`` by the unique column ``key``; rows as ``scalars``."""
    last = None
    # Relationships are never needed here: no eager loads of whatever models declare.
    query = query.options(lazyload("*"))
    while True:
        page = query if last is None else query.where(key > last)
        rows = list(session.scalars(page.order_by(key).limit(batch_size)).unique())
        if not rows:
            return
        # Read before yielding: the consumer commits, which expires the rows.
        last = getattr(rows[-1], key.key)
        yield rows


def _fresh_keyring(session: Session, settings: VaultSettings) -> SessionKeyRing:
    ring = SessionKeyRing(session, settings)
    session.info["phr.keyring"] = ring
    return ring


def _preload(ring: SessionKeyRing, rows: list[Any]) -> None:
    ring.preload({row.vault_citizen_id() for row in rows})


def _end_batch(session: Session, *, commit: bool) -> None:
    if commit:
        session.commit()
    else:
        session.rollback()  # a reader must not hold one snapshot over the whole table
    session.expunge_all()
    drop_keyring(session)


# verify ---------------------------------------------------------------------------------------


def verify(
    *, session: Session, settings: VaultSettings, batch_size: int = DEFAULT_BATCH_SIZE
) -> VerifyReport:
    """Decrypt every encrypted field of every row; a shredded citizen's fields count as checked
    (and as erased). KeyFileMismatchError first when the KEKs cannot open the data keys at all:
    one clear cause instead of every field of the database reported as a failure."""
    check_key_file(session=session, settings=settings)
    checked = failed = erased = 0
    for model, fields in encrypted_models().items():
        for rows in _batches(session, select(model), model.id, batch_size):
            ring = _fresh_keyring(session, settings)
            _preload(ring, rows)
            for row in rows:
                for field in fields:
                    ciphertext = getattr(row, field.column_attr)
                    if ciphertext is None:
                        continue
                    checked += 1
                    try:
                        value = field.decrypt(row, ciphertext)  # logs and counts its failures
                    except VaultError:
                        failed += 1
                        continue
                    erased += value is ERASED
            _end_batch(session, commit=False)
    return VerifyReport(checked=checked, failed=failed, erased=erased)


def check_key_file(*, session: Session, settings: VaultSettings) -> None:
    """Raise KeyFileMismatchError when the configured KEKs open none of the database's data
    keys: a restore with another key file, or with none (development then generates a fresh
    one). A KEK missing for some keys only is damage verify reports field by field. Ids and
    counts only in the message, never key material."""
    provider = settings.provider
    held = provider.kek_ids()
    live = DataKey.wrapped_key.is_not(None)
    by_kek = dict(session.execute(
        select(DataKey.kek_id, func.count()).where(live).group_by(DataKey.kek_id)
    ).all())
    missing = {kek_id: count for kek_id, count in by_kek.items() if kek_id not in held}
    wrong = []
    for kek_id in sorted(set(by_kek) - set(missing)):
        sample = session.scalar(
            select(DataKey.wrapped_key).where(live, DataKey.kek_id == kek_id).limit(1))
        if sample is None:
            continue  # rewrapped by a rotation meanwhile
        try:
            provider.unwrap(kek_id, as_bytes(sample))
        except VaultError:
            wrong.append(kek_id)
            continue
        session.rollback()
        return  # this key file opens data keys of this database
    session.rollback()
    if wrong:
        raise KeyFileMismatchError(
            f"the configured key file ({_source(provider)}) holds KEK {', '.join(wrong)} but "
            "it does not open this database's data keys: the key file is not the one that "
            "belongs with this database")
    if missing:
        raise KeyFileMismatchError(
            f"{sum(missing.values())} data keys are wrapped under KEK "
            f"{', '.join(sorted(missing))}, which the configured key file "
            f"({_source(provider)}) does not hold: give the key file that belongs with this "
            "database (VAULT_KEK_FILE)")


def _source(provider: Any) -> str:
    path = getattr(provider, "path", None)
    return str(path) if path is not None else type(provider).__name__


# KEK rotation ---------------------------------------------------------------------------------


def _live_keys_not_under(kek_id: str) -> Select[Any]:
    return select(DataKey).where(DataKey.wrapped_key.is_not(None), DataKey.kek_id != kek_id)


def _count(session: Session, query: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _rewrap_pass(
    *, session: Session, settings: VaultSettings, batch_size: int, budget: _Budget
) -> tuple[int, int, bool]:
    """Rewrap every live data key not under the active KEK; (rewrapped, failed, complete)."""
    provider = settings.provider
    rewrapped = failed = 0
    query = _live_keys_not_under(provider.active_kek_id)
    for rows in _batches(session, query, DataKey.id, batch_size):
        if budget.exhausted:
            _end_batch(session, commit=False)
            return rewrapped, failed, False
        for key in rows:
            try:
                raw = provider.unwrap(key.kek_id, as_bytes(key.wrapped_key))
            except VaultError as exc:
                failed += 1
                log.error("data key cannot be unwrapped", extra={
                    "key_id": str(key.id), "kek_id": key.kek_id, "reason": type(exc).__name__})
                continue
            kek_id, wrapped = provider.wrap(raw)
            # Compare-and-set: a key shredded meanwhile must stay destroyed.
            result = session.execute(
                update(DataKey)
                .where(DataKey.id == key.id, DataKey.kek_id == key.kek_id,
                       DataKey.wrapped_key.is_not(None), DataKey.status != KEY_DESTROYED)
                .values(kek_id=kek_id, wrapped_key=wrapped)
                .execution_options(synchronize_session=False)
            )
            rewrapped += result.rowcount
        _end_batch(session, commit=True)
        budget.spend()
    return rewrapped, failed, True


def rotate_kek(
    *,
    session: Session,
    settings: VaultSettings,
    retire_old: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    grace_seconds: float = DEFAULT_KEK_GRACE_SECONDS,
    max_batches: int | None = None,
) -> KekRotationReport:
    """Rewrap data keys under a new active KEK; rows are untouched and reads never stop.

    When every data key is already under the active KEK, a new KEK is added to the key file
    and made active first; otherwise an interrupted rotation (or a KEK activated in a KMS or
    inline JSON) is finished. With ``retire_old`` the other KEKs leave the key file only once no
    live data key is wrapped under them.
    """
    provider = settings.provider
    rotatable = isinstance(provider, RotatableKekProvider)
    if retire_old and not rotatable:
        raise VaultError("this KEK source is read-only: rotate without --retire-old, then "
                         "remove the old KEKs from it yourself")
    added = False
    if rotatable and _count(session, _live_keys_not_under(provider.active_kek_id)) == 0:
        provider.add_new_active()
        added = True
    session.rollback()
    budget = _Budget(max_batches)
    rewrapped, failed, done = _rewrap_pass(
        session=session, settings=settings, batch_size=batch_size, budget=budget)
    retired: tuple[str, ...] = ()
    if done and retire_old:
        # Requests that wrapped a key under the old KEK just before the switch commit meanwhile.
        time.sleep(grace_seconds)
        # It retries what failed before, so its failures are the ones that remain.
        more, failed, done = _rewrap_pass(
            session=session, settings=settings, batch_size=batch_size, budget=budget)
        rewrapped += more
    remaining = _count(session, _live_keys_not_under(provider.active_kek_id))
    session.rollback()
    if done and retire_old and remaining == 0:
        retired = _retire_keks(provider)
    return KekRotationReport(
        active_kek=provider.active_kek_id, added=added, rewrapped=rewrapped, failed=failed,
        remaining=remaining, retired=retired, done=done and remaining == 0,
    )


def _retire_keks(provider: Any) -> tuple[str, ...]:
    old = sorted(provider.kek_ids() - {provider.active_kek_id})
    retired = tuple(kek_id for kek_id in old if provider.retire(kek_id))
    if retired:
        log.info("KEKs retired", extra={"kek_ids": list(retired)})
    return retired


# Data-key rotation ----------------------------------------------------------------------------


def rotate_data_keys(
    *,
    session: Session,
    settings: VaultSettings,
    citizen_id: uuid.UUID | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> DataKeyRotationReport:
    """Re-encrypt citizens' rows under new data keys: begin, re-encrypt, retire; resumable.

    Begin: the active key becomes "rotating" and a new active key is created (new writes use
    it at once). Re-encrypt: every field not under its citizen's active key is rewritten, batch
    by batch. Retire: once no field was left behind, the rotating keys become "retired" (kept
    wrapped, so a straggler written meanwhile stays readable). A re-run after an interruption
    finishes the same rotation: keys marked rotating carry the start time of their run.
    """
    scope = [] if citizen_id is None else [DataKey.citizen_id == citizen_id]
    started_at = session.scalar(
        select(func.min(DataKey.status_changed_at)).where(DataKey.status == KEY_ROTATING, *scope)
    )
    resumed = started_at is not None
    if started_at is None:
        started_at = utcnow()
    session.rollback()
    budget = _Budget(max_batches)
    started, complete = _begin_rotation(
        session=session, settings=settings, scope=scope, started_at=started_at,
        batch_size=batch_size, budget=budget)
    reencrypted = deferred = failed = retired = 0
    if complete:
        reencrypted, deferred, failed, complete = _reencrypt(
            session=session, settings=settings, scope=scope, batch_size=batch_size,
            budget=budget)
    if complete and deferred == 0 and failed == 0:
        retired, complete = _retire_rotating(
            session=session, scope=scope, batch_size=batch_size, budget=budget)
    return DataKeyRotationReport(
        resumed=resumed, started=started, reencrypted=reencrypted, deferred=deferred,
        failed=failed, retired=retired,
        done=complete and deferred == 0 and failed == 0,
    )


def _begin_rotation(
    *, session: Session, settings: VaultSettings, scope: list[Any], started_at: Any,
    batch_size: int, budget: _Budget,
) -> tuple[int, bool]:
    # Keys created since the run started (by it, or by new registrations) need no rotation.
    query = select(DataKey).where(
        DataKey.status == KEY_ACTIVE, DataKey.created_at < started_at, *scope
    )
    started = 0
    for keys in _batches(session, query, DataKey.id, batch_size):
        if budget.exhausted:
            _end_batch(session, commit=False)
            return started, False
        ring = _fresh_keyring(session, settings)
        for key in keys:
            # Compare-and-set: a key shredded meanwhile must not come back to life. The old key
            # leaves "active" before the new one is inserted (one active key per citizen).
            moved = session.execute(
                update(DataKey)
                .where(DataKey.id == key.id, DataKey.status == KEY_ACTIVE)
                .values(status=KEY_ROTATING, status_changed_at=started_at)
                .execution_options(synchronize_session=False)
            ).rowcount
            if moved:
                ring.forget_citizen(key.citizen_id)
                ring.create_key(key.citizen_id)
                started += 1
        _end_batch(session, commit=True)
        budget.spend()
    return started, True


def _reencrypt(
    *, session: Session, settings: VaultSettings, scope: list[Any], batch_size: int,
    budget: _Budget,
) -> tuple[int, int, int, bool]:
    """Rewrite fields not under their citizen's active key; (done, deferred, failed, complete)."""
    rotating = select(DataKey.citizen_id).where(DataKey.status == KEY_ROTATING, *scope)
    reencrypted = deferred = failed = 0
    for model, fields in encrypted_models().items():
        query = select(model).where(_citizen_column(model).in_(rotating))
        for rows in _batches(session, query, model.id, batch_size):
            if budget.exhausted:
                _end_batch(session, commit=False)
                return reencrypted, deferred, failed, False
            ring = _fresh_keyring(session, settings)
            _preload(ring, rows)
            # Every row's new ciphertexts first, then the updates in a burst right before the
            # commit: row locks are held for the updates only, not for the whole batch's
            # cryptography, so a request writing one of these rows meanwhile waits
            # milliseconds (requests give up on a statement after DATABASE_STATEMENT_TIMEOUT).
            pending = []
            for row in rows:
                statement, row_failed = _reencrypt_row(ring, model, fields, row)
                failed += row_failed
                if statement is not None:
                    pending.append(statement)
            for statement, count in pending:
                if session.execute(statement).rowcount:
                    reencrypted += count
                else:
                    deferred += 1
            _end_batch(session, commit=True)
            budget.spend()
    return reencrypted, deferred, failed, True


def _reencrypt_row(
    ring: SessionKeyRing, model: type[Any], fields: tuple[EncryptedField, ...], row: Any,
) -> tuple[tuple[Any, int] | None, int]:
    """The compare-and-set update re-encrypting one row's fields and how many it rewrites
    (None when nothing needs it), and how many fields failed to decrypt."""
    try:
        active = ring.active_cipher(row.vault_citizen_id())
    except KeyDestroyedError:
        return None, 0  # shredded meanwhile: nothing left to rotate
    old: dict[Any, bytes] = {}
    new: dict[Any, bytes] = {}
    failed = 0
    for field in fields:
        ciphertext = getattr(row, field.column_attr)
        if ciphertext is None or _key_id_or_none(ciphertext) == active.key_id:
            continue
        try:
            value = field.decrypt(row, ciphertext)  # logs and counts its own failures
        except VaultError:
            failed += 1
            continue
        if value is ERASED:
            continue
        column = getattr(model, field.column_attr)
        old[column] = as_bytes(ciphertext)
        new[column] = encrypt_value(active, field.kind, value, field.context(row))
    if not new:
        return None, failed
    # Compare-and-set: a value written by a request meanwhile wins; a re-run looks at it again.
    statement = (
        update(model)
        .where(model.id == row.id, *(column == value for column, value in old.items()))
        .values(new)
        .execution_options(synchronize_session=False)
    )
    return (statement, len(new)), failed


def _key_id_or_none(ciphertext: bytes) -> uuid.UUID | None:
    try:
        return ciphertext_key_id(ciphertext)
    except VaultError:
        return None  # malformed: the decryption that follows reports it with coordinates


def _retire_rotating(
    *, session: Session, scope: list[Any], batch_size: int, budget: _Budget
) -> tuple[int, bool]:
    query = select(DataKey).where(DataKey.status == KEY_ROTATING, *scope)
    retired = 0
    for keys in _batches(session, query, DataKey.id, batch_size):
        if budget.exhausted:
            _end_batch(session, commit=False)
            return retired, False
        result = session.execute(
            update(DataKey)
            .where(DataKey.id.in_([key.id for key in keys]), DataKey.status == KEY_ROTATING)
            .values(status=KEY_RETIRED, status_changed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        retired += result.rowcount
        _end_batch(session, commit=True)
        budget.spend()
    return retired, True


# Crypto-shredding -----------------------------------------------------------------------------


def shred(*, session: Session, citizen_id: uuid.UUID) -> ShredReport:
    """Destroy every data key of one citizen and clear their blind indexes; idempotent.

    Their encrypted fields then read as ERASED and their health ID, phone or insurance code can
    no longer be confirmed by lookup; every other row and citizen keeps working. The caller
    commits, so the erasure and its audit event can share one transaction.
    """
    destroyed = session.execute(
        update(DataKey)
        .where(DataKey.citizen_id == citizen_id, DataKey.status != KEY_DESTROYED)
        .values(wrapped_key=None, status=KEY_DESTROYED, status_changed_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    cleared = 0
    for model, fields in encrypted_models().items():
        columns = [f.blind_index_attr for f in fields if f.blind_index_attr is not None]
        columns += list(getattr(model, "vault_derived_blind_indexes", ()))
        if not columns:
            continue
        cleared += session.execute(
            update(model)
            .where(_citizen_column(model) == citizen_id)
            .values({getattr(model, name): None for name in columns})
            .execution_options(synchronize_session=False)
        ).rowcount
    # Nothing this session decrypted or unwrapped before may be served after the erasure.
    session.expire_all()
    drop_keyring(session)
    return ShredReport(
        citizen_id=citizen_id, keys_destroyed=destroyed, blind_indexes_cleared=cleared
    )


def citizen_has_keys(*, session: Session, citizen_id: uuid.UUID) -> bool:
    """Whether any data key (in any state) exists for this citizen."""
    found = session.scalar(select(DataKey.id).where(DataKey.citizen_id == citizen_id).limit(1))
    return found is not None
