"""Registering OAuth clients: what each kind may be allowed, and its one-time secret."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from auth import clock
from auth.credentials import CLIENT_SECRET_PREFIX, digest, new_credential
from auth.models import CLIENT_TYPES, OAuthClient
from auth.scopes import SmartScope, is_valid_scope, join_scope, split_scope
from registry.models import Facility

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
CLIENT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class ClientError(ValueError):
    """A client registration is refused; `field` says which part."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def check_redirect_uri(uri: str) -> None:
    """https anywhere, http on loopback only (RFC 8252 §7.3), or a private-use scheme in
    reverse-domain form for native apps (RFC 8252 §7.1); never a fragment or a wildcard."""
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or "*" in uri or any(c.isspace() for c in uri):
        raise ClientError("redirect_uris", f"not an acceptable redirect URI: {uri}")
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return
    if scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return
    if "." in scheme and scheme not in ("http", "https"):
        return
    raise ClientError("redirect_uris", f"not an acceptable redirect URI: {uri}")


def _check(
    *,
    session: Session,
    client_type: str,
    grant_types: list[str],
    redirect_uris: list[str],
    scopes: list[str],
    facility_id: uuid.UUID | None,
    resource_server: bool = False,
) -> None:
    if client_type not in CLIENT_TYPES:
        raise ClientError("client_type", "must be public or confidential")
    if resource_server and client_type != "confidential":
        raise ClientError("resource_server", "a resource server is a confidential client")
    # A resource server may need no grant at all: it only introspects its callers' tokens.
    if (not grant_types and not resource_server) or not set(grant_types) <= set(GRANT_TYPES):
        raise ClientError("grant_types", f"choose from {', '.join(GRANT_TYPES)}")
    if not grant_types and scopes:
        raise ClientError("scope", "scopes are for a client that obtains tokens")
    if client_type == "public" and "client_credentials" in grant_types:
        raise ClientError("grant_types", "a public client cannot use client credentials")
    if "refresh_token" in grant_types and "authorization_code" not in grant_types:
        raise ClientError("grant_types", "refresh tokens come from the authorization code grant")
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientError("redirect_uris", "the authorization code grant needs a redirect URI")
    for uri in redirect_uris:
        check_redirect_uri(uri)
    if "client_credentials" in grant_types:
        if facility_id is None or session.get(Facility, facility_id) is None:
            raise ClientError("facility", "client credentials act for a registered facility")
    for scope in scopes:
        if not is_valid_scope(scope):
            raise ClientError("scope", f"unknown scope {scope}")
        parsed = SmartScope.parse(scope)
        if parsed is not None and parsed.context == "system" and (
            "client_credentials" not in grant_types
        ):
            raise ClientError("scope", "system/ scopes are for client credentials")


def create_client(
    *,
    session: Session,
    name: str,
    client_type: str,
    grant_types: Iterable[str],
    redirect_uris: Iterable[str] = (),
    scopes: Iterable[str] = (),
    first_party: bool = False,
    facility_id: uuid.UUID | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    resource_server: bool = False,
) -> tuple[OAuthClient, str | None]:
    """Register a client; returns it with its secret (confidential only), shown this once.

    `client_secret` may be given only to re-create a known secret (the demo seed); normally
    a 256-bit secret is generated. A `resource_server` (confidential only) may introspect
    every client's access tokens and needs no grant. The caller commits.
    """
    grants = list(dict.fromkeys(grant_types))
    uris = list(dict.fromkeys(redirect_uris))
    scope_list = split_scope(list(scopes))
    _check(session=session, client_type=client_type, grant_types=grants, redirect_uris=uris,
           scopes=scope_list, facility_id=facility_id, resource_server=resource_server)
    client_id = client_id or "c-" + uuid.uuid4().hex[:16]
    if not CLIENT_ID_PATTERN.fullmatch(client_id):
        raise ClientError("client_id", "3-64 of a-z 0-9 . _ -, starting with a letter or digit")
    if session.get(OAuthClient, client_id) is not None:
        raise ClientError("client_id", "taken")
    secret = None
    if client_type == "confidential":
        secret = client_secret or new_credential(CLIENT_SECRET_PREFIX)
    now = clock.now()
    client = OAuthClient(
        client_id=client_id, name=name.strip() or client_id, client_type=client_type,
        client_secret_hash=digest(secret) if secret else None, first_party=first_party,
        grant_types=" ".join(grants), redirect_uris=" ".join(uris),
        scope=join_scope(scope_list), facility_id=facility_id, active=True,
        resource_server=resource_server, secret_rotated_at=now if secret else None, created_at=now,
    )
    session.add(client)
    return client, secret


def rotate_secret(*, session: Session, client: OAuthClient) -> str:
    """A new secret for a confidential client; the old one stops working at once."""
    if client.is_public:
        raise ClientError("client_type", "a public client has no secret")
    secret = new_credential(CLIENT_SECRET_PREFIX)
    client.client_secret_hash = digest(secret)
    client.secret_rotated_at = clock.now()
    return secret


def ensure_first_party_public_client(
    *, session: Session, client_id: str, name: str, redirect_uri: str, scopes: Iterable[str],
) -> bool:
    """A first-party public PKCE client (the portal served by this app) that accepts
    `redirect_uri`: registered when missing, else the URI added (an issuer that moved to
    another port keeps its earlier URIs working). True when it was created. The caller commits.
    """
    client = session.get(OAuthClient, client_id)
    if client is None:
        create_client(session=session, name=name, client_type="public",
                      grant_types=("authorization_code", "refresh_token"),
                      redirect_uris=(redirect_uri,), scopes=scopes, first_party=True,
                      client_id=client_id)
        return True
    check_redirect_uri(redirect_uri)
    uris = client.redirect_uris.split()
    if redirect_uri not in uris:
        client.redirect_uris = " ".join([*uris, redirect_uri])
    return False
