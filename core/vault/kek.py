"""Key-encryption keys (KEKs): the interface, an in-memory set, a key file and an env variable.

A KEK only ever wraps and unwraps 32-byte data keys; field values never meet it. The
key-set document, in a file or an environment variable, is::

    {"active": "<kek-id>", "keys": {"<kek-id>": "<base64 of 32 bytes>", ...}}

Wrapped format (version 1): ``0x01 | nonce (12 bytes) | AES-256-GCM(data key) + tag``, with the
KEK id in the associated data, so a wrap presented under another KEK id fails.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, NoReturn, Protocol, Self, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.vault import keyfiles
from core.vault.errors import KekUnavailableError, KeyUnwrapError, VaultError

KEK_LENGTH = 32
DEFAULT_ENV_VARIABLE = "VAULT_KEK_JSON"
_WRAP_VERSION = 1
_WRAP_NONCE_LENGTH = 12
_WRAPPED_LENGTH = 1 + _WRAP_NONCE_LENGTH + 32 + 16
_WRAP_AAD_DOMAIN = b"phr-vn/vault/kek-wrap/v1\x00"
_KEK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


@runtime_checkable
class KekProvider(Protocol):
    """Wraps data keys under the active KEK and unwraps them under any KEK still held.

    A KMS fits behind the same four members: ``active_kek_id`` is the KMS key (version) id
    from configuration, ``wrap`` calls the KMS Encrypt (or GenerateDataKey) operation and
    returns the key id the KMS reports, ``unwrap`` calls Decrypt with that id, and ``kek_ids``
    lists the key versions still enabled. Key material then never leaves the KMS; rotation
    and retirement are done in the KMS console or API instead of ``add_new_active``/``retire``.
    Implementations raise KekUnavailableError for an unknown or retired KEK (or an unreachable
    KMS) and KeyUnwrapError when a wrapped key fails authentication.
    """

    @property
    def active_kek_id(self) -> str:
        """Id of the KEK that new wraps use."""
        ...

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Wrap a data key under the active KEK; return (kek_id, wrapped)."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        """Unwrap a data key wrapped under ``kek_id``."""
        ...

    def kek_ids(self) -> frozenset[str]:
        """Ids of every KEK that can still unwrap."""
        ...


def _new_kek_id() -> str:
    return f"kek-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def _decode_kek(kek_id: str, encoded: object) -> bytes:
    if not isinstance(encoded, str):
        raise KekUnavailableError("KEK document invalid: key values must be base64 strings")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise KekUnavailableError(
            f"KEK document invalid: key {kek_id} is not base64", kek_id=kek_id
        ) from None
    if len(raw) != KEK_LENGTH:
        raise KekUnavailableError(
            f"KEK document invalid: key {kek_id} is not 32 bytes", kek_id=kek_id
        )
    return raw


class InMemoryKekProvider:
    """An immutable set of KEKs held in memory; also the parsed form of a key-set document."""

    __slots__ = ("_aeads", "_active", "_keys")

    def __init__(self, *, active: str, keys: Mapping[str, bytes]) -> None:
        for kek_id, key in keys.items():
            if not isinstance(kek_id, str) or not _KEK_ID_PATTERN.fullmatch(kek_id):
                raise KekUnavailableError("KEK document invalid: bad KEK id")
            if not isinstance(key, bytes) or len(key) != KEK_LENGTH:
                raise KekUnavailableError(f"KEK {kek_id} is not 32 bytes", kek_id=kek_id)
        if active not in keys:
            raise KekUnavailableError("KEK document invalid: active KEK not in keys")
        self._active = active
        self._keys = dict(keys)
        self._aeads = {kek_id: AESGCM(key) for kek_id, key in keys.items()}

    @classmethod
    def generate(cls) -> Self:
        """Return a new set holding one random KEK."""
        kek_id = _new_kek_id()
        return cls(active=kek_id, keys={kek_id: secrets.token_bytes(KEK_LENGTH)})

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        """Parse a key-set document; KekUnavailableError (naming no key value) when invalid."""
        try:
            document = json.loads(text)
        except ValueError:
            raise KekUnavailableError("KEK document invalid: not JSON") from None
        if not isinstance(document, dict):
            raise KekUnavailableError("KEK document invalid: not a JSON object")
        active, keys = document.get("active"), document.get("keys")
        if not isinstance(active, str) or not isinstance(keys, dict) or not keys:
            raise KekUnavailableError("KEK document invalid: needs 'active' and 'keys'")
        return cls(
            active=active,
            keys={kek_id: _decode_kek(kek_id, value) for kek_id, value in keys.items()},
        )

    def to_json(self) -> str:
        """Serialise to a key-set document (contains key material: write it 0600 only)."""
        keys = {kek_id: base64.b64encode(key).decode() for kek_id, key in self._keys.items()}
        return json.dumps({"active": self._active, "keys": keys}, indent=2, sort_keys=True) + "\n"

    def with_new_active(self) -> tuple[Self, str]:
        """Return a copy with a new random KEK made active, and the new KEK's id."""
        kek_id = _new_kek_id()
        while kek_id in self._keys:
            kek_id = _new_kek_id()
        keys = {**self._keys, kek_id: secrets.token_bytes(KEK_LENGTH)}
        return type(self)(active=kek_id, keys=keys), kek_id

    def without(self, kek_id: str) -> Self:
        """Return a copy without ``kek_id``; the active KEK cannot be removed."""
        if kek_id == self._active:
            raise VaultError(f"KEK {kek_id} is active and cannot be retired")
        return type(self)(
            active=self._active, keys={k: v for k, v in self._keys.items() if k != kek_id}
        )

    def __repr__(self) -> str:
        return f"InMemoryKekProvider(active={self._active!r}, kek_ids={sorted(self._keys)!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("KEK providers hold key material and cannot be pickled")

    @property
    def active_kek_id(self) -> str:
        """Id of the KEK that new wraps use."""
        return self._active

    def kek_ids(self) -> frozenset[str]:
        """Ids of every KEK held."""
        return frozenset(self._keys)

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Wrap a data key under the active KEK."""
        if not isinstance(data_key, bytes) or len(data_key) != 32:
            raise ValueError("data keys are 32 bytes")
        nonce = os.urandom(_WRAP_NONCE_LENGTH)
        aad = _WRAP_AAD_DOMAIN + self._active.encode()
        wrapped = self._aeads[self._active].encrypt(nonce, data_key, aad)
        return self._active, bytes([_WRAP_VERSION]) + nonce + wrapped

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        """Unwrap a data key wrapped under ``kek_id``."""
        aead = self._aeads.get(kek_id)
        if aead is None:
            raise KekUnavailableError(f"KEK {kek_id} is unknown or retired", kek_id=kek_id)
        data = bytes(wrapped)
        if len(data) != _WRAPPED_LENGTH or data[0] != _WRAP_VERSION:
            raise KeyUnwrapError(kek_id=kek_id)
        try:
            return aead.decrypt(
                data[1 : 1 + _WRAP_NONCE_LENGTH],
                data[1 + _WRAP_NONCE_LENGTH :],
                _WRAP_AAD_DOMAIN + kek_id.encode(),
            )
        except InvalidTag:
            raise KeyUnwrapError(kek_id=kek_id) from None


class _LoadedKeyFile(NamedTuple):
    signature: keyfiles.FileSignature
    read_at: float
    keys: InMemoryKekProvider


class LocalKeyFileKekProvider:
    """KEKs from a 0600 JSON key file; a rotation written by another process is seen at once.

    Every call costs one ``stat``; the file is re-read when its inode, mtime or size changed,
    and at least every ``recheck_seconds`` anyway, because two quick replacements can reuse
    an inode within one timestamp tick. Retiring a KEK is safe only after every data key
    wrapped under it was rewrapped: the caller (``vault rotate-kek``) must check that first.
    """

    def __init__(self, path: str | os.PathLike[str], *, recheck_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self.recheck_seconds = recheck_seconds
        self._reload_lock = threading.Lock()
        # One attribute, swapped whole, so a reader never pairs a new signature with old keys.
        self._loaded = self._read()

    def _read(self) -> _LoadedKeyFile:
        read_at = time.monotonic()
        try:
            content, signature = keyfiles.read_key_file(self.path)
        except OSError as exc:
            raise KekUnavailableError(
                f"KEK file {self.path} cannot be read: {exc.strerror or exc}"
            ) from None
        except ValueError as exc:
            raise KekUnavailableError(f"KEK file {self.path}: {exc}") from None
        return _LoadedKeyFile(signature, read_at, InMemoryKekProvider.from_json(content))

    def _is_stale(self, loaded: _LoadedKeyFile) -> bool:
        signature = keyfiles.file_signature(self.path)
        if signature is None:
            raise KekUnavailableError(f"KEK file {self.path} is missing")
        too_old = time.monotonic() - loaded.read_at >= self.recheck_seconds
        return signature != loaded.signature or too_old

    def _current(self) -> InMemoryKekProvider:
        if self._is_stale(self._loaded):
            with self._reload_lock:
                if self._is_stale(self._loaded):
                    self._loaded = self._read()
        return self._loaded.keys

    @classmethod
    def generate(cls, path: str | os.PathLike[str]) -> Self:
        """Create a new key file (mode 0600) with one random KEK; FileExistsError if present."""
        keyfiles.create_exclusive(Path(path), InMemoryKekProvider.generate().to_json().encode())
        return cls(path)

    def add_new_active(self) -> str:
        """Add a new random KEK, make it active (atomic file replace) and return its id."""
        with keyfiles.directory_lock(self.path):
            current = self._read().keys
            updated, kek_id = current.with_new_active()
            keyfiles.replace_atomically(self.path, updated.to_json().encode())
            self._loaded = self._read()
        return kek_id

    def retire(self, kek_id: str) -> bool:
        """Remove a non-active KEK from the file; False when it was already gone (idempotent)."""
        with keyfiles.directory_lock(self.path):
            current = self._read().keys
            if kek_id == current.active_kek_id:
                raise VaultError(f"KEK {kek_id} is active and cannot be retired")
            if kek_id not in current.kek_ids():
                return False
            keyfiles.replace_atomically(self.path, current.without(kek_id).to_json().encode())
            self._loaded = self._read()
        return True

    def reload(self) -> None:
        """Re-read the key file now (normally automatic on the next call after a change)."""
        with self._reload_lock:
            self._loaded = self._read()

    def __repr__(self) -> str:
        return f"LocalKeyFileKekProvider(path={str(self.path)!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("KEK providers hold key material and cannot be pickled")

    @property
    def active_kek_id(self) -> str:
        """Id of the KEK that new wraps use."""
        return self._current().active_kek_id

    def kek_ids(self) -> frozenset[str]:
        """Ids of every KEK in the file."""
        return self._current().kek_ids()

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Wrap a data key under the active KEK."""
        return self._current().wrap(data_key)

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        """Unwrap a data key wrapped under ``kek_id``."""
        return self._current().unwrap(kek_id, wrapped)


class EnvKekProvider:
    """KEKs from a key-set document in an environment variable (containers, mounted secrets).

    Read once at construction: a rotation means deploying a new value and restarting.
    """

    def __init__(
        self, variable: str = DEFAULT_ENV_VARIABLE, *, environ: Mapping[str, str] | None = None
    ) -> None:
        value = (os.environ if environ is None else environ).get(variable)
        if not value:
            raise KekUnavailableError(f"environment variable {variable} is not set")
        self.variable = variable
        self._keys = InMemoryKekProvider.from_json(value)

    def __repr__(self) -> str:
        return f"EnvKekProvider(variable={self.variable!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("KEK providers hold key material and cannot be pickled")

    @property
    def active_kek_id(self) -> str:
        """Id of the KEK that new wraps use."""
        return self._keys.active_kek_id

    def kek_ids(self) -> frozenset[str]:
        """Ids of every KEK in the variable."""
        return self._keys.kek_ids()

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Wrap a data key under the active KEK."""
        return self._keys.wrap(data_key)

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        """Unwrap a data key wrapped under ``kek_id``."""
        return self._keys.unwrap(kek_id, wrapped)
