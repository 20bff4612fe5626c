"""Rendering portal pages: the layout's context, security headers, CSRF, error pages.

Every page is server-rendered HTML in the person's language with no inline script (the CSP
forbids it), no third-party load, and `no-store`: a shared phone's back button or cache shows
no one else's record.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, g, render_template, request

from core.i18n import current_language, translate

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; manifest-src 'self'; worker-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def csrf_token() -> str:
    """The form token of this browser's portal session (none before logging in).

    Derived, not stored: HMAC(secret key, session row id). Only pages of the session carry
    it, and a cookie planted by another site cannot give it to that site's forms.
    """
    portal = g.get("phr_portal")
    if portal is None:
        return ""
    secret = current_app.config["SECRET_KEY"]
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    return hmac.new(key, b"portal-csrf:" + portal.open_session.row.id.bytes,
                    hashlib.sha256).hexdigest()


def csrf_ok() -> bool:
    expected = csrf_token()
    # Forms send the field; the page's own scripts (push.js) send the header instead.
    given = request.form.get("csrf_token", "") or request.headers.get("X-CSRF-Token", "")
    # Bytes: compare_digest refuses str with non-ASCII characters (a 500, not a 403).
    return bool(expected) and hmac.compare_digest(expected.encode(),
                                                  given.encode("utf-8", "replace"))


def language_switch_url() -> str:
    other = "en" if current_language() == "vi" else "vi"
    here = request.full_path.rstrip("?") if request.method == "GET" else request.path
    return "/language?" + urlencode({"to": other, "next": here})


def render(template: str, *, status: int = 200, **context: Any) -> Response:
    """A portal page with the layout's context: language, t(), CSRF, the person's name and
    the records they may switch between (when logged in)."""
    lang = current_language()
    portal = g.get("phr_portal")
    people: list[dict[str, Any]] = []
    me: dict[str, Any] = {}
    if portal is not None and context.get("with_people", True):
        try:
            me = portal.me
            people = portal.people()
        except Exception:  # noqa: BLE001 - the layout never hides the page's own answer
            me, people = {}, []
    context.pop("with_people", None)
    body = render_template(
        template,
        lang=lang,
        t=lambda key, **params: translate(key, lang, **params),
        csrf_token=csrf_token(),
        logged_in=portal is not None,
        me=me,
        people=people,
        switch_language_url=language_switch_url(),
        **context,
    )
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Language"] = lang
    response.headers.update(PAGE_HEADERS)
    return response


def error_page(*, status: int, title: str, detail: str,
               headers: dict[str, str] | None = None) -> Response:
    response = render("portal/error.html", status=status, title=title, detail=detail,
                      with_people=False)
    response.headers.update(headers or {})
    return response


def see_other(location: str) -> Response:
    """303 to `location` (a path on this site) without a body: Post/Redirect/Get, and the
    redirects of the login (werkzeug's English HTML body helps no one)."""
    response = Response(status=303)
    response.headers["Location"] = location
    response.headers["Cache-Control"] = "no-store"
    return response
