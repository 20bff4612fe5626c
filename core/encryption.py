"""The boundary between the ORM and the vault: models declare encrypted fields, code sees plaintext.

A model declares ``full_name_ct = encrypted_column()`` and ``full_name = EncryptedField(...)``.
Reading the attribute decrypts that one field on first access (lazily: a list showing three fields
decrypts three); writing it encrypts at once under the citizen's active data key, bound to table,
column, row id and citizen. Data keys live wrapped in ``vault_data_keys`` and are unwrapped at most
once per session (one request) into a key ring kept in ``session.info``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from flask import current_app
from sqlalchemy import ForeignKey, Index, LargeBinary, String, Uuid, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import UTCDateTime, db, utcnow
from core.metrics import DECRYPTION_FAILURES
from core.vault.blind_index import blind_index
from core.vault.cipher import FieldCipher, FieldContext, ciphertext_key_id
from core.vault.datakeys import new_data_key
from core.vault.errors import DecryptionError, KeyDestroyedError, KeyNotFoundError, VaultError
from core.vault.kek import KekProvider

log = logging.getLogger("phr.vault")

KEY_ACTIVE = "active"
KEY_ROTATING = "rotating"  # superseded; rows are being re-encrypted away from it
KEY_RETIRED = "retired"  # no row uses it any more; kept wrapped for verification
KEY_DESTROYED = "destroyed"  # crypto-shredded: the wrapped key is gone


class Erased:
    """What a field of a crypto-shredded citizen reads as."""

    _instance: ClassVar[Erased | None] = None

    def __new__(cls) -> Erased:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ERASED"

    __str__ = __repr__


ERASED = Erased()


class DataKey(db.Model):
    """A citizen's data key, only ever stored wrapped by a KEK."""

    __tablename__ = "vault_data_keys"
    __table_args__ = (
        Index(
            "uq_vault_data_keys_active_citizen",
            "citizen_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kek_id: Mapped[str] = mapped_column(String(64), index=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=KEY_ACTIVE)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class VaultSettings:
    provider: KekProvider
    blind_index_key: bytes


def vault_settings() -> VaultSettings:
    return current_app.extensions["phr.vault"]


class SessionKeyRing:
    """Unwrapped data keys for one session; keys never outlive the request that used them."""

    def __init__(self, session: Session, settings: VaultSettings) -> None:
        self._session = session
        self._settings = settings
        self._by_id: dict[uuid.UUID, FieldCipher | None] = {}
        self._active: dict[uuid.UUID, uuid.UUID] = {}
        self._owner: dict[uuid.UUID, uuid.UUID] = {}

    def __repr__(self) -> str:
        return f"SessionKeyRing({len(self._by_id)} keys)"

    def _remember(self, row: DataKey) -> None:
        self._owner[row.id] = row.citizen_id
        if row.status == KEY_DESTROYED or row.wrapped_key is None:
            self._by_id[row.id] = None
            return
        raw = self._settings.provider.unwrap(row.kek_id, row.wrapped_key)
        self._by_id[row.id] = FieldCipher(key_id=row.id, data_key=raw)
        if row.status == KEY_ACTIVE:
            self._active[row.citizen_id] = row.id

    def preload(self, citizen_ids: Iterable[uuid.UUID]) -> None:
        """Fetch the keys of many citizens in one query (lists, summaries)."""
        wanted = {c for c in citizen_ids if c not in self._active}
        if not wanted:
            return
        with self._session.no_autoflush:
            rows = list(self._session.scalars(
                select(DataKey).where(
                    DataKey.citizen_id.in_(wanted), DataKey.status != KEY_RETIRED
                )
            ))
        self.remember(rows)

    def remember(self, rows: Iterable[Any]) -> None:
        """Take data-key rows another query already fetched (the consent facts bring them):
        anything with the columns of `DataKey`; keys seen before are left as they are."""
        for row in rows:
            if row.id not in self._by_id:
                try:
                    self._remember(row)
                except VaultError:
                    # Left for the field read that needs it: it reports the row's coordinates.
                    continue

    def cipher_for_key(self, key_id: uuid.UUID) -> FieldCipher:
        if key_id not in self._by_id:
            with self._session.no_autoflush:
                row = self._session.get(DataKey, key_id)
            if row is None:
                raise KeyNotFoundError(key_id)
            self._remember(row)
        cipher = self._by_id[key_id]
        if cipher is None:
            raise KeyDestroyedError(key_id)
        return cipher

    def owner_of(self, key_id: uuid.UUID) -> uuid.UUID | None:
        """The citizen a key seen by this ring belongs to."""
        return self._owner.get(key_id)

    def active_cipher(self, citizen_id: uuid.UUID) -> FieldCipher:
        """The citizen's active key, created (and added to the session) when there is none."""
        key_id = self._active.get(citizen_id)
        if key_id is None:
            with self._session.no_autoflush:
                row, destroyed = self._find_active(citizen_id)
            if row is None:
                if destroyed is not None:
                    raise KeyDestroyedError(destroyed)
                row = self.create_key(citizen_id)
            else:
                self._remember(row)
            key_id = row.id
        return self.cipher_for_key(key_id)

    def _find_active(self, citizen_id: uuid.UUID) -> tuple[DataKey | None, uuid.UUID | None]:
        row = self._session.scalars(
            select(DataKey).where(DataKey.citizen_id == citizen_id, DataKey.status == KEY_ACTIVE)
        ).one_or_none()
        destroyed = None
        if row is None:
            destroyed = self._session.scalars(
                select(DataKey.id).where(
                    DataKey.citizen_id == citizen_id, DataKey.status == KEY_DESTROYED
                )
            ).first()
        return row, destroyed

    def create_key(self, citizen_id: uuid.UUID, *, status: str = KEY_ACTIVE) -> DataKey:
        raw = new_data_key()
        kek_id, wrapped = self._settings.provider.wrap(raw)
        row = DataKey(
            id=uuid.uuid4(), citizen_id=citizen_id, kek_id=kek_id, wrapped_key=wrapped,
            status=status, created_at=utcnow(),
        )
        self._session.add(row)
        self._by_id[row.id] = FieldCipher(key_id=row.id, data_key=raw)
        self._owner[row.id] = citizen_id
        if status == KEY_ACTIVE:
            self._active[citizen_id] = row.id
        return row

    def forget_citizen(self, citizen_id: uuid.UUID) -> None:
        self._active.pop(citizen_id, None)


def keyring(session: Session | None = None) -> SessionKeyRing:
    """The key ring of the current session (Flask-SQLAlchemy's scoped session by default)."""
    sess = session if session is not None else db.session()
    ring = sess.info.get("phr.keyring")
    if ring is None:
        ring = SessionKeyRing(sess, vault_settings())
        sess.info["phr.keyring"] = ring
    return ring


def drop_keyring(session: Session) -> None:
    session.info.pop("phr.keyring", None)


# Every encrypted field of every model: the vault CLI walks this to verify and re-encrypt.
ENCRYPTED_FIELDS: list[tuple[type[Any], EncryptedField]] = []


def encrypted_column(*, nullable: bool = True) -> Mapped[Any]:
    return mapped_column(LargeBinary, nullable=nullable)


def blind_index_column(*, unique: bool = False) -> Mapped[Any]:
    return mapped_column(LargeBinary(32), unique=unique, index=not unique)


class EncryptedField:
    """Descriptor for one encrypted attribute; kind is 'text', 'date' or 'json'."""

    def __init__(
        self,
        column_attr: str,
        *,
        kind: str = "text",
        blind_index_attr: str | None = None,
        blind_index_field: str | None = None,
        normalize: Any = None,
    ) -> None:
        if kind not in ("text", "date", "json"):
            raise ValueError(f"unknown kind {kind!r}")
        self.column_attr = column_attr
        self.kind = kind
        self.blind_index_attr = blind_index_attr
        self.blind_index_field = blind_index_field
        self.normalize = normalize
        self.name = ""
        self.owner: type[Any] | None = None

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name
        self.owner = owner
        ENCRYPTED_FIELDS.append((owner, self))

    # Coordinates -----------------------------------------------------------------------------
    def context(self, instance: Any) -> FieldContext:
        citizen_id = instance.vault_citizen_id()
        if instance.id is None or citizen_id is None:
            raise VaultError(f"{type(instance).__name__}.{self.name}: id and citizen id first")
        return FieldContext(
            table=instance.__tablename__, column=self.name,
            row_id=str(instance.id), citizen_id=str(citizen_id),
        )

    # Descriptor protocol ---------------------------------------------------------------------
    def __get__(self, instance: Any, owner: type[Any]) -> Any:
        if instance is None:
            return self
        cache = instance.__dict__.setdefault("_vault_plain", {})
        if self.name in cache:
            return cache[self.name]
        ciphertext = getattr(instance, self.column_attr)
        if ciphertext is None:
            value = None
        else:
            value = self.decrypt(instance, ciphertext)
        cache[self.name] = value
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        if value is not None and self.normalize is not None:
            value = self.normalize(value)
        if value is None:
            setattr(instance, self.column_attr, None)
        else:
            setattr(instance, self.column_attr, self.encrypt(instance, value))
        if self.blind_index_attr is not None:
            setattr(instance, self.blind_index_attr, self.index_value(value))
        instance.__dict__.setdefault("_vault_plain", {})[self.name] = value

    # Crypto ----------------------------------------------------------------------------------
    def index_value(self, value: Any) -> bytes | None:
        if value is None:
            return None
        return compute_blind_index(self.blind_index_field or self.name, str(value))

    def _session_of(self, instance: Any) -> Session:
        from sqlalchemy.orm import object_session

        return object_session(instance) or db.session()

    def encrypt(self, instance: Any, value: Any) -> bytes:
        context = self.context(instance)
        cipher = keyring(self._session_of(instance)).active_cipher(instance.vault_citizen_id())
        return encrypt_value(cipher, self.kind, value, context)

    def decrypt(self, instance: Any, ciphertext: bytes) -> Any:
        return self._decrypt(self._session_of(instance), self.context(instance),
                             instance.vault_citizen_id(), ciphertext)

    def decrypt_stored(self, session: Session, *, row_id: uuid.UUID, citizen_id: uuid.UUID,
                       ciphertext: bytes) -> Any:
        """Decrypt this field's stored value of one row read without its ORM entity (a query
        that fetches a few columns); same checks, errors and erasure as reading the attribute."""
        context = FieldContext(table=self.owner.__tablename__,  # type: ignore[union-attr]
                               column=self.name, row_id=str(row_id), citizen_id=str(citizen_id))
        return self._decrypt(session, context, citizen_id, ciphertext)

    def _decrypt(self, session: Session, context: FieldContext, citizen_id: uuid.UUID,
                 ciphertext: bytes) -> Any:
        try:
            key_id = ciphertext_key_id(ciphertext, aad=context)
            ring = keyring(session)
            try:
                cipher = ring.cipher_for_key(key_id)
            except KeyDestroyedError:
                # Erased only with the row's own citizen's key: a shredded citizen's ciphertext
                # copied onto someone else's row is tampering, not an erasure.
                if ring.owner_of(key_id) == citizen_id:
                    return ERASED
                raise DecryptionError(
                    table=context.table, column=context.column, row_id=context.row_id,
                    key_id=key_id, reason="destroyed key of another citizen",
                ) from None
            return decrypt_value(cipher, self.kind, ciphertext, context)
        except VaultError as exc:
            DECRYPTION_FAILURES.labels(context.table, context.column).inc()
            log.error(
                "decryption failed",
                extra={"table": context.table, "column": context.column,
                       "row_id": context.row_id, "reason": type(exc).__name__},
            )
            if isinstance(exc, DecryptionError):
                raise
            raise DecryptionError(
                table=context.table, column=context.column, row_id=context.row_id,
                reason=type(exc).__name__,
            ) from None


def encrypt_value(cipher: FieldCipher, kind: str, value: Any, context: FieldContext) -> bytes:
    if kind == "json":
        return cipher.encrypt_json(value, aad=context)
    if kind == "date":
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise TypeError("date field needs a datetime.date")
        return cipher.encrypt_field(value.isoformat(), aad=context)
    if not isinstance(value, str):
        raise TypeError("text field needs a str")
    return cipher.encrypt_field(value, aad=context)


def decrypt_value(cipher: FieldCipher, kind: str, ciphertext: bytes, context: FieldContext) -> Any:
    if kind == "json":
        return cipher.decrypt_json(ciphertext, aad=context)
    plain = cipher.decrypt_field(ciphertext, aad=context)
    if kind == "date":
        return dt.date.fromisoformat(plain)
    return plain


def compute_blind_index(field: str, value: str) -> bytes:
    return blind_index(key=vault_settings().blind_index_key, field=field, value=value)


class EncryptedModelMixin:
    """Assigns the row id before any encrypted field is set, so the AAD can name it."""

    vault_citizen_attr: ClassVar[str] = "citizen_id"
    # Blind indexes computed from several fields (not one field's own): erased with the keys.
    vault_derived_blind_indexes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **kwargs: Any) -> None:
        self.id = kwargs.pop("id", None) or uuid.uuid4()  # type: ignore[attr-defined]
        attr = self.vault_citizen_attr
        if attr != "id" and attr in kwargs:
            setattr(self, attr, kwargs.pop(attr))
        plain = {k: v for k, v in kwargs.items() if isinstance(type(self).__dict__.get(k),
                                                                      EncryptedField)}
        for key in plain:
            kwargs.pop(key)
        super().__init__(**kwargs)
        for key, value in plain.items():
            setattr(self, key, value)

    def vault_citizen_id(self) -> uuid.UUID | None:
        return getattr(self, self.vault_citizen_attr)


def citizen_fk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, ForeignKey("citizens.id"), index=True)


def _clear_plain_cache(target: Any, *args: Any) -> None:
    if target is not None:
        target.__dict__.pop("_vault_plain", None)


def install_cache_invalidation(base: type[Any]) -> None:
    """Drop decrypted values when SQLAlchemy expires or refreshes the row they came from."""
    from sqlalchemy import event

    for name in ("expire", "refresh"):
        if not event.contains(base, name, _clear_plain_cache):
            event.listen(base, name, _clear_plain_cache, propagate=True)
