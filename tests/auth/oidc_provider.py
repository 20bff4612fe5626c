"""A local OpenID Connect provider standing in for VNeID, built with Authlib's server.

A small Flask app (authorization code grant with PKCE and the OpenID Connect code extension,
ID tokens signed RS256, discovery, JWKS, userinfo) served by werkzeug on 127.0.0.1 with a
random port, in a thread. There is no login form: the authorization endpoint logs in whoever
the test put in `next_user` (the person "logged in at VNeID"), or refuses when `deny` is set.

Misbehaviours a test switches on, each checked by the service under test:
`claim_overrides` (claims merged last into the ID token: another nonce, audience, issuer...),
`sign_with_rogue_key` (a key of the same kid that the JWKS does not hold), `pin_in_userinfo`
(the PIN only from the userinfo endpoint).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import grants as oidc_grants
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

CLIENT_ID = "phr-service"
CLIENT_SECRET = "provider-client-secret-for-tests"  # noqa: S105 - a local test provider
KID = "vneid-test-1"


@dataclass
class Person:
    """Someone with an account at the provider."""

    sub: str
    pin: str | None
    pin_verified: bool | None = True

    def get_user_id(self) -> str:
        return self.sub


@dataclass
class _Client(ClientMixin):
    redirect_uri: str
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    person: Person
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return None


class FakeOpenIdProvider:
    """The provider; `start()` serves it, `issuer` is its base URL."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig"})
        self.rogue_key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig"})
        self.lock = threading.Lock()
        self.codes: dict[str, _Code] = {}
        self.access_tokens: dict[str, Person] = {}
        self.redirect_uri = ""
        self.reset()
        self.app = self._build_app()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.issuer = ""

    def reset(self) -> None:
        self.next_user: Person | None = None
        self.deny = False
        self.claim_overrides: dict[str, Any] = {}
        self.sign_with_rogue_key = False
        self.pin_in_userinfo = False
        self.token_requests: list[dict[str, str]] = []

    # Lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeOpenIdProvider:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # The Authlib server ----------------------------------------------------------------------
    def _build_app(self) -> Flask:
        provider = self
        app = Flask("fake_vneid")
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 300}

        def query_client(client_id: str) -> _Client | None:
            if client_id != CLIENT_ID:
                return None
            return _Client(redirect_uri=provider.redirect_uri)

        def save_token(token: dict[str, Any], request: Any) -> None:
            with provider.lock:
                provider.access_tokens[token["access_token"]] = request.user

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

            def save_authorization_code(self, code: str, request: Any) -> None:
                data = request.payload.data
                with provider.lock:
                    provider.codes[code] = _Code(
                        code=code, client_id=request.client.client_id,
                        redirect_uri=request.payload.redirect_uri, scope=request.payload.scope,
                        nonce=data.get("nonce"), person=request.user,
                        code_challenge=data.get("code_challenge"),
                        code_challenge_method=data.get("code_challenge_method"),
                    )

            def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
                with provider.lock:
                    found = provider.codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: _Code) -> None:
                with provider.lock:
                    provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: _Code) -> Person:
                return authorization_code.person

        class OpenIdCode(oidc_grants.OpenIDCode):
            def exists_nonce(self, nonce: str, request: Any) -> bool:
                return False

            def resolve_client_private_key(self, client: _Client) -> RSAKey:
                return provider.rogue_key if provider.sign_with_rogue_key else provider.key

            def get_client_algorithm(self, client: _Client) -> str:
                return "RS256"

            def get_encode_header(self, client: _Client) -> dict[str, str]:
                return {"alg": "RS256", "kid": KID, "typ": "JWT"}

            def get_client_claims(self, client: _Client) -> dict[str, Any]:
                now = int(time.time())
                return {"iss": provider.issuer, "aud": [client.client_id], "iat": now,
                        "exp": now + 300}

            def generate_user_info(self, user: Person, scope: str) -> dict[str, Any]:
                claims: dict[str, Any] = {"sub": user.sub}
                if not provider.pin_in_userinfo:
                    claims.update(provider.pin_claims(user))
                # Last, so that a test can make the token lie about anything.
                claims.update(provider.claim_overrides)
                return claims

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        server.register_grant(CodeGrant, [CodeChallenge(required=True),
                                          OpenIdCode(require_nonce=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            base = provider.issuer
            return jsonify({
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "userinfo_endpoint": f"{base}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
            })

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify({"keys": [provider.key.as_dict(private=False)]})

        @app.get("/authorize")
        def authorize() -> Any:
            person = None if provider.deny else provider.next_user
            grant = server.get_consent_grant(end_user=person)
            return server.create_authorization_response(grant=grant, grant_user=person)

        @app.post("/token")
        def token() -> Any:
            provider.token_requests.append(request.form.to_dict())
            return server.create_token_response()

        @app.get("/userinfo")
        def userinfo() -> Any:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            with provider.lock:
                person = provider.access_tokens.get(value) if scheme == "Bearer" else None
            if person is None:
                return jsonify({"error": "invalid_token"}), 401
            return jsonify({"sub": person.sub, **provider.pin_claims(person)})

        return app

    def pin_claims(self, person: Person) -> dict[str, Any]:
        claims: dict[str, Any] = {}
        if person.pin is not None:
            claims["pin"] = person.pin
        if person.pin_verified is not None:
            claims["pin_verified"] = person.pin_verified
        return claims

    # What a test needs -----------------------------------------------------------------------
    def callback_path(self, location: str) -> str:
        """The path and query of the provider's redirect back to us (for the test client)."""
        parts = urlsplit(location)
        return parts.path + ("?" + parts.query if parts.query else "")
