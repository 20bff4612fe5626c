"""The browser side of the login through an external OpenID provider (VNeID).

`GET /oauth/external/start?next=/oauth/authorize?...` (the button of the login page) sends the
browser to the provider; `GET /oauth/external/callback` comes back from it, logs the person in
exactly as the password form does (`auth.pages.start_login`) and returns to `next`, the
authorization request that showed the login page. That request then continues without asking
the password again (`take_external_login`, called by `auth.views.authorize`): once, for that
very request. Every other authorization still asks for a password (no single sign-on).

The browser's signed session holds the flow's state, where to return and the page's language;
nothing that redeems a code (the PKCE verifier and nonce are derived from the state on the
server, see auth/external_login.py). Every failure is a page in the person's language; the
failures that could be someone probing count against the client address like failed password
logins do. Both routes answer 404 while the feature is off.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from flask import Blueprint, Response, g, has_request_context, request, session

from auth import clock, throttle
from auth.errors import LoginLocked
from auth.external_login import (
    ExternalLoginError,
    ProviderSettings,
    authorization_url,
    complete_login,
    discover,
    is_authorize_path,
    link_account,
    new_state,
    provider_settings,
)
from auth.models import Account
from auth.pages import choose_language, logged_in_account, page_problem, start_login
from auth.server import issuer
from core.db import db
from core.errors import InternalError, Message, NotFound, Problem, safe_traceback
from core.i18n import SUPPORTED_LANGUAGES, current_language

bp = Blueprint("external_login", __name__, url_prefix="/oauth/external")
log = logging.getLogger("phr.auth")

_FLOW_KEY = "phr_external_flow"
_FRESH_KEY = "phr_external_login"
FLOW_SECONDS = 600
_CALLBACK_PARAMETER = re.compile(r"[\x21-\x7e]{1,2048}")

# reason -> (status, problem code); see auth/external_messages.py for the texts.
_PROBLEMS = {
    "invalid-next": (400, "external-login-invalid-next"),
    "state": (400, "external-login-expired"),
    "provider-error": (400, "external-login-cancelled"),
    "provider-unavailable": (502, "external-provider-unavailable"),
    "token-exchange": (502, "external-login-failed"),
    "id-token": (502, "external-login-failed"),
    "pin-missing": (403, "external-pin-unverified"),
    "pin-unverified": (403, "external-pin-unverified"),
    "no-record": (404, "external-no-record"),
    "identity-mismatch": (409, "external-identity-mismatch"),
    "account-disabled": (403, "external-account-disabled"),
}
# An outage of the provider is nobody's attempt: it does not count against the address.
_NOT_COUNTED = frozenset({"provider-unavailable", "invalid-next"})


class ExternalLoginProblem(Problem):
    """A failed external login, as the page the person sees."""

    def __init__(self, status: int, code: str, name: str) -> None:
        self.status = status
        super().__init__(Message(f"problem.{code}.detail", name=name), code=code,
                         title=Message(f"problem.{code}.title", name=name))


def _problem(reason: str, settings: ProviderSettings) -> ExternalLoginProblem:
    status, code = _PROBLEMS[reason]
    return ExternalLoginProblem(status, code, settings.name)


def _redirect(location: str) -> Response:
    return Response("", status=302, headers={
        "Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
    })


def _address_keys() -> dict[str, bytes]:
    keys = throttle.bucket_keys(username="", address=request.remote_addr)
    return {throttle.ADDRESS: keys[throttle.ADDRESS]}


def _check_address() -> None:
    wait = throttle.locked_for(session=db.session, keys=_address_keys(), now=clock.now())
    if wait is not None:
        raise LoginLocked(wait)


def _callback_uri() -> str:
    return issuer() + "/oauth/external/callback"


@bp.get("/start")
def start() -> Response:
    choose_language()
    settings = provider_settings()
    if settings is None:
        return page_problem(NotFound())
    next_path = request.args.get("next", "")
    try:
        if not is_authorize_path(next_path):
            raise ExternalLoginError("invalid-next")
        _check_address()
        metadata = discover(settings)
    except ExternalLoginError as error:
        log.info("external login not started", extra={"reason": error.reason})
        return page_problem(_problem(error.reason, settings))
    except Problem as problem:
        return page_problem(problem)
    state = new_state()
    session[_FLOW_KEY] = {"state": state, "next": next_path, "lang": current_language(),
                          "started": int(clock.now().timestamp())}
    return _redirect(authorization_url(settings, metadata, state=state,
                                       redirect_uri=_callback_uri(),
                                       language=current_language()))


@bp.get("/callback")
def callback() -> Response:
    flow = session.pop(_FLOW_KEY, None)  # one use, whatever happens next
    if isinstance(flow, dict) and flow.get("lang") in SUPPORTED_LANGUAGES:
        g.language = flow["lang"]
    else:
        choose_language()
    settings = provider_settings()
    if settings is None:
        return page_problem(NotFound())
    try:
        _check_address()
        state, next_path = _flow_of(flow)
        if request.args.get("error"):
            raise ExternalLoginError("provider-error")
        returned_issuer = request.args.get("iss")
        if returned_issuer is not None and returned_issuer.rstrip("/") != settings.issuer:
            raise ExternalLoginError("id-token")  # RFC 9207: a response of another provider
        code = request.args.get("code", "")
        if not _CALLBACK_PARAMETER.fullmatch(code):
            raise ExternalLoginError("token-exchange")
        verified = complete_login(settings, code=code, state=state,
                                  redirect_uri=_callback_uri())
        result = link_account(session=db.session, login=verified)
        db.session.commit()
    except ExternalLoginError as error:
        return _failed(error.reason, settings)
    except Problem as problem:
        db.session.rollback()
        return page_problem(problem)
    except Exception as exc:
        # Whatever a provider's answer did to the libraries reading it: a page, not JSON.
        db.session.rollback()
        log.error("external login error", extra={"error": safe_traceback(exc)})
        return page_problem(InternalError())
    account = result.account
    start_login(account)
    session[_FRESH_KEY] = {"account": str(account.id), "next": next_path}
    log.info("external login succeeded", extra={
        "account_id": str(account.id), "linked_now": result.linked_now,
        "account_created": result.account_created,
    })
    return _redirect(next_path)


def _flow_of(flow: Any) -> tuple[str, str]:
    """The state and return path of the flow this browser started, when the provider's answer
    belongs to it and it is recent."""
    if not isinstance(flow, dict):
        raise ExternalLoginError("state")
    expected, next_path = flow.get("state"), flow.get("next")
    given = request.args.get("state", "")
    if (not isinstance(expected, str) or not isinstance(next_path, str)
            or not _CALLBACK_PARAMETER.fullmatch(given)
            or not secrets.compare_digest(expected, given)):
        raise ExternalLoginError("state")
    started = flow.get("started")
    if not isinstance(started, int) or started + FLOW_SECONDS < clock.now().timestamp():
        raise ExternalLoginError("state")
    if not is_authorize_path(next_path):
        raise ExternalLoginError("invalid-next")
    return expected, next_path


def _failed(reason: str, settings: ProviderSettings) -> Response:
    db.session.rollback()
    log.info("external login failed", extra={"reason": reason})
    if reason not in _NOT_COUNTED:
        locked = throttle.record_failure(session=db.session, keys=_address_keys(),
                                         now=clock.now())
        db.session.commit()
        if locked is not None:
            return page_problem(LoginLocked(locked))
    return page_problem(_problem(reason, settings))


def take_external_login(db_session: Any) -> tuple[Account, int] | None:
    """The account that has just come back from the provider to continue this very
    authorization request, with its auth time; None otherwise. The mark is used up here,
    whether or not it matches."""
    fresh = session.pop(_FRESH_KEY, None)
    if not isinstance(fresh, dict) or fresh.get("next") != request.full_path:
        return None
    login = logged_in_account(db_session)
    if login is None or str(login[0].id) != fresh.get("account"):
        return None
    return login


@bp.app_context_processor
def _login_button() -> dict[str, Any]:
    """The login page's "Đăng nhập bằng VNeID" button, when a provider is configured."""
    if not has_request_context() or request.endpoint != "oauth.authorize":
        return {}
    settings = provider_settings()
    if settings is None:
        return {}
    return {"external_login": {"name": settings.name, "url": "/oauth/external/start",
                               "next": request.full_path}}
