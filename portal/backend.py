"""The portal's way to the data: the same HTTP API every client uses, dispatched in-process.

The portal is a first-party OAuth client of this very server (backend-for-frontend). It gets
its tokens at /oauth/token and calls /api/v1/... with them, so a portal page passes the same
routes, scopes, decision point and audit as the phone app; no second path selects record
content. The requests never leave the process (no socket, no proxy hop, no deadlock on a
single worker): werkzeug runs the app's WSGI callable on a built environ, which Flask serves
in a request and application context of its own, with its own database session.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import current_app, g, request
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder, run_wsgi_app

from core.http import REQUEST_ID_HEADER
from core.i18n import current_language

# Refresh this long before the access token's end: a page never starts with a dying token.
REFRESH_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: Headers
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class ApiError(Exception):
    """The API refused (status >= 400): the problem it answered, already in the page's
    language. Portal pages render it as an HTML page."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(f"API answered {response.status}")
        self.response = response
        self.status = response.status
        try:
            body = response.json()
        except ValueError:
            body = None
        self.problem: dict[str, Any] = body if isinstance(body, dict) else {}

    @property
    def title(self) -> str:
        return str(self.problem.get("title") or "")

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or "")

    @property
    def errors(self) -> dict[str, list[str]]:
        errors = self.problem.get("errors")
        return errors if isinstance(errors, dict) else {}


def dispatch(method: str, path: str, *, bearer: str | None = None,
             query: dict[str, Any] | None = None, json_body: Any = None,
             form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> ApiResponse:
    """One request to this app, in-process, as the browser's request's client would make it."""
    sent = {
        "Accept": "application/json",
        "Accept-Language": current_language(),
        REQUEST_ID_HEADER: str(g.get("request_id") or ""),
    }
    if bearer:
        sent["Authorization"] = f"Bearer {bearer}"
    sent.update(headers or {})
    builder = EnvironBuilder(
        path=path, method=method, base_url=request.host_url,
        query_string=urlencode(_flat(query), doseq=True) if query else None,
        json=json_body, data=form, headers=sent,
        environ_base={"REMOTE_ADDR": request.remote_addr or "127.0.0.1"},
    )
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    body, status, response_headers = run_wsgi_app(app.wsgi_app, environ, buffered=True)
    try:
        data = b"".join(body)
    finally:
        closing = getattr(body, "close", None)
        if closing is not None:
            closing()
    return ApiResponse(status=int(str(status).split()[0]), headers=Headers(response_headers),
                       body=data)


def _flat(query: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in query.items() if value not in (None, "")}


# --- the portal as an OAuth client of this server ------------------------------------------


def client_id() -> str:
    return str(current_app.config["PORTAL_CLIENT_ID"])


def redirect_uri() -> str:
    return str(current_app.config["OAUTH_ISSUER"]).rstrip("/") + "/callback"


PORTAL_SCOPE = "openid offline_access patient/*.cruds"


def new_login() -> dict[str, str]:
    """A fresh PKCE verifier, state and nonce (kept server-side in the pending session)."""
    return {"verifier": secrets.token_urlsafe(48), "state": secrets.token_urlsafe(24),
            "nonce": secrets.token_urlsafe(24)}


def authorization_path(login: dict[str, str], *, lang: str) -> str:
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(login["verifier"].encode("ascii")).digest()
    ).rstrip(b"=").decode("ascii")
    return "/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id(), "redirect_uri": redirect_uri(),
        "scope": PORTAL_SCOPE, "state": login["state"], "nonce": login["nonce"],
        "code_challenge": challenge, "code_challenge_method": "S256", "ui_locales": lang,
    })


def _token_call(form: dict[str, str]) -> dict[str, Any] | None:
    response = dispatch("POST", "/oauth/token", form={**form, "client_id": client_id()})
    if response.status != 200:
        return None
    answer = response.json()
    return {
        "access_token": answer["access_token"],
        "refresh_token": answer.get("refresh_token"),
        "expires_at": int(time.time()) + int(answer.get("expires_in", 0)),
        "scope": answer.get("scope", ""),
    }


def exchange_code(code: str, verifier: str) -> dict[str, Any] | None:
    """Tokens for an authorization code, or None when the server refuses it."""
    return _token_call({"grant_type": "authorization_code", "code": code,
                        "redirect_uri": redirect_uri(), "code_verifier": verifier})


def refresh(refresh_token: str) -> dict[str, Any] | None:
    """Rotated tokens, or None when the refresh token no longer works (the login ended)."""
    return _token_call({"grant_type": "refresh_token", "refresh_token": refresh_token})


def revoke(token: str) -> None:
    dispatch("POST", "/oauth/revoke", form={"token": token, "token_type_hint": "refresh_token",
                                            "client_id": client_id()})
