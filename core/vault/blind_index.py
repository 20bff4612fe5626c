"""Blind indexes: keyed HMAC-SHA256 of a normalised value, for exact lookup of encrypted fields.

``blind_index`` returns the 32 raw digest bytes (store them in a binary column with an index).
The MAC input is ``domain | len(field) | field | len(value) | value`` (4-byte big-endian
lengths), so each field has its own index space and no (field, value) pair can collide with
another. Values are NFC-normalised and stripped here; domain-specific forms (phone numbers:
:func:`normalize_phone_vn`) must be applied by the caller before indexing and before lookup.

Key file (mode 0600): ``{"key": "<base64 of 32 bytes>"}``. The key is separate from every KEK
and data key: whoever holds it can test guesses against the index, but cannot decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import struct
import unicodedata
from pathlib import Path

from core.vault import keyfiles
from core.vault.errors import VaultError
from core.vault.phone import normalize_phone_vn

__all__ = [
    "BLIND_INDEX_KEY_LENGTH",
    "blind_index",
    "generate_blind_index_key",
    "load_blind_index_key",
    "normalize_phone_vn",
    "parse_blind_index_key",
]

BLIND_INDEX_KEY_LENGTH = 32
_DOMAIN = b"phr-vn/vault/blind-index/v1\x00"


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def blind_index(*, key: bytes, field: str, value: str) -> bytes:
    """Return the 32-byte HMAC-SHA256 blind index of ``value`` (NFC, stripped) for ``field``."""
    if not isinstance(key, bytes) or len(key) != BLIND_INDEX_KEY_LENGTH:
        raise ValueError("blind index key must be 32 bytes")
    if not isinstance(field, str) or not field:
        raise ValueError("field must be a non-empty str")
    if not isinstance(value, str):
        raise TypeError("value must be str")
    normalised = unicodedata.normalize("NFC", value).strip()
    if not normalised:
        # Every empty value would share one index entry; store NULL instead.
        raise ValueError("an empty value has no blind index")
    message = _DOMAIN + _length_prefixed(field.encode()) + _length_prefixed(normalised.encode())
    return hmac.digest(key, message, hashlib.sha256)


def parse_blind_index_key(text: str | bytes) -> bytes:
    """Parse a blind-index key document (also usable on an environment variable's value)."""
    try:
        document = json.loads(text)
        raw = base64.b64decode(document["key"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise VaultError('blind index key document invalid: needs {"key": base64}') from None
    if len(raw) != BLIND_INDEX_KEY_LENGTH:
        raise VaultError("blind index key must be 32 bytes")
    return raw


def generate_blind_index_key(path: str | os.PathLike[str]) -> bytes:
    """Create a key file (mode 0600) with a random key and return the key; never overwrites."""
    key = secrets.token_bytes(BLIND_INDEX_KEY_LENGTH)
    document = json.dumps({"key": base64.b64encode(key).decode()}) + "\n"
    keyfiles.create_exclusive(Path(path), document.encode())
    return key


def load_blind_index_key(path: str | os.PathLike[str]) -> bytes:
    """Read the key from a key file; VaultError when missing, unsafe or invalid."""
    try:
        content, _ = keyfiles.read_key_file(Path(path))
    except (OSError, ValueError) as exc:
        raise VaultError(f"blind index key file {path} cannot be read: {exc}") from None
    return parse_blind_index_key(content)
