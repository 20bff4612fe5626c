"""Server-rendered login and approval pages: language, CSRF, the short login session, errors.

The browser keeps nothing but Flask's signed session cookie (stateless servers): a CSRF token,
and between the login form and the approval screen the account that just logged in. That
login is dropped as soon as a code is issued or refused: there is no single sign-on, every
authorization asks for the password (shared phones are common).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from urllib.parse import urlencode

from flask import Response, g, render_template, request, session
from sqlalchemy.orm import Session

from auth import clock
from auth.errors import CsrfFailed
from auth.models import Account
from auth.scopes import IDENTITY_SCOPES, INTERACTIONS, SmartScope
from core.errors import Problem, problem_response
from core.i18n import SUPPORTED_LANGUAGES, current_language, translate

_CSRF_KEY = "phr_csrf"
_LOGIN_KEY = "phr_login"
LOGIN_SESSION_SECONDS = 600

# Pages render in a browser only: no framing (clickjacking), no scripts, no external loads.
# No form-action: browsers apply it to the redirect that follows the form, which goes to the
# client's redirect URI.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def choose_language() -> str:
    """OIDC `ui_locales` when it names vi or en, else Accept-Language (vi by default)."""
    for tag in (request.values.get("ui_locales") or "").split():
        primary = tag.split("-")[0].lower()
        if primary in SUPPORTED_LANGUAGES:
            g.language = primary
            return primary
    return current_language()


def csrf_token() -> str:
    token = session.get(_CSRF_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[_CSRF_KEY] = token
    return str(token)


def cross_site_form() -> bool:
    """Whether the browser says this form came from another site (Sec-Fetch-Site); requests
    without the header (older browsers, programs) are left to the form token."""
    return request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none")


def check_csrf() -> None:
    """403 unless the form returns the token this browser session was given and, where the
    browser says where the form came from, it came from this site."""
    if cross_site_form():
        raise CsrfFailed()
    expected = session.get(_CSRF_KEY)
    given = request.form.get("csrf_token", "")
    # Bytes: compare_digest refuses str holding non-ASCII characters (a 500, not a 403).
    if not expected or not secrets.compare_digest(str(expected).encode(),
                                                  given.encode("utf-8", "replace")):
        raise CsrfFailed()


def start_login(account: Account) -> None:
    # A new CSRF token from here on: a token planted before the login is worth nothing after.
    session[_CSRF_KEY] = secrets.token_urlsafe(32)
    session[_LOGIN_KEY] = {
        "account": str(account.id),
        "auth_time": int(clock.now().timestamp()),
        "password_changed": int(account.password_changed_at.timestamp()),
    }


def end_login() -> None:
    session.pop(_LOGIN_KEY, None)


def logged_in_account(db_session: Session) -> tuple[Account, int] | None:
    """The account that logged in on this browser in the last few minutes, with its auth time;
    None when there is none, it expired, the password changed or the account was disabled."""
    login = session.get(_LOGIN_KEY)
    if not isinstance(login, dict):
        return None
    try:
        auth_time = int(login["auth_time"])
        account = db_session.get(Account, uuid.UUID(login["account"]))
    except (KeyError, TypeError, ValueError):
        return None
    if account is None or not account.active:
        return None
    if auth_time + LOGIN_SESSION_SECONDS < clock.now().timestamp():
        return None
    if int(account.password_changed_at.timestamp()) != login.get("password_changed"):
        return None
    return account, auth_time


def render_page(template: str, *, status: int = 200, **context: Any) -> Response:
    lang = current_language()
    other = "en" if lang == "vi" else "vi"
    args = request.args.to_dict()
    args["ui_locales"] = other
    body = render_template(
        template,
        lang=lang,
        t=lambda key, **params: translate(key, lang, **params),
        switch_language_url=request.path + "?" + urlencode(args),
        csrf_token=csrf_token(),
        **context,
    )
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Language"] = lang
    response.headers.update(_PAGE_HEADERS)
    return response


def wants_html() -> bool:
    best = request.accept_mimetypes.best_match(
        ["application/problem+json", "application/json", "text/html"]
    )
    return best == "text/html"


def page_problem(problem: Problem) -> Response:
    """A page's error: the same problem as HTML for a browser, problem+json for a program."""
    if not wants_html():
        return problem_response(problem)
    lang = current_language()
    response = render_page(
        "auth/error.html",
        status=problem.status,
        title=problem.title_message().render(lang),
        detail=problem.detail_message().render(lang),
    )
    response.headers.update(problem.headers)
    return response


def describe_scope(scope: str) -> str:
    """A scope in plain words, in the page's language."""
    lang = current_language()
    if scope in IDENTITY_SCOPES:
        return translate(f"scope.{scope}", lang)
    parsed = SmartScope.parse(scope)
    if parsed is None:
        return scope
    verbs = [translate(f"scope.verb.{letter}", lang)
             for letter in INTERACTIONS if letter in parsed.interactions]
    joined = verbs[0] if len(verbs) == 1 else (
        ", ".join(verbs[:-1]) + f" {translate('scope.and', lang)} " + verbs[-1]
    )
    resource = translate(f"resource.{parsed.resource}", lang)
    return translate(f"scope.{parsed.context}", lang, verbs=joined.capitalize(),
                     resource=resource)
