"""Data keys and the per-request KeyRing: wrapping, caching, shredding, rotation, no leaks."""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path

import pytest

from core.vault import (
    DecryptionError,
    FieldContext,
    InMemoryKekProvider,
    KekUnavailableError,
    KeyDestroyedError,
    KeyNotFoundError,
    KeyRing,
    KeyUnwrapError,
    LocalKeyFileKekProvider,
    WrappedKey,
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


@pytest.fixture
def ring(provider: InMemoryKekProvider, table: KeyTable) -> KeyRing:
    return KeyRing(provider=provider, loader=table.load)


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


def test_ring_loads_each_key_once(
    ring: KeyRing, provider: InMemoryKekProvider, table: KeyTable, context: FieldContext
) -> None:
    first_id, first_key = _store_new_key(provider, table)
    second_id, _ = _store_new_key(provider, table)

    ciphertext = ring.encrypt_field(key_id=first_id, plaintext="Bùi Thị Xuân", aad=context)
    for _ in range(5):
        assert ring.decrypt_field(ciphertext=ciphertext, aad=context) == "Bùi Thị Xuân"
    ring.encrypt_field(key_id=second_id, plaintext="x", aad=context)
    ring.encrypt_field(key_id=second_id, plaintext="y", aad=context)

    assert table.loads == [first_id, second_id]
    assert ring.cipher(first_id) is ring.cipher(first_id)  # one AESGCM per key, reused
    # Interoperates with the plain functions: same format, same key.
    plain = encrypt_field(data_key=first_key, key_id=first_id, plaintext="z", aad=context)
    assert ring.decrypt_field(ciphertext=plain, aad=context) == "z"


def test_ring_decrypts_by_the_key_id_in_the_header(
    ring: KeyRing, provider: InMemoryKekProvider, table: KeyTable, context: FieldContext
) -> None:
    key_id, data_key = _store_new_key(provider, table)
    ciphertext = encrypt_field(data_key=data_key, key_id=key_id, plaintext="Huế", aad=context)

    assert ring.decrypt_field(ciphertext=memoryview(ciphertext), aad=context) == "Huế"
    assert table.loads == [key_id]


def test_ring_json(
    ring: KeyRing, provider: InMemoryKekProvider, table: KeyTable, context: FieldContext
) -> None:
    key_id, _ = _store_new_key(provider, table)
    value = {"street": "12 Lý Thường Kiệt", "ward": "Phường Tràng Tiền"}

    ciphertext = ring.encrypt_json(key_id=key_id, value=value, aad=context)

    assert ring.decrypt_json(ciphertext=ciphertext, aad=context) == value


def test_ring_missing_key(ring: KeyRing, context: FieldContext) -> None:
    missing = uuid.uuid4()

    with pytest.raises(KeyNotFoundError) as excinfo:
        ring.encrypt_field(key_id=missing, plaintext="x", aad=context)

    assert excinfo.value.key_id == missing


def test_ring_destroyed_key_is_remembered(
    ring: KeyRing, provider: InMemoryKekProvider, table: KeyTable, context: FieldContext
) -> None:
    key_id, data_key = _store_new_key(provider, table)
    ciphertext = encrypt_field(data_key=data_key, key_id=key_id, plaintext="x", aad=context)
    table.shred(key_id)

    for _ in range(3):
        with pytest.raises(KeyDestroyedError) as excinfo:
            ring.decrypt_field(ciphertext=ciphertext, aad=context)
        assert excinfo.value.key_id == key_id

    assert table.loads == [key_id]


def test_ring_forget_after_shredding_a_cached_key(
    ring: KeyRing, provider: InMemoryKekProvider, table: KeyTable, context: FieldContext
) -> None:
    key_id, _ = _store_new_key(provider, table)
    ciphertext = ring.encrypt_field(key_id=key_id, plaintext="x", aad=context)
    table.shred(key_id)

    ring.forget(key_id)

    with pytest.raises(KeyDestroyedError):
        ring.decrypt_field(ciphertext=ciphertext, aad=context)


def test_ring_add_registers_a_fresh_key_without_loading(
    ring: KeyRing, table: KeyTable, context: FieldContext
) -> None:
    key_id, data_key = new_data_key_id(), new_data_key()

    ring.add(key_id, data_key)
    ciphertext = ring.encrypt_field(key_id=key_id, plaintext="Cà Mau", aad=context)

    assert ring.decrypt_field(ciphertext=ciphertext, aad=context) == "Cà Mau"
    assert table.loads == []
    ring.clear()
    with pytest.raises(KeyNotFoundError):
        ring.decrypt_field(ciphertext=ciphertext, aad=context)


def test_ring_swapped_wrapped_keys_fail_to_decrypt(
    ring: KeyRing, provider: InMemoryKekProvider, table: KeyTable, context: FieldContext
) -> None:
    # Someone with database access swaps two citizens' wrapped keys: decrypts must fail.
    first_id, first_key = _store_new_key(provider, table)
    second_id, _ = _store_new_key(provider, table)
    ciphertext = encrypt_field(data_key=first_key, key_id=first_id, plaintext="x", aad=context)
    table.rows[first_id], table.rows[second_id] = table.rows[second_id], table.rows[first_id]

    with pytest.raises(DecryptionError):
        ring.decrypt_field(ciphertext=ciphertext, aad=context)


def test_ring_never_leaks_keys(
    ring: KeyRing, provider: InMemoryKekProvider, table: KeyTable, context: FieldContext
) -> None:
    key_id, data_key = _store_new_key(provider, table)
    ring.encrypt_field(key_id=key_id, plaintext="x", aad=context)

    for text in (repr(ring), str(ring), repr(ring.cipher(key_id))):
        assert data_key.hex() not in text
        assert repr(data_key) not in text
        assert data_key.hex().upper() not in text
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(ring)


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

    ring = KeyRing(provider=provider, loader=table.load)
    assert ring.decrypt_field(ciphertext=ciphertext, aad=context) == "Tây Ninh"
    assert not needs_rewrap(provider, WrappedKey.destroyed_key())


def test_ring_with_retired_kek_reports_kek_unavailable(
    tmp_path: Path, context: FieldContext
) -> None:
    provider = LocalKeyFileKekProvider.generate(tmp_path / "kek.json")
    table = KeyTable()
    key_id, data_key = new_data_key_id(), new_data_key()
    table.rows[key_id] = wrap_data_key(provider, data_key)
    ciphertext = encrypt_field(data_key=data_key, key_id=key_id, plaintext="x", aad=context)
    old_kek_id = provider.active_kek_id
    provider.add_new_active()
    provider.retire(old_kek_id)  # wrongly, before rewrapping

    with pytest.raises(KekUnavailableError) as excinfo:
        KeyRing(provider=provider, loader=table.load).decrypt_field(
            ciphertext=ciphertext, aad=context
        )

    assert excinfo.value.kek_id == old_kek_id
