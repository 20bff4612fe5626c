"""The portal's blueprint (pages at /, assets at /static/portal) and what every page shares:
the language, CSRF and same-origin checks on POST, and how refusals become pages."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, request

from auth.pages import cross_site_form
from core.i18n import translate
from portal.backend import ApiError
from portal.pages import csrf_ok, error_page, see_other
from portal.web import LoginRequired, choose_portal_language, current_portal

bp = Blueprint("portal", __name__, template_folder="templates", static_folder="static/portal",
               static_url_path="/static/portal")

# POSTs that come before a portal session exists (none carry personal data).
_SESSIONLESS_POSTS: frozenset[str] = frozenset()


def local_path(value: str | None, default: str = "/") -> str:
    """`value` when it is a path on this site ("/x"), else `default`: no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(ch) < 0x20 for ch in value):
        return default
    return value


@bp.before_request
def _before() -> Response | None:
    choose_portal_language()
    if request.method != "POST":
        return None
    # Browsers say where a form came from; a cross-site POST is refused before anything else.
    if cross_site_form():
        return _csrf_page()
    if request.endpoint in _SESSIONLESS_POSTS:
        return None
    if current_portal(required=False) is None and request.endpoint == "portal.logout":
        return None  # nothing to end: logging out twice is harmless
    if not csrf_ok():
        return _csrf_page()
    return None


def _csrf_page() -> Response:
    return error_page(status=403, title=translate("portal.csrf.title"),
                      detail=translate("portal.csrf.detail"))


@bp.app_errorhandler(LoginRequired)
def _login_required(_: LoginRequired) -> Response:
    target = request.full_path.rstrip("?") if request.method == "GET" else "/"
    return see_other("/login?" + urlencode({"next": local_path(target)}))


@bp.errorhandler(ApiError)
def _api_refused(error: ApiError) -> Response:
    headers = {}
    if error.response.headers.get("Retry-After"):
        headers["Retry-After"] = error.response.headers["Retry-After"]
    return error_page(status=error.status, title=error.title or translate("portal.error.title"),
                      detail=error.detail, headers=headers)
