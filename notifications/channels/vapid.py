"""Web Push subscriptions and VAPID keys (no network: importable without pywebpush).

The device "token" of a browser is its PushSubscription JSON (endpoint and keys). Endpoints are
accepted only on known push services (WEBPUSH_ENDPOINT_HOSTS), over https, so a subscription
cannot make the server send requests to arbitrary hosts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_SUBSCRIPTION_BYTES = 4096


class InvalidSubscription(ValueError):
    """The subscription JSON is malformed or names a host we do not push to."""


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _host_allowed(host: str, allowed: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == entry or host.endswith("." + entry) for entry in allowed)


def parse_subscription(raw: str, *, allowed_hosts: Sequence[str]) -> dict[str, Any]:
    """Validate a PushSubscription JSON; return it normalised (endpoint and the two keys)."""
    if len(raw.encode()) > MAX_SUBSCRIPTION_BYTES:
        raise InvalidSubscription("too long")
    try:
        data = json.loads(raw)
        endpoint = str(data["endpoint"])
        p256dh = str(data["keys"]["p256dh"])
        auth = str(data["keys"]["auth"])
        public = _b64url_decode(p256dh)
        secret = _b64url_decode(auth)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidSubscription("not a PushSubscription") from None
    if len(public) != 65 or public[0] != 4 or len(secret) != 16:
        raise InvalidSubscription("bad keys")
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if not _host_allowed(host, allowed_hosts):
        raise InvalidSubscription("push service not allowed")
    # Plain http only for a loopback endpoint the operator listed explicitly (local testing).
    if parts.scheme != "https" and not (parts.scheme == "http" and host in _LOOPBACK):
        raise InvalidSubscription("https required")
    return {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}


def load_or_create_vapid_key(path: str, *, production: bool) -> ec.EllipticCurvePrivateKey:
    """The VAPID private key (PEM); generated once in development, required in production."""
    key_path = Path(path)
    if not key_path.exists():
        if production:
            raise FileNotFoundError("WEBPUSH_VAPID_PRIVATE_KEY_FILE does not exist")
        from core.config import write_secret_file

        key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        generated = ec.generate_private_key(ec.SECP256R1())
        try:
            write_secret_file(key_path, generated.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ))
        except FileExistsError:
            pass  # another process generated it first: use theirs
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the VAPID key must be an EC P-256 private key")
    return key


def application_server_key(key: ec.EllipticCurvePrivateKey) -> str:
    """The public key browsers pass to pushManager.subscribe (base64url, uncompressed point)."""
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def topic_for(dedup_key: str) -> str:
    """RFC 8030 Topic: at most 32 characters of the URL-safe base64 alphabet."""
    digest = hashlib.sha256(dedup_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()[:32]
