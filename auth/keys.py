"""The ID-token signing key (EC P-256, ES256) and its public JWK set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, current_app
from joserfc.jwk import ECKey

ALGORITHM = "ES256"
_EXTENSION = "phr.oauth_signing_key"


def load_signing_key(path: str | Path) -> ECKey:
    """Read the PEM file named by OAUTH_SIGNING_KEY_FILE; the kid is its RFC 7638 thumbprint."""
    key = ECKey.import_key(Path(path).read_bytes())
    if key.curve_name != "P-256" or not key.is_private:
        raise ValueError("OAUTH_SIGNING_KEY_FILE must hold an EC P-256 private key")
    return ECKey.import_key(
        key.as_dict(private=True),
        parameters={"kid": key.thumbprint(), "use": "sig", "alg": ALGORITHM},
    )


def install_signing_key(app: Flask) -> None:
    app.extensions[_EXTENSION] = load_signing_key(app.config["OAUTH_SIGNING_KEY_FILE"])


def signing_key() -> ECKey:
    return current_app.extensions[_EXTENSION]


def key_id() -> str:
    return str(signing_key().kid)


def public_jwks() -> dict[str, Any]:
    """The JWK set published at /oauth/jwks (public parts only)."""
    return {"keys": [dict(signing_key().as_dict(private=False))]}
