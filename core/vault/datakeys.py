"""Data keys: creation, wrapping under a KEK, rewrapping. Nothing here touches the database;
the per-request key ring over the data-key table is `core.encryption.SessionKeyRing`."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

from core.vault.cipher import (
    DATA_KEY_LENGTH,
)
from core.vault.errors import KeyDestroyedError, KeyUnwrapError
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
