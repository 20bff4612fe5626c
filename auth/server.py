"""The Authlib authorization server, with every default that is not ours overridden.

- Grants: authorization code (PKCE S256 required of every client; `plain` refused), refresh
  token (rotation on: a new refresh token each time, reuse detection with a grace window),
  client credentials (confidential clients of a facility). No implicit, no password grant.
- Tokens: our own generator (Authlib's default lives 10 days and re-derives the scope from the
  client): opaque, ≤ 15 min, refresh only with `offline_access`; stored as digests.
- Endpoints: RFC 7009 revocation accepts public clients (the phone logs out); RFC 7662
  introspection only confidential clients: for their own tokens, and a client registered as a
  resource server for any client's access tokens.
- OpenID Connect: ID tokens signed ES256 with the key of OAUTH_SIGNING_KEY_FILE.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter as _IssuerParameter
from authlib.oidc.core import grants as oidc_grants
from flask import Flask, current_app
from joserfc.jwk import ECKey
from sqlalchemy import select

from auth import clock, tokens
from auth.clients import CLIENT_ID_PATTERN
from auth.credentials import (
    ACCESS_TOKEN_PREFIX,
    AUTHORIZATION_CODE_PREFIX,
    REFRESH_TOKEN_PREFIX,
    digest,
    new_credential,
    seal,
    unseal,
)
from auth.keys import ALGORITHM, key_id, signing_key
from auth.models import Account, AuthorizationCode, OAuthClient, OAuthToken
from auth.scopes import (
    all_covered,
    is_valid_scope,
    join_scope,
    split_scope,
    trim_for_role,
)
from auth.userinfo import user_claims
from core.db import db

log = logging.getLogger("phr.auth")

_GRACE_CONTEXT = b"refresh-successor"
USER_TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def issuer() -> str:
    return str(current_app.config["OAUTH_ISSUER"]).rstrip("/")


def query_client(client_id: str | None) -> OAuthClient | None:
    # Every registered id has the registration's shape: anything else (a NUL, which PostgreSQL
    # refuses in text, 10 KB of junk) is an unknown client without asking the database.
    if not client_id or not CLIENT_ID_PATTERN.fullmatch(client_id):
        return None
    client = db.session.get(OAuthClient, client_id)
    return client if client is not None and client.active else None


def _active_account(account_id: Any) -> Account | None:
    if account_id is None:
        return None
    account = db.session.get(Account, account_id)
    return account if account is not None and account.active else None


def generate_token(
    grant_type: str,
    client: OAuthClient,
    user: Account | None = None,
    scope: str | None = None,
    expires_in: int | None = None,
    include_refresh_token: bool = True,
) -> dict[str, Any]:
    """A bearer token response. The scope is used as decided by the grant (never widened);
    a refresh token only for `offline_access` and clients allowed the refresh grant."""
    scopes = split_scope(scope)
    lifetime = int(tokens.settings().access_token.total_seconds())
    token: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": new_credential(ACCESS_TOKEN_PREFIX),
        "expires_in": min(expires_in or lifetime, lifetime),
    }
    if (
        include_refresh_token
        and user is not None
        and "offline_access" in scopes
        and client.check_grant_type("refresh_token")
    ):
        token["refresh_token"] = new_credential(REFRESH_TOKEN_PREFIX)
    if scopes:
        token["scope"] = join_scope(scopes)
    return token


def save_token(token: dict[str, Any], request: Any) -> None:
    """Authlib's hook: store the digests; remember the row for rotation bookkeeping."""
    request.issued_token = tokens.add_token(
        session=db.session,
        token=token,
        client=request.client,
        grant_type=request.payload.grant_type,
        account=request.user,
        code=request.authorization_code,
        parent=request.refresh_token,
    )


class AuthorizationServer(FlaskAuthorizationServer):
    def validate_requested_scope(self, scope: str | None) -> None:
        """Every requested scope must be well-formed (SMART v2 or openid/profile/offline)."""
        for item in split_scope(scope):
            if not is_valid_scope(item):
                # Not echoed: Authlib refuses a description with quotes or non-ASCII (a 500).
                raise InvalidScopeError("Unknown scope.")


class S256CodeChallenge(CodeChallenge):
    """PKCE for every client, S256 only (SMART App Launch; Authlib also takes `plain`)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": CodeChallenge.CODE_CHALLENGE_METHODS["S256"]}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = USER_TOKEN_AUTH_METHODS

    @staticmethod
    def validate_authorization_redirect_uri(request: Any, client: OAuthClient) -> str:
        """Authlib's, without echoing the URI into the error (a quote or a non-ASCII
        character there made Authlib's error constructor raise: a 500, not invalid_request)."""
        redirect_uri = request.payload.redirect_uri
        if redirect_uri:
            if not client.check_redirect_uri(redirect_uri):
                raise InvalidRequestError("The redirect URI is not registered for the client.")
            return str(redirect_uri)
        default = client.get_default_redirect_uri()
        if not default:
            raise InvalidRequestError("Missing 'redirect_uri' in request.",
                                      state=request.payload.state)
        return default

    def generate_authorization_code(self) -> str:
        return new_credential(AUTHORIZATION_CODE_PREFIX)

    def save_authorization_code(self, code: str, request: Any) -> None:
        account: Account = request.user
        now = clock.now()
        data = request.payload.data
        scopes = trim_for_role(split_scope(request.scope), role=account.role)
        db.session.add(AuthorizationCode(
            code_hash=digest(code),
            client_id=request.client.client_id,
            account_id=account.id,
            redirect_uri=request.payload.redirect_uri,
            scope=join_scope(scopes),
            nonce=data.get("nonce"),
            code_challenge=data["code_challenge"],
            code_challenge_method=data.get("code_challenge_method", "S256"),
            auth_time=getattr(request, "auth_time", None) or now,
            created_at=now,
            expires_at=now + tokens.settings().code,
        ))
        db.session.flush()

    def query_authorization_code(self, code: str, client: OAuthClient) -> Any:
        row = db.session.scalars(
            select(AuthorizationCode).where(
                AuthorizationCode.code_hash == digest(code),
                AuthorizationCode.client_id == client.client_id,
            )
        ).one_or_none()
        if row is None:
            return None
        if row.used_at is not None:
            _code_replayed(row)
        if row.expires_at <= clock.now():
            return None
        return row

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Kept (marked used) rather than deleted: a replay must be recognised."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Account | None:
        return _active_account(authorization_code.account_id)

    def create_token_response(self) -> Any:
        code: AuthorizationCode = self.request.authorization_code
        if not tokens.claim_code(session=db.session, code=code, now=clock.now()):
            _code_replayed(code)
        return super().create_token_response()


def _code_replayed(code: AuthorizationCode) -> None:
    """RFC 6749 §4.1.2: a reused code is refused and what it issued is revoked."""
    family_id, client_id = code.id, code.client_id
    db.session.rollback()
    revoked = tokens.revoke_family(session=db.session, family_id=family_id, reason="code-reuse")
    db.session.commit()
    log.warning("authorization code replayed", extra={"client_id": client_id,
                                                       "revoked_tokens": revoked})
    raise InvalidGrantError("The authorization code was already used.")


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Rotation with reuse detection.

    Using a refresh token marks it rotated and issues a successor. Presenting a rotated token
    again is a replay: within the grace window and while the successor is unused, the answer
    is the successor itself (the phone lost the response on a weak network); otherwise the
    whole family is revoked (someone else holds a copy).
    """

    TOKEN_ENDPOINT_AUTH_METHODS = USER_TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> OAuthToken | None:
        row = tokens.find_by_refresh_token(session=db.session, value=refresh_token)
        if row is None or not tokens.refresh_usable(row, clock.now()):
            return None
        self.request.presented_refresh_token = refresh_token
        return row

    def authenticate_user(self, refresh_token: OAuthToken) -> Account | None:
        return _active_account(refresh_token.account_id)

    def _validate_token_scope(self, token: OAuthToken) -> None:
        requested = split_scope(self.request.payload.scope)
        if requested and not all_covered(requested, token.scope_list):
            raise InvalidScopeError()

    def revoke_old_credential(self, refresh_token: OAuthToken) -> None:
        """Done by the rotation claim before anything is issued."""

    def create_token_response(self) -> Any:
        old: OAuthToken = self.request.refresh_token
        now = clock.now()
        if not tokens.claim_rotation(session=db.session, row=old, now=now):
            return self._replay(old)
        user = self.authenticate_user(old)
        if user is None:
            family_id = old.family_id
            db.session.rollback()
            tokens.revoke_family(session=db.session, family_id=family_id,
                                 reason="account-inactive")
            db.session.commit()
            raise InvalidGrantError("The account is no longer active.")
        self.request.user = user
        token = self.issue_token(user, old)
        self.save_token(token)
        successor: OAuthToken = self.request.issued_token
        old.successor_id = successor.id
        old.successor_ct = seal(
            self.request.presented_refresh_token,
            json.dumps(token).encode("utf-8"),
            context=_GRACE_CONTEXT,
        )
        # Its predecessor's grace ends now that this token (the successor) has been used.
        if old.parent_id is not None:
            parent = db.session.get(OAuthToken, old.parent_id)
            if parent is not None:
                parent.successor_ct = None
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def _replay(self, old: OAuthToken) -> Any:
        db.session.refresh(old)
        now = clock.now()
        grace = tokens.settings().refresh_grace
        successor = db.session.get(OAuthToken, old.successor_id) if old.successor_id else None
        if (
            successor is not None
            and successor.revoked_at is None
            and successor.refresh_rotated_at is None
            and old.refresh_rotated_at is not None
            and now - old.refresh_rotated_at <= grace
            and old.successor_ct is not None
        ):
            sealed = unseal(self.request.presented_refresh_token, old.successor_ct,
                            context=_GRACE_CONTEXT)
            if sealed is not None:
                token = json.loads(sealed)
                remaining = successor.access_expires_at - now
                token["expires_in"] = max(1, int(remaining / timedelta(seconds=1)))
                log.info("refresh replay inside the grace window answered",
                         extra={"client_id": old.client_id})
                return 200, token, self.TOKEN_RESPONSE_HEADER
        family_id, client_id = old.family_id, old.client_id
        db.session.rollback()
        revoked = tokens.revoke_family(session=db.session, family_id=family_id,
                                       reason="refresh-reuse")
        db.session.commit()
        log.warning("refresh token reuse: family revoked",
                    extra={"client_id": client_id, "revoked_tokens": revoked})
        raise InvalidGrantError("The refresh token was already used.")


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """A facility's system acting for itself: role `station`, `system/` scopes only."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client: OAuthClient = self.request.client
        if client.is_public or client.facility_id is None:
            raise UnauthorizedClientError("Client credentials are for a facility's system.")
        requested = split_scope(self.request.payload.scope)
        registered = trim_for_role(client.scope_list, role="station", client_credentials=True)
        if not requested:
            scopes = registered
        elif all_covered(requested, registered):
            scopes = requested
        else:
            raise InvalidScopeError()
        self.request.scope = join_scope(scopes)

    def create_token_response(self) -> Any:
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class OpenIDCode(oidc_grants.OpenIDCode):
    """ID tokens for `openid`: ES256, issuer and audience set, `sub` is the account id."""

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return db.session.scalars(
            select(AuthorizationCode.id).where(
                AuthorizationCode.client_id == request.payload.client_id,
                AuthorizationCode.nonce == nonce,
            )
        ).first() is not None

    def resolve_client_private_key(self, client: OAuthClient) -> ECKey:
        return signing_key()

    def get_client_algorithm(self, client: OAuthClient) -> str:
        return ALGORITHM

    def get_encode_header(self, client: OAuthClient) -> dict[str, str]:
        return {"alg": ALGORITHM, "kid": key_id(), "typ": "JWT"}

    def get_client_claims(self, client: OAuthClient) -> dict[str, Any]:
        now = clock.now()
        return {
            "iss": issuer(),
            "aud": [client.client_id],
            "iat": int(now.timestamp()),
            "exp": int((now + tokens.settings().id_token).timestamp()),
        }

    def generate_user_info(self, user: Account, scope: str) -> dict[str, Any]:
        return user_claims(session=db.session, account=user, scopes=split_scope(scope))


class IssuerParameter(_IssuerParameter):
    """RFC 9207: the authorization response names its issuer (mix-up attack defence)."""

    def get_issuer(self) -> str:
        return issuer()


class RevocationEndpoint(_RevocationEndpoint):
    """RFC 7009. Public clients may revoke (log out); revoking either token of a login revokes
    the whole family, so a logout takes effect on the next request."""

    CLIENT_AUTH_METHODS = USER_TOKEN_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return tokens.find_token(session=db.session, value=token_string)

    def revoke_token(self, token: tokens.TokenMatch, request: Any) -> None:
        tokens.revoke_family(session=db.session, family_id=token.row.family_id,
                             reason="revoked")


class IntrospectionEndpoint(_IntrospectionEndpoint):
    """RFC 7662, for confidential clients about their own tokens, and for resource servers
    (a FHIR gateway, a partner API: `oauth_clients.resource_server`) about the access tokens
    their callers present, whoever they were issued to (§2.1). A token is active exactly when
    the API would accept it: not expired or revoked, its client and account still active.
    Anything a client may not ask about answers `{"active": false}` like an unknown token."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return tokens.find_token(session=db.session, value=token_string)

    def check_permission(self, token: tokens.TokenMatch, client: OAuthClient,
                         request: Any) -> bool:
        if client.is_public:
            return False
        if token.check_client(client):
            return True
        # A resource server is shown access tokens; a refresh token is its own client's
        # business only, and confirming one to a third party would only help whoever leaked it.
        if client.resource_server and token.kind == "access_token":
            request.introspected_for = token.row.client_id
            return True
        return False

    def create_endpoint_response(self, request: Any) -> tuple[int, Any, Any]:
        status, body, headers = super().create_endpoint_response(request)
        token_client_id = getattr(request, "introspected_for", None)
        if token_client_id is not None:
            # Who checks whose tokens (client ids and the answer; never the token or person).
            log.info("token introspected by a resource server", extra={
                "client_id": request.client.client_id, "token_client_id": token_client_id,
                "active": bool(body.get("active"))})
        return status, body, headers

    def introspect_token(self, token: tokens.TokenMatch) -> dict[str, Any]:
        row = token.row
        owner = db.session.get(OAuthClient, row.client_id)
        if owner is None or not owner.active or (
            row.account_id is not None and _active_account(row.account_id) is None
        ):
            return {"active": False}  # the API refuses it too (auth.resource.load_caller)
        expires = token.expires_at()
        body: dict[str, Any] = {
            "active": True,
            "client_id": row.client_id,
            "scope": row.scope,
            "iss": issuer(),
            "iat": int(row.issued_at.timestamp()),
            "exp": int(expires.timestamp()) if expires else None,
        }
        if token.kind == "access_token":
            body["token_type"] = "Bearer"  # noqa: S105 - a token type, not a secret
        if row.account_id is not None:
            body["sub"] = str(row.account_id)
        return body


def create_server(app: Flask) -> AuthorizationServer:
    """The authorization server with our grants, endpoints and token generator."""
    server = AuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", generate_token)
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True),
                                                   OpenIDCode(require_nonce=False)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_extension(IssuerParameter())
    return server
