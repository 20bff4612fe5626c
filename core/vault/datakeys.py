"""Data keys: creation, wrapping under a KEK, and a per-request KeyRing of ready ciphers.

Nothing here touches the database: the caller supplies a loader that returns the stored
:class:`WrappedKey` for a data key id (or None when no such key exists).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from core.vault.cipher import (
    DATA_KEY_LENGTH,
    HEADER_LENGTH,
    FieldCipher,
    FieldContext,
    JsonValue,
    as_bytes,
    ciphertext_key_id,
)
from core.vault.errors import KeyDestroyedError, KeyNotFoundError, KeyUnwrapError
from core.vault.kek import KekProvider


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key as stored: wrapped under ``kek_id``, or marked destroyed (crypto-shredded)."""

    kek_id: str
    wrapped: bytes = field(repr=False)
    destroyed: bool = False

    def __post_init__(self) -> None:
        if not self.destroyed and (not self.kek_id or not self.wrapped):
            raise ValueError("a live WrappedKey needs kek_id and wrapped bytes")

    @classmethod
    def destroyed_key(cls) -> WrappedKey:
        """Return the marker a loader gives for a key that was destroyed."""
        return cls(kek_id="", wrapped=b"", destroyed=True)


KeyLoader = Callable[[uuid.UUID], WrappedKey | None]


def new_data_key() -> bytes:
    """Return a fresh random 32-byte AES-256 data key."""
    return secrets.token_bytes(DATA_KEY_LENGTH)


def new_data_key_id() -> uuid.UUID:
    """Return a fresh random data key id."""
    return uuid.uuid4()


def wrap_data_key(provider: KekProvider, key: bytes) -> WrappedKey:
    """Wrap a data key under the provider's active KEK."""
    kek_id, wrapped = provider.wrap(key)
    return WrappedKey(kek_id=kek_id, wrapped=wrapped)


def unwrap_data_key(
    provider: KekProvider, wrapped: WrappedKey, *, key_id: uuid.UUID | None = None
) -> bytes:
    """Unwrap a stored data key; KeyDestroyedError for a shredded one."""
    if wrapped.destroyed:
        raise KeyDestroyedError(key_id)
    try:
        key = provider.unwrap(wrapped.kek_id, wrapped.wrapped)
    except KeyUnwrapError:
        raise KeyUnwrapError(kek_id=wrapped.kek_id, key_id=key_id) from None
    if len(key) != DATA_KEY_LENGTH:
        raise KeyUnwrapError(kek_id=wrapped.kek_id, key_id=key_id)
    return key


def needs_rewrap(provider: KekProvider, wrapped: WrappedKey) -> bool:
    """Whether a live data key is wrapped under a KEK other than the active one."""
    return not wrapped.destroyed and wrapped.kek_id != provider.active_kek_id


def rewrap_data_key(provider: KekProvider, wrapped: WrappedKey) -> WrappedKey:
    """Rewrap a data key under the active KEK (KEK rotation; the rows stay untouched)."""
    return wrap_data_key(provider, unwrap_data_key(provider, wrapped))


class KeyRing:
    """Per-request cache: data key id -> ready FieldCipher, filled through the loader.

    Each key is loaded and unwrapped at most once; destroyed keys are remembered too. Not
    thread-safe by design: one KeyRing per request (or per CLI batch), dropped afterwards.
    """

    __slots__ = ("_by_header", "_ciphers", "_destroyed", "_loader", "_provider")

    def __init__(self, *, provider: KekProvider, loader: KeyLoader) -> None:
        self._provider = provider
        self._loader = loader
        self._ciphers: dict[uuid.UUID, FieldCipher] = {}
        # Keyed by the raw ciphertext header so decrypts skip building a UUID per field.
        self._by_header: dict[bytes, FieldCipher] = {}
        self._destroyed: set[uuid.UUID] = set()

    def __repr__(self) -> str:
        return f"KeyRing(cached={len(self._ciphers)}, destroyed={len(self._destroyed)})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("KeyRing holds key material and cannot be pickled")

    def add(self, key_id: uuid.UUID, data_key: bytes) -> FieldCipher:
        """Register a key the caller just created (saves a load+unwrap) and return its cipher."""
        cipher = FieldCipher(key_id=key_id, data_key=data_key)
        self._ciphers[key_id] = cipher
        self._by_header[cipher.header] = cipher
        self._destroyed.discard(key_id)
        return cipher

    def cipher(self, key_id: uuid.UUID) -> FieldCipher:
        """Return the cipher for ``key_id``, loading and unwrapping it on first use."""
        cipher = self._ciphers.get(key_id)
        if cipher is not None:
            return cipher
        if key_id in self._destroyed:
            raise KeyDestroyedError(key_id)
        wrapped = self._loader(key_id)
        if wrapped is None:
            raise KeyNotFoundError(key_id)
        if wrapped.destroyed:
            self._destroyed.add(key_id)
            raise KeyDestroyedError(key_id)
        return self.add(key_id, unwrap_data_key(self._provider, wrapped, key_id=key_id))

    def forget(self, key_id: uuid.UUID) -> None:
        """Drop one key from the cache (after it was destroyed or rotated)."""
        cipher = self._ciphers.pop(key_id, None)
        if cipher is not None:
            del self._by_header[cipher.header]
        self._destroyed.discard(key_id)

    def clear(self) -> None:
        """Drop every cached key."""
        self._ciphers.clear()
        self._by_header.clear()
        self._destroyed.clear()

    def encrypt_field(self, *, key_id: uuid.UUID, plaintext: str, aad: FieldContext) -> bytes:
        """Encrypt text under data key ``key_id``."""
        return self.cipher(key_id).encrypt_field(plaintext, aad=aad)

    def _cipher_for(self, data: bytes, aad: FieldContext) -> FieldCipher:
        cipher = self._by_header.get(data[:HEADER_LENGTH])
        return cipher or self.cipher(ciphertext_key_id(data, aad=aad))

    def decrypt_field(
        self, *, ciphertext: bytes | bytearray | memoryview, aad: FieldContext
    ) -> str:
        """Decrypt text with the data key named in the ciphertext header."""
        data = as_bytes(ciphertext)
        return self._cipher_for(data, aad).decrypt_field(data, aad=aad)

    def encrypt_json(self, *, key_id: uuid.UUID, value: JsonValue, aad: FieldContext) -> bytes:
        """Encrypt a JSON object or array under data key ``key_id``."""
        return self.cipher(key_id).encrypt_json(value, aad=aad)

    def decrypt_json(
        self, *, ciphertext: bytes | bytearray | memoryview, aad: FieldContext
    ) -> JsonValue:
        """Decrypt a JSON object or array with the data key named in the ciphertext header."""
        data = as_bytes(ciphertext)
        return self._cipher_for(data, aad).decrypt_json(data, aad=aad)
