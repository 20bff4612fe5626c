"""The logged-in browser of this request: its session, its tokens, its calls to the API.

Page handlers ask `current_portal()` and call the API through it:
    portal = current_portal()                     # LoginRequired -> the login page
    summary = portal.get(f"/api/v1/citizens/{citizen_id}/summary")
    portal.send("POST", path, json_body={...})      # ApiError(problem) on a refusal
Every call carries the session's access token; one that has (nearly) expired is refreshed
first (rotation), and a call answered 401 is retried once after a refresh. When refreshing no
longer works (logged out elsewhere, password changed, account disabled) the session ends.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from flask import current_app, g, request

from core.db import db
from core.i18n import SUPPORTED_LANGUAGES, negotiate_language
from portal import backend, sessions
from portal.backend import ApiError, ApiResponse

LANGUAGE_COOKIE = "phr_lang"


class LoginRequired(Exception):
    """No live portal session: the page sends the browser to the login."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def session_settings() -> sessions.SessionSettings:
    config = current_app.config
    return sessions.SessionSettings(
        idle=dt.timedelta(minutes=int(config["PORTAL_IDLE_MINUTES"])),
        lifetime=dt.timedelta(hours=int(config["PORTAL_SESSION_HOURS"])),
    )


def cookie_name() -> str:
    # __Host- binds the cookie to this host, path / and https (browsers enforce it).
    return "__Host-phr_portal" if current_app.config.get("SESSION_COOKIE_SECURE") else "phr_portal"


def choose_portal_language() -> str:
    """The `lang` cookie when set (vi or en), else Accept-Language; vi by default."""
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    lang = chosen if chosen in SUPPORTED_LANGUAGES else negotiate_language(
        request.headers.get("Accept-Language"))
    g.language = lang
    return lang


class Portal:
    """One logged-in browser session for one request."""

    def __init__(self, open_session: sessions.OpenSession) -> None:
        self.open_session = open_session
        self._me: dict[str, Any] | None = None

    # --- calls ------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, query: dict[str, Any] | None = None,
             json_body: Any = None, headers: dict[str, str] | None = None) -> ApiResponse:
        """The API's answer, whatever its status (see `send` for the raising form)."""
        if int(self.open_session.secrets.get("expires_at", 0)) - backend.REFRESH_MARGIN_SECONDS \
                <= time.time():
            self._refresh()
        response = self._dispatch(method, path, query, json_body, headers)
        if response.status == 401:
            self._refresh()
            response = self._dispatch(method, path, query, json_body, headers)
        return response

    def send(self, method: str, path: str, *, query: dict[str, Any] | None = None,
             json_body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """The API's JSON answer; ApiError when it refused."""
        response = self.call(method, path, query=query, json_body=json_body, headers=headers)
        if not response.ok:
            raise ApiError(response)
        return response.json() if response.status != 204 else None

    def get(self, path: str, **query: Any) -> Any:
        return self.send("GET", path, query=query or None)

    def _dispatch(self, method: str, path: str, query: dict[str, Any] | None, json_body: Any,
                  headers: dict[str, str] | None) -> ApiResponse:
        return backend.dispatch(method, path, bearer=self.open_session.secrets["access_token"],
                                query=query, json_body=json_body, headers=headers)

    def _refresh(self) -> None:
        refresh_token = self.open_session.secrets.get("refresh_token")
        tokens = backend.refresh(refresh_token) if refresh_token else None
        if tokens is None:
            sessions.end(session=db.session, open_session=self.open_session)
            db.session.commit()
            raise LoginRequired()
        sessions.store_tokens(session=db.session, open_session=self.open_session, tokens=tokens)
        db.session.commit()

    # --- who is logged in ---------------------------------------------------------------------

    @property
    def me(self) -> dict[str, Any]:
        """GET /api/v1/me, once per request: role, citizen id, name, dependants."""
        if self._me is None:
            self._me = self.get("/api/v1/me")
        return self._me

    @property
    def citizen_id(self) -> str | None:
        return self.me.get("citizen_id")

    def people(self) -> list[dict[str, Any]]:
        """The records this person may open in the portal: their own, then their children's
        (as GET /api/v1/me lists them)."""
        me = self.me
        listed: list[dict[str, Any]] = []
        if me.get("citizen_id"):
            listed.append({"id": me["citizen_id"], "name": me.get("display_name") or "",
                           "self": True})
        for dependant in me.get("dependants") or []:
            listed.append({"id": dependant["citizen_id"],
                           "name": dependant.get("full_name") or "",
                           "self": False})
        return listed


def current_portal(*, required: bool = True) -> Portal | None:
    """This request's logged-in session (found once per request)."""
    if "phr_portal" in g:
        portal = g.phr_portal
    else:
        open_session = sessions.find(session=db.session, cookie=request.cookies.get(cookie_name()),
                                     now=now(), settings=session_settings())
        portal = Portal(open_session) if open_session is not None else None
        if open_session is not None:
            sessions.touch(session=db.session, open_session=open_session, now=now())
        # End this transaction before any in-process API call: the API's requests use their
        # own sessions and connections (SQLite allows one writer).
        db.session.commit()
        g.phr_portal = portal
    if portal is None and required:
        raise LoginRequired()
    return portal
