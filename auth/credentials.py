"""Random credentials (tokens, codes, client secrets), their digests, and sealed replies.

Every credential is 256 random bits behind a short prefix that says what it is (secret
scanners and log scrubbers recognise it; a code is never mistaken for a token). Only the
SHA-256 digest is stored: with 256-bit preimages a plain digest cannot be brute-forced, and
lookup stays one indexed equality.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Prefixes, not secrets (S105 mistakes them for passwords).
ACCESS_TOKEN_PREFIX = "phr_at_"  # noqa: S105
REFRESH_TOKEN_PREFIX = "phr_rt_"  # noqa: S105
AUTHORIZATION_CODE_PREFIX = "phr_ac_"
CLIENT_SECRET_PREFIX = "phr_cs_"  # noqa: S105

_RANDOM_BYTES = 32
_NONCE_BYTES = 12
_SEAL_VERSION = b"\x01"


def new_credential(prefix: str) -> str:
    """A fresh credential: prefix + 256 random bits, URL-safe."""
    return prefix + secrets.token_urlsafe(_RANDOM_BYTES)


def digest(value: str) -> bytes:
    """The stored form of a credential."""
    return hashlib.sha256(value.encode("utf-8")).digest()


def digest_matches(value: str, expected: bytes | None) -> bool:
    """Constant-time comparison of a presented credential with a stored digest."""
    if expected is None:
        return False
    return hmac.compare_digest(digest(value), expected)


def _seal_key(secret: str, context: bytes) -> bytes:
    # A different derivation from the stored digest: knowing the digest does not open the seal.
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"phr-seal\x00" + context
    ).derive(secret.encode("utf-8"))


def seal(secret: str, payload: bytes, *, context: bytes) -> bytes:
    """Encrypt payload so that only a holder of `secret` can read it back."""
    nonce = os.urandom(_NONCE_BYTES)
    body = AESGCM(_seal_key(secret, context)).encrypt(nonce, payload, _SEAL_VERSION + context)
    return _SEAL_VERSION + nonce + body


def unseal(secret: str, sealed: bytes, *, context: bytes) -> bytes | None:
    """The payload sealed under `secret`, or None when the secret or context is wrong."""
    if not sealed or sealed[:1] != _SEAL_VERSION:
        return None
    nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return AESGCM(_seal_key(secret, context)).decrypt(nonce, body, _SEAL_VERSION + context)
    except InvalidTag:
        return None


def keyed_digest(key: bytes, *parts: str) -> bytes:
    """HMAC-SHA256 of the parts under `key` (throttle keys: usernames and addresses unseen)."""
    message = b"\x00".join(part.encode("utf-8") for part in parts)
    return hmac.new(key, message, hashlib.sha256).digest()
