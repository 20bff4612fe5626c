"""Data keys: wrapping, unwrapping, rotation."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from core.vault import (
    FieldContext,
    InMemoryKekProvider,
    KekUnavailableError,
    KeyDestroyedError,
    KeyUnwrapError,
    LocalKeyFileKekProvider,
    WrappedKey,
    decrypt_field,
    encrypt_field,
    needs_rewrap,
    new_data_key,
    new_data_key_id,
    rewrap_data_key,
    unwrap_data_key,
    wrap_data_key,
)


class KeyTable:
    """A stand-in for the data-key table: key id -> stored WrappedKey, counting loads."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, WrappedKey] = {}
        self.loads: list[uuid.UUID] = []

    def load(self, key_id: uuid.UUID) -> WrappedKey | None:
        self.loads.append(key_id)
        return self.rows.get(key_id)

    def shred(self, key_id: uuid.UUID) -> None:
        self.rows[key_id] = WrappedKey.destroyed_key()


@pytest.fixture
def provider() -> InMemoryKekProvider:
    return InMemoryKekProvider.generate()


@pytest.fixture
def table() -> KeyTable:
    return KeyTable()


def _store_new_key(provider: InMemoryKekProvider, table: KeyTable) -> tuple[uuid.UUID, bytes]:
    key_id, data_key = new_data_key_id(), new_data_key()
    table.rows[key_id] = wrap_data_key(provider, data_key)
    return key_id, data_key


def test_new_data_keys_are_random_32_bytes() -> None:
    keys = {new_data_key() for _ in range(100)}

    assert len(keys) == 100
    assert all(len(key) == 32 for key in keys)


def test_wrap_and_unwrap(provider: InMemoryKekProvider) -> None:
    data_key = new_data_key()

    wrapped = wrap_data_key(provider, data_key)

    assert wrapped.kek_id == provider.active_kek_id
    assert not wrapped.destroyed
    assert unwrap_data_key(provider, wrapped) == data_key
    assert wrapped.wrapped.hex() not in repr(wrapped)


def test_unwrap_destroyed_key_raises(provider: InMemoryKekProvider) -> None:
    key_id = uuid.uuid4()

    with pytest.raises(KeyDestroyedError) as excinfo:
        unwrap_data_key(provider, WrappedKey.destroyed_key(), key_id=key_id)

    assert excinfo.value.key_id == key_id


def test_live_wrapped_key_needs_its_parts() -> None:
    with pytest.raises(ValueError, match="kek_id"):
        WrappedKey(kek_id="", wrapped=b"x")
    with pytest.raises(ValueError, match="wrapped"):
        WrappedKey(kek_id="kek-1", wrapped=b"")


def test_unwrap_error_names_the_data_key(provider: InMemoryKekProvider) -> None:
    wrapped = wrap_data_key(provider, new_data_key())
    tampered = WrappedKey(kek_id=wrapped.kek_id, wrapped=wrapped.wrapped[:-1] + b"\x00")
    key_id = uuid.uuid4()

    with pytest.raises(KeyUnwrapError) as excinfo:
        unwrap_data_key(provider, tampered, key_id=key_id)

    assert excinfo.value.key_id == key_id
    assert str(key_id) in str(excinfo.value)


def test_kek_rotation_rewraps_without_touching_ciphertexts(
    tmp_path: Path, context: FieldContext
) -> None:
    provider = LocalKeyFileKekProvider.generate(tmp_path / "kek.json")
    table = KeyTable()
    key_id, data_key = new_data_key_id(), new_data_key()
    table.rows[key_id] = wrap_data_key(provider, data_key)
    ciphertext = encrypt_field(data_key=data_key, key_id=key_id, plaintext="Tây Ninh", aad=context)
    old_kek_id = provider.active_kek_id

    provider.add_new_active()
    assert needs_rewrap(provider, table.rows[key_id])
    table.rows[key_id] = rewrap_data_key(provider, table.rows[key_id])
    assert not needs_rewrap(provider, table.rows[key_id])
    provider.retire(old_kek_id)

    unwrapped = unwrap_data_key(provider, table.rows[key_id], key_id=key_id)
    assert decrypt_field(data_key=unwrapped, ciphertext=ciphertext, aad=context) == "Tây Ninh"
    assert not needs_rewrap(provider, WrappedKey.destroyed_key())


def test_unwrap_under_a_retired_kek_reports_kek_unavailable(
    tmp_path: Path, context: FieldContext
) -> None:
    provider = LocalKeyFileKekProvider.generate(tmp_path / "kek.json")
    table = KeyTable()
    key_id, data_key = new_data_key_id(), new_data_key()
    table.rows[key_id] = wrap_data_key(provider, data_key)
    old_kek_id = provider.active_kek_id
    provider.add_new_active()
    provider.retire(old_kek_id)  # wrongly, before rewrapping

    with pytest.raises(KekUnavailableError) as excinfo:
        unwrap_data_key(provider, table.rows[key_id], key_id=key_id)

    assert excinfo.value.kek_id == old_kek_id
