"""Logging in and out of the portal, and choosing its language.

/login starts the authorization code flow with PKCE against this server's own /oauth/authorize
(the same login page every client gets); /callback takes the code, checks the state kept in
the pending session, exchanges it in-process and opens the session under a new cookie.
"""

from __future__ import annotations

import hmac
import uuid

from flask import Response, current_app, g, request

from core.db import db
from core.i18n import current_language, translate
from portal import backend, sessions
from portal.blueprint import bp, local_path
from portal.pages import error_page, render, see_other
from portal.web import (
    LANGUAGE_COOKIE,
    cookie_name,
    current_portal,
    now,
    session_settings,
)

LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


def _set_session_cookie(response: Response, value: str, *, max_age: int | None) -> None:
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    response.set_cookie(cookie_name(), value, max_age=max_age, path="/", httponly=True,
                        samesite="Lax", secure=secure)


@bp.get("/login")
def login() -> Response:
    # A page that sends people here (the account pages) may name their language (OIDC style).
    chosen = request.args.get("ui_locales", "")
    if chosen in ("vi", "en"):
        g.language = chosen
    if current_portal(required=False) is not None:
        response = see_other(local_path(request.args.get("next")))
    else:
        flow = backend.new_login()
        flow["next"] = local_path(request.args.get("next"))
        cookie, _ = sessions.start_pending(session=db.session, secrets_=flow, now=now())
        db.session.commit()
        response = see_other(backend.authorization_path(flow, lang=current_language()))
        _set_session_cookie(response, cookie,
                            max_age=int(sessions.PENDING_LIFETIME.total_seconds()))
    if chosen in ("vi", "en"):
        _set_language_cookie(response, chosen)
    return response


@bp.get("/callback")
def callback() -> Response:
    pending = sessions.find(session=db.session, cookie=request.cookies.get(cookie_name()),
                            now=now(), settings=session_settings(), phase=sessions.PENDING)
    state = request.args.get("state", "")
    if pending is None or not hmac.compare_digest(pending.secrets.get("state", ""), state):
        return error_page(status=400, title=translate("portal.login-expired.title"),
                          detail=translate("portal.login-expired.detail"))
    if request.args.get("error") or not request.args.get("code"):
        sessions.end(session=db.session, open_session=pending)
        db.session.commit()
        return error_page(status=400, title=translate("portal.login-refused.title"),
                          detail=translate("portal.login-refused.detail"))
    db.session.commit()  # the token endpoint runs in its own session (one SQLite writer)
    tokens = backend.exchange_code(request.args["code"], pending.secrets["verifier"])
    if tokens is None:
        return error_page(status=400, title=translate("portal.login-expired.title"),
                          detail=translate("portal.login-expired.detail"))
    me = backend.dispatch("GET", "/api/v1/me", bearer=tokens["access_token"]).json() or {}
    account_id = me.get("account_id")
    if me.get("role") != "citizen" or not account_id:
        # The portal is the citizens' own; staff work in their facility's software.
        backend.revoke(tokens["refresh_token"] or tokens["access_token"])
        return error_page(status=403, title=translate("portal.citizens-only.title"),
                          detail=translate("portal.citizens-only.detail"))
    cookie, _ = sessions.activate(session=db.session, pending=pending,
                                  account_id=uuid.UUID(account_id), tokens=tokens, now=now(),
                                  settings=session_settings())
    db.session.commit()
    response = see_other(local_path(pending.secrets.get("next")))
    _set_session_cookie(response, cookie, max_age=None)  # ends with the browser, or earlier
    return response


@bp.post("/logout")
def logout() -> Response:
    portal = current_portal(required=False)
    if portal is not None:
        refresh_token = portal.open_session.secrets.get("refresh_token")
        sessions.end(session=db.session, open_session=portal.open_session)
        db.session.commit()
        if refresh_token:
            backend.revoke(refresh_token)  # ends the whole token family
    response = render("portal/logged_out.html", with_people=False)
    response.delete_cookie(cookie_name(), path="/")
    return response


@bp.route("/language", methods=["GET"])
def language() -> Response:
    """Switch the portal's language (a cookie holding "vi" or "en"; nothing personal)."""
    chosen = request.args.get("to", "")
    response = see_other(local_path(request.args.get("next")))
    if chosen in ("vi", "en"):
        _set_language_cookie(response, chosen)
    return response


def _set_language_cookie(response: Response, lang: str) -> None:
    response.set_cookie(LANGUAGE_COOKIE, lang, max_age=LANGUAGE_COOKIE_SECONDS, path="/",
                        httponly=True, samesite="Lax",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))


@bp.get("/")
def home() -> Response:
    portal = current_portal(required=False)
    if portal is None:
        return render("portal/landing.html", with_people=False)
    from portal.views_record import person_home

    return person_home(portal, portal.citizen_id)
