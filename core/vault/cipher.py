"""Field encryption with AES-256-GCM, bound to the field's coordinates by associated data.

Ciphertext layout (format version 1)::

    version (1 byte, 0x01) | data key id (16 bytes, UUID) | nonce (12 bytes) | GCM ciphertext+tag

The associated data is ``version | key id`` followed by the canonical encoding of the
:class:`FieldContext`, so flipping any bit anywhere, or moving the value to another table,
column, row or citizen, fails authentication. The plaintext is UTF-8 text in Unicode NFC,
padded (ISO/IEC 7816-4: 0x80 then zeros) to a multiple of 16 bytes so that ciphertext length
does not reveal short enumerations such as sex ("male"/"female").
"""

from __future__ import annotations

import functools
import json
import os
import struct
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.vault.errors import DecryptionError

FORMAT_VERSION = 1
DATA_KEY_LENGTH = 32
_VERSION_BYTE = bytes([FORMAT_VERSION])
_KEY_ID_LENGTH = 16
_NONCE_LENGTH = 12
_TAG_LENGTH = 16
_PAD_BLOCK = 16
HEADER_LENGTH = 1 + _KEY_ID_LENGTH
_BODY_OFFSET = HEADER_LENGTH + _NONCE_LENGTH
MIN_CIPHERTEXT_LENGTH = _BODY_OFFSET + _PAD_BLOCK + _TAG_LENGTH
_AAD_DOMAIN = b"phr-vn/vault/field/v1"

JsonValue = dict[str, Any] | list[Any]


@dataclass(frozen=True, slots=True)
class FieldContext:
    """Where an encrypted value lives; its canonical encoding is the GCM associated data."""

    table: str
    column: str
    row_id: str
    citizen_id: str
    encoded: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = (self.table, self.column, self.row_id, self.citizen_id)
        for name, value in zip(_CONTEXT_FIELDS, values, strict=True):
            if not isinstance(value, str):
                raise TypeError(f"FieldContext.{name} must be str")
            if not value:
                raise ValueError(f"FieldContext.{name} must not be empty")
        # Built on every field read: the (table, column) part is computed once per column.
        object.__setattr__(self, "encoded", _aad_prefix(self.table, self.column)
                           + _length_prefixed(self.row_id) + _length_prefixed(self.citizen_id))


_CONTEXT_FIELDS = ("table", "column", "row_id", "citizen_id")


def _length_prefixed(value: str) -> bytes:
    # Length prefixes make the encoding injective: ("a|b", "c") != ("a", "b|c").
    raw = value.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


@functools.lru_cache(maxsize=1024)
def _aad_prefix(table: str, column: str) -> bytes:
    return _AAD_DOMAIN + _length_prefixed(table) + _length_prefixed(column)


def as_bytes(ciphertext: bytes | bytearray | memoryview) -> bytes:
    """Return ``ciphertext`` as bytes (drivers may hand back memoryview or bytearray)."""
    return ciphertext if isinstance(ciphertext, bytes) else bytes(ciphertext)


def _error(aad: FieldContext | None, key_id: uuid.UUID | None, reason: str) -> DecryptionError:
    if aad is None:
        return DecryptionError(key_id=key_id, reason=reason)
    return DecryptionError(
        table=aad.table, column=aad.column, row_id=aad.row_id, key_id=key_id, reason=reason
    )


def ciphertext_key_id(
    ciphertext: bytes | bytearray | memoryview, *, aad: FieldContext | None = None
) -> uuid.UUID:
    """Return the data key id from a ciphertext header without decrypting (unauthenticated)."""
    data = as_bytes(ciphertext)
    if len(data) < MIN_CIPHERTEXT_LENGTH:
        raise _error(aad, None, "ciphertext truncated")
    if data[0] != FORMAT_VERSION:
        raise _error(aad, None, "unsupported format version")
    return uuid.UUID(bytes=data[1:HEADER_LENGTH])


def _pad(raw: bytes) -> bytes:
    fill = _PAD_BLOCK - len(raw) % _PAD_BLOCK
    return raw + b"\x80" + b"\x00" * (fill - 1)


def _unpad(padded: bytes) -> bytes | None:
    stripped = padded.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(padded) - len(stripped) >= _PAD_BLOCK:
        return None
    return stripped[:-1]


def _nfc_json(value: Any) -> Any:
    """Return ``value`` with every string (keys included) in NFC; reject keys that then collide."""
    if isinstance(value, str):
        return value if value.isascii() else unicodedata.normalize("NFC", value)
    if isinstance(value, list | tuple):
        return [_nfc_json(item) for item in value]
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("JSON object keys must be str")
            nfc_key = key if key.isascii() else unicodedata.normalize("NFC", key)
            if nfc_key in result:
                raise ValueError("JSON object has keys that are equal after NFC normalisation")
            result[nfc_key] = _nfc_json(item)
        return result
    return value


class FieldCipher:
    """AES-256-GCM field cipher for one data key; build once per key and reuse (KeyRing does)."""

    __slots__ = ("_aead", "_header", "key_id")

    def __init__(self, *, key_id: uuid.UUID, data_key: bytes) -> None:
        if not isinstance(key_id, uuid.UUID):
            raise TypeError("key_id must be a uuid.UUID")
        if not isinstance(data_key, bytes) or len(data_key) != DATA_KEY_LENGTH:
            raise ValueError("data_key must be 32 bytes (AES-256)")
        self.key_id = key_id
        self._aead = AESGCM(data_key)
        self._header = _VERSION_BYTE + key_id.bytes

    def __repr__(self) -> str:
        return f"FieldCipher(key_id={self.key_id})"

    @property
    def header(self) -> bytes:
        """The ciphertext header this key produces: version byte and key id bytes."""
        return self._header

    def __reduce__(self) -> NoReturn:
        # Key material must never be serialised into caches, queues or sessions.
        raise TypeError("FieldCipher holds key material and cannot be pickled")

    def encrypt_bytes(self, raw: bytes, *, aad: FieldContext) -> bytes:
        """Encrypt UTF-8 bytes (already normalised) into the version-1 format."""
        nonce = os.urandom(_NONCE_LENGTH)
        body = self._aead.encrypt(nonce, _pad(raw), self._header + aad.encoded)
        return self._header + nonce + body

    def decrypt_bytes(
        self, ciphertext: bytes | bytearray | memoryview, *, aad: FieldContext
    ) -> bytes:
        """Authenticate and decrypt a version-1 ciphertext into its UTF-8 bytes."""
        data = as_bytes(ciphertext)
        if len(data) < MIN_CIPHERTEXT_LENGTH or data[:HEADER_LENGTH] != self._header:
            # Slow path only on failure: ciphertext_key_id raises for truncation and version.
            other_key_id = ciphertext_key_id(data, aad=aad)
            raise _error(aad, other_key_id, "ciphertext is under another data key")
        try:
            padded = self._aead.decrypt(
                data[HEADER_LENGTH:_BODY_OFFSET], data[_BODY_OFFSET:], self._header + aad.encoded
            )
        except InvalidTag:
            raise _error(aad, self.key_id, "authentication failed") from None
        raw = _unpad(padded)
        if raw is None:
            raise _error(aad, self.key_id, "invalid padding")
        return raw

    def encrypt_field(self, plaintext: str, *, aad: FieldContext) -> bytes:
        """Encrypt text after normalising it to NFC."""
        if not isinstance(plaintext, str):
            raise TypeError("plaintext must be str")
        return self.encrypt_bytes(unicodedata.normalize("NFC", plaintext).encode(), aad=aad)

    def decrypt_field(
        self, ciphertext: bytes | bytearray | memoryview, *, aad: FieldContext
    ) -> str:
        """Decrypt a ciphertext made by :meth:`encrypt_field` back to its NFC text."""
        raw = self.decrypt_bytes(ciphertext, aad=aad)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _error(aad, self.key_id, "payload is not UTF-8") from None

    def encrypt_json(self, value: JsonValue, *, aad: FieldContext) -> bytes:
        """Encrypt a JSON object or array (strings NFC-normalised) as compact UTF-8 JSON."""
        if not isinstance(value, dict | list):
            raise TypeError("value must be a dict or a list")
        text = json.dumps(
            _nfc_json(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
        return self.encrypt_bytes(text.encode(), aad=aad)

    def decrypt_json(
        self, ciphertext: bytes | bytearray | memoryview, *, aad: FieldContext
    ) -> JsonValue:
        """Decrypt a ciphertext made by :meth:`encrypt_json`."""
        text = self.decrypt_field(ciphertext, aad=aad)
        try:
            value = json.loads(text)
        except ValueError:
            raise _error(aad, self.key_id, "payload is not JSON") from None
        if not isinstance(value, dict | list):
            raise _error(aad, self.key_id, "payload is not a JSON object or array")
        return value


def encrypt_field(
    *, data_key: bytes, key_id: uuid.UUID, plaintext: str, aad: FieldContext
) -> bytes:
    """Encrypt one text field under a data key (NFC-normalised, bound to ``aad``)."""
    return FieldCipher(key_id=key_id, data_key=data_key).encrypt_field(plaintext, aad=aad)


def decrypt_field(
    *, data_key: bytes, ciphertext: bytes | bytearray | memoryview, aad: FieldContext
) -> str:
    """Decrypt one text field; any failure raises DecryptionError with coordinates only."""
    key_id = ciphertext_key_id(ciphertext, aad=aad)
    return FieldCipher(key_id=key_id, data_key=data_key).decrypt_field(ciphertext, aad=aad)


def encrypt_json(
    *, data_key: bytes, key_id: uuid.UUID, value: JsonValue, aad: FieldContext
) -> bytes:
    """Encrypt a JSON object or array under a data key."""
    return FieldCipher(key_id=key_id, data_key=data_key).encrypt_json(value, aad=aad)


def decrypt_json(
    *, data_key: bytes, ciphertext: bytes | bytearray | memoryview, aad: FieldContext
) -> JsonValue:
    """Decrypt a JSON object or array made by :func:`encrypt_json`."""
    key_id = ciphertext_key_id(ciphertext, aad=aad)
    return FieldCipher(key_id=key_id, data_key=data_key).decrypt_json(ciphertext, aad=aad)
