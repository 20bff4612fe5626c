"""Login through an external OpenID Connect provider (the national identity app, VNeID), and
the account it opens.

The provider is a relying-party registration of ours, set by EXTERNAL_OIDC_* (core/config.py);
an empty issuer switches the feature off. The flow is OpenID Connect Core §3.1 (authorization
code) with PKCE S256, `state` and `nonce`:

- Discovery from `{issuer}/.well-known/openid-configuration` (its `issuer` must be ours exactly),
  and the provider's JWKS, each kept a few minutes in memory; an ID token signed by a key id we
  have not seen fetches the JWKS again (key rotation), at most every JWKS_RETRY_SECONDS.
- The PKCE verifier and the nonce are not stored anywhere: both are HMACs of the `state` under
  the app's secret key, so the browser's signed session only holds the state and where to go
  back to, and nothing that could redeem a code.
- The ID token must be signed with an asymmetric algorithm the provider announces, by a key of
  its JWKS, and carry our issuer, our client id as audience (and as `azp` with several
  audiences), an unexpired `exp`, `iat`, `sub` and our nonce.
- The person is named by a claim holding the 12-digit personal identification number
  (EXTERNAL_OIDC_PIN_CLAIM, default `pin`) which must be vouched for by a boolean claim that is
  true (EXTERNAL_OIDC_VERIFIED_CLAIM, default `pin_verified`; empty trusts every PIN of the
  provider). Both are read from the ID token, or from the userinfo endpoint when the ID token
  does not carry the PIN (its `sub` must be the ID token's).

Linking (`link_account`): a known (issuer, subject) logs into the account it was linked to, and
only while the PIN still names that account's citizen; an unknown subject is linked to the
account of the citizen the PIN names, and a citizen without an account gets one whose password
is random and never shown (unusable until the person sets one with a code from the station or
"forgot password"). No citizen record: no account is made; the station registers people.
Nothing here logs the PIN or the subject.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import current_app
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auth import clock
from auth.account_codes import ACCOUNT_ACTIVATED
from auth.accounts import create_account
from auth.credentials import keyed_digest
from auth.external_models import ExternalIdentity
from auth.models import Account
from core.encryption import vault_settings
from core.events import DomainEvent, emit
from registry.services import find_citizen_by_health_id

log = logging.getLogger("phr.auth")

METADATA_TTL_SECONDS = 300
JWKS_TTL_SECONDS = 300
JWKS_RETRY_SECONDS = 30
HTTP_TIMEOUT = (5, 10)  # connect, read
CLOCK_LEEWAY_SECONDS = 60
MAX_RESPONSE_BYTES = 256 * 1024
# Asymmetric only: a symmetric (HS*) ID token would be signed with the client secret, and
# "none" with nothing.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                      "ES256", "ES384", "ES512", "EdDSA")
PIN_PATTERN = re.compile(r"[0-9]{12}")


class ExternalLoginError(Exception):
    """An external login that cannot go on; `reason` is a short code for the log and the page
    (never a value of the person's)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ProviderSettings:
    issuer: str
    client_id: str
    client_secret: str
    name: str
    scope: str
    pin_claim: str
    verified_claim: str


def provider_settings() -> ProviderSettings | None:
    """The configured provider, or None when the feature is off (no issuer)."""
    config = current_app.config
    issuer = str(config.get("EXTERNAL_OIDC_ISSUER") or "").strip().rstrip("/")
    if not issuer:
        return None
    scopes = str(config.get("EXTERNAL_OIDC_SCOPE") or "openid").split()
    if "openid" not in scopes:
        scopes.insert(0, "openid")
    return ProviderSettings(
        issuer=issuer,
        client_id=str(config.get("EXTERNAL_OIDC_CLIENT_ID") or ""),
        client_secret=str(config.get("EXTERNAL_OIDC_CLIENT_SECRET") or ""),
        name=str(config.get("EXTERNAL_OIDC_NAME") or "VNeID"),
        scope=" ".join(scopes),
        pin_claim=str(config.get("EXTERNAL_OIDC_PIN_CLAIM") or "pin"),
        verified_claim=str(config.get("EXTERNAL_OIDC_VERIFIED_CLAIM") or ""),
    )


# --- discovery and keys ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    algorithms: tuple[str, ...]
    token_auth_methods: tuple[str, ...]


_lock = threading.Lock()
_metadata: dict[str, tuple[float, ProviderMetadata]] = {}
_jwks: dict[str, tuple[float, KeySet]] = {}


def forget_provider_cache() -> None:
    """Drop the cached metadata and keys (a test that changes its provider, an operator)."""
    with _lock:
        _metadata.clear()
        _jwks.clear()


def _get_json(url: str, **kwargs: Any) -> Any:
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT, allow_redirects=False, **kwargs)
    except requests.RequestException:
        raise ExternalLoginError("provider-unavailable") from None
    return _json_of(response, failure="provider-unavailable")


def _json_of(response: requests.Response, *, failure: str) -> Any:
    if response.status_code != 200 or len(response.content) > MAX_RESPONSE_BYTES:
        log.info("external provider answered", extra={"status": response.status_code})
        raise ExternalLoginError(failure)
    try:
        return response.json()
    except ValueError:
        raise ExternalLoginError(failure) from None


def _endpoint(value: Any, *, production: bool) -> str:
    """An endpoint URL from the metadata: absolute, https (http allowed outside production,
    for a provider on this machine in development and tests)."""
    if not isinstance(value, str):
        raise ExternalLoginError("provider-unavailable")
    parts = urlsplit(value)
    allowed = ("https",) if production else ("https", "http")
    if parts.scheme not in allowed or not parts.netloc or parts.fragment:
        raise ExternalLoginError("provider-unavailable")
    return value


def discover(settings: ProviderSettings) -> ProviderMetadata:
    """The provider's metadata (OpenID Connect Discovery 1.0), cached METADATA_TTL_SECONDS."""
    now = time.monotonic()
    with _lock:
        cached = _metadata.get(settings.issuer)
    if cached is not None and cached[0] > now:
        return cached[1]
    body = _get_json(settings.issuer + "/.well-known/openid-configuration")
    if not isinstance(body, dict) or str(body.get("issuer", "")).rstrip("/") != settings.issuer:
        # §4.3: the issuer in the document must be the one we asked (mix-up defence).
        raise ExternalLoginError("provider-unavailable")
    production = current_app.config.get("APP_ENV") == "production"
    announced = body.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(a for a in SIGNING_ALGORITHMS if a in announced)
    methods = body.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    userinfo = body.get("userinfo_endpoint")
    metadata = ProviderMetadata(
        issuer=str(body["issuer"]),
        authorization_endpoint=_endpoint(body.get("authorization_endpoint"),
                                         production=production),
        token_endpoint=_endpoint(body.get("token_endpoint"), production=production),
        jwks_uri=_endpoint(body.get("jwks_uri"), production=production),
        userinfo_endpoint=_endpoint(userinfo, production=production) if userinfo else None,
        algorithms=algorithms,
        token_auth_methods=tuple(m for m in methods if isinstance(m, str)),
    )
    if not metadata.algorithms:
        raise ExternalLoginError("provider-unavailable")
    with _lock:
        _metadata[settings.issuer] = (now + METADATA_TTL_SECONDS, metadata)
    return metadata


def _key_set(metadata: ProviderMetadata, *, refresh: bool = False) -> KeySet:
    """The provider's public keys (symmetric keys dropped), cached JWKS_TTL_SECONDS; `refresh`
    fetches again unless that was done in the last JWKS_RETRY_SECONDS."""
    now = time.monotonic()
    with _lock:
        cached = _jwks.get(metadata.jwks_uri)
    if cached is not None:
        fetched_at, keys = cached
        fresh_for = JWKS_RETRY_SECONDS if refresh else JWKS_TTL_SECONDS
        if now - fetched_at < fresh_for:
            return keys
    body = _get_json(metadata.jwks_uri)
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        raise ExternalLoginError("provider-unavailable")
    public = [key for key in body["keys"]
              if isinstance(key, dict) and key.get("kty") in ("RSA", "EC", "OKP")
              and key.get("use", "sig") == "sig"]
    try:
        keys = KeySet.import_key_set({"keys": public})
    except (JoseError, ValueError, TypeError, KeyError):
        raise ExternalLoginError("provider-unavailable") from None
    with _lock:
        _jwks[metadata.jwks_uri] = (now, keys)
    return keys


# --- the flow --------------------------------------------------------------------------------


def new_state() -> str:
    return secrets.token_urlsafe(32)


def _derived(state: str, purpose: str) -> str:
    """A value only this service can compute from the state (43 URL-safe characters: a valid
    PKCE verifier)."""
    secret = current_app.config["SECRET_KEY"]
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    mac = hmac.new(key, f"phr-external-oidc\x00{purpose}\x00{state}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def code_verifier(state: str) -> str:
    return _derived(state, "pkce")


def nonce_for(state: str) -> str:
    return _derived(state, "nonce")


def authorization_url(
    settings: ProviderSettings, metadata: ProviderMetadata, *, state: str, redirect_uri: str,
    language: str,
) -> str:
    """Where the browser goes to log in at the provider."""
    return add_params_to_uri(metadata.authorization_endpoint, [
        ("response_type", "code"),
        ("client_id", settings.client_id),
        ("redirect_uri", redirect_uri),
        ("scope", settings.scope),
        ("state", state),
        ("nonce", nonce_for(state)),
        ("code_challenge", create_s256_code_challenge(code_verifier(state))),
        ("code_challenge_method", "S256"),
        ("ui_locales", language),
    ])


@dataclass(frozen=True)
class VerifiedLogin:
    """What the provider vouched for: its subject and the person's PIN (never logged)."""

    issuer: str
    subject: str
    pin: str


def complete_login(
    settings: ProviderSettings, *, code: str, state: str, redirect_uri: str,
) -> VerifiedLogin:
    """Exchange the code, verify the ID token, read the verified PIN."""
    metadata = discover(settings)
    tokens = _exchange_code(settings, metadata, code=code, state=state,
                            redirect_uri=redirect_uri)
    claims = _verify_id_token(settings, metadata, tokens["id_token"], nonce=nonce_for(state))
    source = claims
    if settings.pin_claim not in claims:
        source = _userinfo(metadata, tokens.get("access_token"), subject=claims["sub"])
    return VerifiedLogin(issuer=metadata.issuer, subject=claims["sub"],
                         pin=_verified_pin(settings, source))


def _exchange_code(
    settings: ProviderSettings, metadata: ProviderMetadata, *, code: str, state: str,
    redirect_uri: str,
) -> dict[str, Any]:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier(state)}
    auth = None
    if not settings.client_secret:
        data["client_id"] = settings.client_id
    elif "client_secret_basic" in metadata.token_auth_methods:
        # RFC 6749 §2.3.1: each part form-urlencoded before Basic.
        auth = (quote(settings.client_id, safe=""), quote(settings.client_secret, safe=""))
    elif "client_secret_post" in metadata.token_auth_methods:
        data.update(client_id=settings.client_id, client_secret=settings.client_secret)
    else:
        raise ExternalLoginError("provider-unavailable")
    try:
        response = requests.post(metadata.token_endpoint, data=data, auth=auth,
                                 timeout=HTTP_TIMEOUT, allow_redirects=False,
                                 headers={"Accept": "application/json"})
    except requests.RequestException:
        raise ExternalLoginError("provider-unavailable") from None
    if 400 <= response.status_code < 500:
        # The code was refused (expired, replayed, not ours): not an outage.
        log.info("external token endpoint refused the code",
                 extra={"status": response.status_code})
        raise ExternalLoginError("token-exchange")
    body = _json_of(response, failure="provider-unavailable")
    if not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
        raise ExternalLoginError("token-exchange")
    return body


def _verify_id_token(
    settings: ProviderSettings, metadata: ProviderMetadata, id_token: str, *, nonce: str,
) -> dict[str, Any]:
    token = _decode(metadata, id_token)
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=int(clock.now().timestamp()),
        leeway=CLOCK_LEEWAY_SECONDS,
        iss={"essential": True, "value": metadata.issuer},
        aud={"essential": True, "value": settings.client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as error:
        log.info("external ID token refused", extra={"error": type(error).__name__})
        raise ExternalLoginError("id-token") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != settings.client_id:
        raise ExternalLoginError("id-token")  # OpenID Connect Core §3.1.3.7, 4-6
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise ExternalLoginError("id-token")
    return claims


def _decode(metadata: ProviderMetadata, id_token: str) -> jwt.Token:
    for refresh in (False, True):
        keys = _key_set(metadata, refresh=refresh)
        try:
            return jwt.decode(id_token, keys, algorithms=list(metadata.algorithms))
        except InvalidKeyIdError:
            continue  # a key we have not fetched yet: once more with a fresh JWKS
        except (JoseError, ValueError, TypeError, KeyError) as error:
            log.info("external ID token refused", extra={"error": type(error).__name__})
            raise ExternalLoginError("id-token") from None
    log.info("external ID token refused", extra={"error": "unknown-key"})
    raise ExternalLoginError("id-token")


def _userinfo(metadata: ProviderMetadata, access_token: Any, *, subject: str) -> dict[str, Any]:
    if metadata.userinfo_endpoint is None or not isinstance(access_token, str):
        raise ExternalLoginError("pin-missing")
    body = _get_json(metadata.userinfo_endpoint,
                     headers={"Authorization": f"Bearer {access_token}",
                              "Accept": "application/json"})
    # OpenID Connect Core §5.3.2: userinfo about another subject must not be used.
    if not isinstance(body, dict) or body.get("sub") != subject:
        raise ExternalLoginError("id-token")
    return body


def _verified_pin(settings: ProviderSettings, claims: dict[str, Any]) -> str:
    if settings.verified_claim and claims.get(settings.verified_claim) is not True:
        raise ExternalLoginError("pin-unverified")
    pin = claims.get(settings.pin_claim)
    # A string of ASCII digits: a JSON number would have lost the leading zeros of the
    # province code.
    if not isinstance(pin, str) or not PIN_PATTERN.fullmatch(pin):
        raise ExternalLoginError("pin-missing")
    return pin


# --- linking ---------------------------------------------------------------------------------


def subject_digest(issuer: str, subject: str) -> bytes:
    """The stored form of a provider's subject: an HMAC under the blind index key."""
    return keyed_digest(vault_settings().blind_index_key, "external-oidc-subject", issuer,
                        subject)


@dataclass(frozen=True)
class LinkResult:
    account: Account
    linked_now: bool
    account_created: bool


def link_account(*, session: Session, login: VerifiedLogin) -> LinkResult:
    """The account this verified login opens (see the module's docstring); the caller commits.
    Raises ExternalLoginError `no-record`, `identity-mismatch` or `account-disabled`."""
    try:
        return _link(session=session, login=login)
    except IntegrityError:
        # The same person's other tab linked (or opened the account) first: use theirs.
        session.rollback()
        return _link(session=session, login=login)


def _link(*, session: Session, login: VerifiedLogin) -> LinkResult:
    now = clock.now()
    digest = subject_digest(login.issuer, login.subject)
    identity = session.scalars(
        select(ExternalIdentity).where(ExternalIdentity.issuer == login.issuer,
                                       ExternalIdentity.subject_digest == digest)
    ).one_or_none()
    citizen = find_citizen_by_health_id(session=session, health_id=login.pin)
    if identity is not None:
        account = session.get(Account, identity.account_id)
        if account is None or citizen is None or account.citizen_id != citizen.id:
            raise ExternalLoginError("identity-mismatch")
        _require_active(account)
        identity.last_login_at = now
        account.last_login_at = now
        return LinkResult(account=account, linked_now=False, account_created=False)

    if citizen is None:
        raise ExternalLoginError("no-record")
    created = False
    account = session.scalars(
        select(Account).where(Account.citizen_id == citizen.id)
    ).one_or_none()
    if account is None:
        # A password nobody knows (256 random bits, never shown or kept): the person logs in
        # through the provider until they set one with a code.
        account = create_account(session=session, role="citizen",
                                 password=secrets.token_urlsafe(32), citizen_id=citizen.id)
        session.flush()  # the account row before the link that points to it
        created = True
        # Told like an account opened with a station's code ("if this was not you...").
        emit(session, DomainEvent(name=ACCOUNT_ACTIVATED, citizen_id=citizen.id,
                                  data={"account_id": str(account.id)}))
    else:
        _require_active(account)
        other = session.scalars(
            select(ExternalIdentity.id).where(ExternalIdentity.issuer == login.issuer,
                                              ExternalIdentity.account_id == account.id)
        ).first()
        if other is not None:
            # This account answers to another subject of the same provider.
            raise ExternalLoginError("identity-mismatch")
    session.add(ExternalIdentity(id=uuid.uuid4(), issuer=login.issuer, subject_digest=digest,
                                 account_id=account.id, created_at=now, last_login_at=now))
    account.last_login_at = now
    session.flush()
    return LinkResult(account=account, linked_now=True, account_created=created)


def _require_active(account: Account) -> None:
    if not account.active:
        raise ExternalLoginError("account-disabled")


# --- where `next` may point ------------------------------------------------------------------

AUTHORIZE_PATH = "/oauth/authorize"
MAX_NEXT_LENGTH = 4096
_NEXT_PATTERN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space


def is_authorize_path(value: str) -> bool:
    """Whether `value` is this service's own authorization endpoint (path and query only):
    nothing else may be where a login sends the browser (no open redirect)."""
    if not value or len(value) > MAX_NEXT_LENGTH or not _NEXT_PATTERN.fullmatch(value):
        return False
    if "\\" in value or "#" in value:
        return False
    parts = urlsplit(value)
    return (not parts.scheme and not parts.netloc and parts.path == AUTHORIZE_PATH
            and value.startswith(AUTHORIZE_PATH))
