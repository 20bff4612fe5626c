"""KEK providers: key file lifecycle, wrapping, rotation, retirement, reload, environment."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from core.vault import (
    EnvKekProvider,
    InMemoryKekProvider,
    KekProvider,
    KekUnavailableError,
    KeyUnwrapError,
    LocalKeyFileKekProvider,
    VaultError,
    new_data_key,
)


@pytest.fixture
def kek_path(tmp_path: Path) -> Path:
    return tmp_path / "kek.json"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _raw_keys(path: Path) -> list[str]:
    return list(json.loads(path.read_text())["keys"].values())


def test_generate_writes_one_kek_owner_only(kek_path: Path) -> None:
    provider = LocalKeyFileKekProvider.generate(kek_path)

    document = json.loads(kek_path.read_text())
    assert _mode(kek_path) == 0o600
    assert list(document["keys"]) == [document["active"]]
    assert len(base64.b64decode(document["keys"][document["active"]])) == 32
    assert provider.active_kek_id == document["active"]
    assert provider.kek_ids() == frozenset({document["active"]})


def test_generate_is_owner_only_even_with_an_open_umask(kek_path: Path) -> None:
    previous = os.umask(0)
    try:
        LocalKeyFileKekProvider.generate(kek_path)
    finally:
        os.umask(previous)

    assert _mode(kek_path) == 0o600


def test_generate_refuses_to_overwrite(kek_path: Path) -> None:
    LocalKeyFileKekProvider.generate(kek_path)
    before = kek_path.read_bytes()

    with pytest.raises(FileExistsError):
        LocalKeyFileKekProvider.generate(kek_path)

    assert kek_path.read_bytes() == before


def test_wrap_unwrap_round_trip(kek_path: Path) -> None:
    provider = LocalKeyFileKekProvider.generate(kek_path)
    data_key = new_data_key()

    kek_id, wrapped = provider.wrap(data_key)
    kek_id_again, wrapped_again = provider.wrap(data_key)

    assert kek_id == kek_id_again == provider.active_kek_id
    assert wrapped != wrapped_again  # fresh nonce per wrap
    assert data_key not in wrapped
    assert provider.unwrap(kek_id, wrapped) == data_key
    assert provider.unwrap(kek_id, wrapped_again) == data_key


def test_tampered_wrap_fails(kek_path: Path) -> None:
    provider = LocalKeyFileKekProvider.generate(kek_path)
    kek_id, wrapped = provider.wrap(new_data_key())

    for index in (0, 5, len(wrapped) - 1):
        tampered = bytearray(wrapped)
        tampered[index] ^= 0x01
        with pytest.raises(KeyUnwrapError):
            provider.unwrap(kek_id, bytes(tampered))
    with pytest.raises(KeyUnwrapError):
        provider.unwrap(kek_id, wrapped[:-1])


def test_unknown_kek_id_is_unavailable(kek_path: Path) -> None:
    provider = LocalKeyFileKekProvider.generate(kek_path)
    _, wrapped = provider.wrap(new_data_key())

    with pytest.raises(KekUnavailableError) as excinfo:
        provider.unwrap("kek-nope", wrapped)
    assert excinfo.value.kek_id == "kek-nope"


def test_rotation_keeps_old_wraps_until_retired(kek_path: Path) -> None:
    provider = LocalKeyFileKekProvider.generate(kek_path)
    data_key = new_data_key()
    old_kek_id, old_wrapped = provider.wrap(data_key)

    new_kek_id = provider.add_new_active()

    assert new_kek_id != old_kek_id
    assert provider.active_kek_id == new_kek_id
    assert provider.kek_ids() == frozenset({old_kek_id, new_kek_id})
    assert _mode(kek_path) == 0o600
    assert provider.unwrap(old_kek_id, old_wrapped) == data_key
    rewrapped_kek_id, rewrapped = provider.wrap(data_key)
    assert rewrapped_kek_id == new_kek_id
    # A wrap claimed to be under the other KEK fails (the KEK id is authenticated).
    with pytest.raises(KeyUnwrapError):
        provider.unwrap(old_kek_id, rewrapped)

    assert provider.retire(old_kek_id) is True

    assert provider.kek_ids() == frozenset({new_kek_id})
    assert _mode(kek_path) == 0o600
    assert provider.unwrap(new_kek_id, rewrapped) == data_key
    with pytest.raises(KekUnavailableError):
        provider.unwrap(old_kek_id, old_wrapped)
    assert provider.retire(old_kek_id) is False  # idempotent, for resumable rotations


def test_active_kek_cannot_be_retired(kek_path: Path) -> None:
    provider = LocalKeyFileKekProvider.generate(kek_path)

    with pytest.raises(VaultError, match="active"):
        provider.retire(provider.active_kek_id)

    assert provider.kek_ids() == frozenset({provider.active_kek_id})


def test_rotation_writes_atomically_and_leaves_no_temp_files(kek_path: Path) -> None:
    provider = LocalKeyFileKekProvider.generate(kek_path)
    inode = kek_path.stat().st_ino

    provider.add_new_active()

    assert kek_path.stat().st_ino != inode  # replaced, not rewritten in place
    assert sorted(p.name for p in kek_path.parent.iterdir()) == ["kek.json"]


def test_other_instance_sees_rotation_and_retirement(kek_path: Path) -> None:
    operator = LocalKeyFileKekProvider.generate(kek_path)
    # A long recheck interval: the change must be seen through the file's stat alone.
    web_process = LocalKeyFileKekProvider(kek_path, recheck_seconds=3600)
    data_key = new_data_key()
    old_kek_id, old_wrapped = web_process.wrap(data_key)

    new_kek_id = operator.add_new_active()

    assert web_process.active_kek_id == new_kek_id
    kek_id, wrapped = web_process.wrap(data_key)
    assert kek_id == new_kek_id
    assert operator.unwrap(kek_id, wrapped) == data_key
    assert web_process.unwrap(old_kek_id, old_wrapped) == data_key

    operator.retire(old_kek_id)

    with pytest.raises(KekUnavailableError):
        web_process.unwrap(old_kek_id, old_wrapped)


def test_change_with_identical_stat_signature_is_seen_on_recheck(kek_path: Path) -> None:
    LocalKeyFileKekProvider.generate(kek_path)
    web_process = LocalKeyFileKekProvider(kek_path, recheck_seconds=0)
    before = kek_path.stat()
    document = json.loads(kek_path.read_text())
    document["keys"][document["active"]] = base64.b64encode(new_data_key()).decode()
    replacement = json.dumps(document, indent=2, sort_keys=True) + "\n"
    assert len(replacement.encode()) == before.st_size
    # Same inode, same size, same mtime: what two quick os.replace calls can look like.
    with kek_path.open("r+b") as handle:
        handle.write(replacement.encode())
    os.utime(kek_path, ns=(before.st_atime_ns, before.st_mtime_ns))

    kek_id, wrapped = web_process.wrap(new_data_key())

    assert LocalKeyFileKekProvider(kek_path).unwrap(kek_id, wrapped)


def test_file_removed_under_a_running_process(kek_path: Path) -> None:
    provider = LocalKeyFileKekProvider.generate(kek_path)
    kek_path.unlink()

    with pytest.raises(KekUnavailableError, match="missing"):
        provider.wrap(new_data_key())
    with pytest.raises(KekUnavailableError):
        LocalKeyFileKekProvider(kek_path)


def test_group_writable_key_file_is_refused(kek_path: Path) -> None:
    LocalKeyFileKekProvider.generate(kek_path)
    kek_path.chmod(0o620)

    with pytest.raises(KekUnavailableError, match="writable"):
        LocalKeyFileKekProvider(kek_path)


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        '{"active": "a"}',
        '{"active": "a", "keys": {}}',
        '{"active": "missing", "keys": {"a": "' + base64.b64encode(b"k" * 32).decode() + '"}}',
        '{"active": "a", "keys": {"a": "not*base64"}}',
        '{"active": "a", "keys": {"a": "' + base64.b64encode(b"short").decode() + '"}}',
        '{"active": "bad id", "keys": {"bad id": "' + base64.b64encode(b"k" * 32).decode() + '"}}',
    ],
)
def test_invalid_documents_are_refused_without_echoing_keys(document: str) -> None:
    with pytest.raises(KekUnavailableError) as excinfo:
        InMemoryKekProvider.from_json(document)

    assert base64.b64encode(b"k" * 32).decode() not in str(excinfo.value)
    assert base64.b64encode(b"short").decode() not in str(excinfo.value)


def test_env_provider_reads_the_same_document(
    kek_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_provider = LocalKeyFileKekProvider.generate(kek_path)
    data_key = new_data_key()
    kek_id, wrapped = file_provider.wrap(data_key)
    monkeypatch.setenv("VAULT_KEK_JSON", kek_path.read_text())

    env_provider = EnvKekProvider()

    assert env_provider.active_kek_id == kek_id
    assert env_provider.kek_ids() == file_provider.kek_ids()
    assert env_provider.unwrap(kek_id, wrapped) == data_key
    assert file_provider.unwrap(*env_provider.wrap(data_key)) == data_key


def test_env_provider_with_explicit_mapping_and_missing_variable() -> None:
    document = InMemoryKekProvider.generate().to_json()

    provider = EnvKekProvider("PHR_KEKS", environ={"PHR_KEKS": document})

    assert provider.unwrap(*provider.wrap(b"\x01" * 32)) == b"\x01" * 32
    with pytest.raises(KekUnavailableError, match="PHR_KEKS"):
        EnvKekProvider("PHR_KEKS", environ={})


def test_in_memory_provider_rotation_is_immutable() -> None:
    original = InMemoryKekProvider.generate()
    rotated, new_kek_id = original.with_new_active()

    assert original.active_kek_id != new_kek_id
    assert rotated.active_kek_id == new_kek_id
    assert original.kek_ids() < rotated.kek_ids()
    assert rotated.without(original.active_kek_id).kek_ids() == frozenset({new_kek_id})
    assert InMemoryKekProvider.from_json(rotated.to_json()).kek_ids() == rotated.kek_ids()


def test_providers_satisfy_the_protocol_and_hide_keys(kek_path: Path) -> None:
    file_provider = LocalKeyFileKekProvider.generate(kek_path)
    memory = InMemoryKekProvider.from_json(kek_path.read_text())
    env = EnvKekProvider(environ={"VAULT_KEK_JSON": kek_path.read_text()})

    for provider in (file_provider, memory, env):
        assert isinstance(provider, KekProvider)
        for encoded in _raw_keys(kek_path):
            assert encoded not in repr(provider)
            assert base64.b64decode(encoded).hex() not in repr(provider)
