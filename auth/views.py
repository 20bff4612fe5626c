"""OAuth 2.0 / OpenID Connect endpoints and the login and approval pages.

Errors of the OAuth endpoints (/oauth/token, /oauth/revoke, /oauth/introspect, and the
redirects of /oauth/authorize) are RFC 6749 JSON or redirect errors, which OAuth clients
expect. The pages' own errors (bad CSRF token, lockout, an authorization request that cannot
be redirected) are problems, rendered as HTML for browsers and problem+json otherwise;
/oauth/userinfo answers like /api (RFC 6750 problems).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oidc.core.errors import LoginRequiredError
from flask import Blueprint, Response, current_app, jsonify, request

from auth.errors import InsufficientScope, InvalidAuthorizationRequest
from auth.external_pages import take_external_login
from auth.keys import ALGORITHM, public_jwks
from auth.login import authenticate
from auth.models import Account, OAuthClient
from auth.pages import (
    check_csrf,
    choose_language,
    describe_scope,
    end_login,
    logged_in_account,
    page_problem,
    render_page,
    start_login,
)
from auth.resource import require_user_scope
from auth.scopes import CONTEXTS, IDENTITY_SCOPES, split_scope, trim_for_role
from auth.server import AuthorizationServer, issuer
from auth.userinfo import display_name, user_claims
from core.db import db
from core.errors import BadRequest, Message, Problem

bp = Blueprint("oauth", __name__, url_prefix="/oauth", template_folder="templates")
well_known = Blueprint("oauth_metadata", __name__)

SERVER_EXTENSION = "phr.oauth_server"


def server() -> AuthorizationServer:
    return current_app.extensions[SERVER_EXTENSION]


# --- parameter syntax -----------------------------------------------------------------------
# OAuth parameters are printable ASCII (RFC 6749 Appendix A, RFC 7636 §4, OpenID Connect Core).
# Checked before Authlib sees them: a NUL would reach PostgreSQL (the nonce is looked up and
# stored; PostgreSQL refuses NUL in text), and a quote, backslash or non-ASCII character in a
# value Authlib echoes into an error description (response_type, redirect_uri, scope) makes
# Authlib's error constructor raise, a 500. `client_id` is left to `query_client`, which takes
# a malformed id for an unknown client (the same answer as for any unknown client).
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_ECHO_SAFE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")  # Authlib's error-description set
_ECHOED_PARAMETERS = frozenset({"response_type", "redirect_uri", "scope"})
_OAUTH_PARAMETERS = _ECHOED_PARAMETERS | frozenset({
    "state", "nonce", "code_challenge", "code_challenge_method", "prompt", "max_age",
    "response_mode", "ui_locales", "grant_type", "code", "code_verifier", "refresh_token",
    "client_secret", "token", "token_type_hint",
})


def malformed_parameter() -> bool:
    """Whether an OAuth parameter of the request (query or form) is not printable ASCII."""
    for name, value in request.values.items(multi=True):
        if name not in _OAUTH_PARAMETERS:
            continue
        pattern = _ECHO_SAFE if name in _ECHOED_PARAMETERS else _PRINTABLE
        if not pattern.fullmatch(value):
            return True
    return False


def undecodable_basic_credentials() -> bool:
    """Whether HTTP Basic client credentials are not UTF-8 (Authlib would raise on them)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        base64.b64decode(credentials.strip()).decode("utf-8")
    except (binascii.Error, ValueError):
        return True  # UnicodeDecodeError is a ValueError
    return False


# --- authorization endpoint and pages ------------------------------------------------------


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    choose_language()
    if malformed_parameter():
        return _authorization_error(InvalidRequestError("Malformed parameter."))
    try:
        grant = server().get_consent_grant(end_user=None)
    except OAuth2Error as error:
        return _authorization_error(error)
    try:
        if request.method == "GET":
            # Back from the external provider's login for this very request (used up here).
            external = take_external_login(db.session)
            if "none" in (request.args.get("prompt") or "").split():
                # No single sign-on: a login is always needed.
                return _authorization_error(LoginRequiredError(
                    redirect_uri=grant.redirect_uri, state=request.args.get("state")
                ))
            if external is not None:
                return _after_login(grant, *external)
            return _login_page(grant.client)
        check_csrf()
        action = request.form.get("action")
        if action == "login":
            return _login(grant)
        if action == "consent":
            return _consent_decision(grant)
        raise BadRequest()
    except Problem as problem:
        db.session.rollback()
        return page_problem(problem)


def _authorization_error(error: OAuth2Error) -> Response:
    if error.redirect_uri:
        # The client and its redirect URI were verified: the client gets the error.
        status, _, headers = error()
        response = Response("", status=status, headers=headers)
        response.location = add_params_to_uri(response.location or "", {"iss": issuer()})
        return response
    # Never redirect to an unverified URI (open redirector): tell the user instead.
    return page_problem(InvalidAuthorizationRequest(
        Message("problem.invalid-authorization-request.detail", reason=error.error)
    ))


def _login_page(client: OAuthClient, *, error: str | None = None, username: str = "") -> Response:
    return render_page("auth/login.html", client_name=client.name, error=error,
                       username=username, action_url=request.full_path)


def _login(grant: Any) -> Response:
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    if not username.strip() or not password:
        return _login_page(grant.client, error="login.missing", username=_shown(username))
    account = authenticate(session=db.session, username=username, password=password,
                           address=request.remote_addr)
    if account is None:
        return _login_page(grant.client, error="login.failed", username=_shown(username))
    start_login(account)
    auth_time = int(account.last_login_at.timestamp()) if account.last_login_at else None
    return _after_login(grant, account, auth_time)


def _after_login(grant: Any, account: Account, auth_time: int | None) -> Response:
    if grant.client.first_party:
        return _issue(grant, account, auth_time)
    return _consent_page(grant, account)


_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _shown(username: str) -> str:
    """The username as typed, for the form shown again: without control or bidi characters
    (no username holds one; a NUL in HTML is a parse error)."""
    return _UNSHOWABLE.sub("", username).strip()


def _consent_page(grant: Any, account: Account) -> Response:
    scopes = trim_for_role(split_scope(grant.request.scope), role=account.role)
    return render_page(
        "auth/consent.html",
        client_name=grant.client.name,
        account_name=display_name(session=db.session, account=account) or "",
        scopes=[describe_scope(scope) for scope in scopes],
        action_url=request.full_path,
    )


def _consent_decision(grant: Any) -> Response:
    login = logged_in_account(db.session)
    if login is None:
        return _login_page(grant.client)
    account, auth_time = login
    approved = request.form.get("decision") == "approve"
    return _issue(grant, account if approved else None, auth_time)


def _issue(grant: Any, account: Account | None, auth_time: int | None) -> Response:
    """Redirect back with a code (or `access_denied` when `account` is None)."""
    if auth_time is not None:
        grant.request.auth_time = datetime.fromtimestamp(auth_time, UTC)
    response = server().create_authorization_response(grant=grant, grant_user=account)
    end_login()
    db.session.commit()
    return response


# --- token, revocation, introspection -------------------------------------------------------


def _oauth_call(call: Any) -> Response:
    """Run an Authlib endpoint: commit what it did on success, nothing on an error."""
    if request.args:
        # Credentials in a URL end up in logs and histories: the body only (RFC 6749 §3.2).
        error = InvalidRequestError("Send the parameters in the request body.")
        db.session.rollback()
        return server().handle_error_response(None, error)
    if undecodable_basic_credentials():
        # As for any client that fails to authenticate with Basic: 401 (RFC 6749 §5.2).
        return server().handle_error_response(None, InvalidClientError(status_code=401))
    if malformed_parameter():
        return server().handle_error_response(None, InvalidRequestError("Malformed parameter."))
    try:
        response = call()
    except OAuth2Error as error:
        db.session.rollback()
        return server().handle_error_response(None, error)
    if response.status_code == 200:
        db.session.commit()
    else:
        db.session.rollback()
    return response


@bp.post("/token")
def token() -> Response:
    return _oauth_call(lambda: server().create_token_response())


@bp.post("/revoke")
def revoke() -> Response:
    return _oauth_call(lambda: server().create_endpoint_response("revocation"))


@bp.post("/introspect")
def introspect() -> Response:
    return _oauth_call(lambda: server().create_endpoint_response("introspection"))


# --- OpenID Connect ---------------------------------------------------------------------------


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    principal = require_user_scope("openid")
    account = db.session.get(Account, principal.account_id) if principal.account_id else None
    if account is None:
        raise InsufficientScope("openid")
    return jsonify(user_claims(session=db.session, account=account,
                               scopes=sorted(principal.scopes)))


@bp.get("/jwks")
def jwks() -> Response:
    response = jsonify(public_jwks())
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _metadata() -> dict[str, Any]:
    base = issuer()
    clinical = [f"{context}/*.cruds" for context in CONTEXTS]
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "jwks_uri": f"{base}/oauth/jwks",
        "scopes_supported": sorted(IDENTITY_SCOPES) + clinical,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post",
        ],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "ui_locales_supported": ["vi", "en"],
    }


def _cached_json(body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@well_known.get("/.well-known/oauth-authorization-server")
def authorization_server_metadata() -> Response:
    """RFC 8414 metadata."""
    return _cached_json(_metadata())


@well_known.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    """OpenID Connect Discovery 1.0 metadata."""
    return _cached_json({
        **_metadata(),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "claims_supported": ["sub", "name", "locale", "iss", "aud", "exp", "iat",
                             "auth_time", "nonce", "at_hash"],
        "prompt_values_supported": ["none", "login", "consent"],
    })
