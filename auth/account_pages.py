"""Public pages for accounts people open themselves: activate with a station's code, ask for
a reset code by SMS, set a new password with it.

The pages keep the login page's manners (auth/pages.py): Vietnamese unless the browser or
`ui_locales` asks for English, a CSRF token on every form, no script, no framing, no caching.
Their answers tell nothing about who has an account: every wrong code, unknown number or
ended code reads "code or health ID is not valid", and "forgot password" shows the same page
after the same time whatever happened.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, request

from auth import account_codes
from auth.account_codes import CodesLocked, Outcome
from auth.pages import check_csrf, choose_language, page_problem, render_page
from auth.passwords import MAX_LENGTH, password_problems
from core.db import db
from core.errors import Problem

bp = Blueprint("account_pages", __name__, url_prefix="/account", template_folder="templates")

LOGIN_URL = "/login"  # the portal's login (portal/)
_UNSHOWABLE = re.compile("[^0-9 ]")


def _shown(health_id: str) -> str:
    """The number as typed, for the form shown again: digits and spaces only, short."""
    return _UNSHOWABLE.sub("", health_id)[:20]


def _address() -> str | None:
    return request.remote_addr


Error = tuple[str, dict[str, Any]]  # a catalogue key and its parameters


def _error(key: str, **params: Any) -> Error:
    return key, params


def _page(template: str, *, status: int = 200, errors: list[Error] | None = None,
          health_id: str = "", headers: dict[str, str] | None = None,
          **context: Any) -> Response:
    response = render_page(template, status=status, errors=errors or [],
                           health_id=_shown(health_id), action_url=request.full_path,
                           max_password=MAX_LENGTH, **context)
    response.headers.update(headers or {})
    return response


def _locked(template: str, locked: CodesLocked, health_id: str, **context: Any) -> Response:
    """The form again, answered 429 with Retry-After (a locked bucket)."""
    db.session.rollback()
    wait = int(locked.headers["Retry-After"])
    return _page(template, status=429, health_id=health_id, headers=locked.headers,
                 errors=[_error("problem.account-codes-locked.detail",
                                minutes=max(1, -(-wait // 60)))], **context)


def _form_problems(fields: dict[str, str]) -> list[Error]:
    """What is wrong with the form before any code is looked at (no try is spent on it)."""
    if any(not value.strip() for value in fields.values()):
        return [_error("account.field.missing")]
    problems = [_error(key) for key in password_problems(fields["password"])]
    if fields["password"] != fields["password_confirm"]:
        problems.append(_error("account.password.mismatch"))
    return problems


def _code_page(purpose: str, done_kind: str, redeem: Any) -> Response:
    """The code form of `purpose` ("activate" or "reset": one template, their words differ)."""
    template = "auth/code_form.html"
    choose_language()
    if request.method == "GET":
        return _page(template, purpose=purpose)
    try:
        check_csrf()
    except Problem as problem:
        return page_problem(problem)
    fields = {name: request.form.get(name, "")
              for name in ("health_id", "code", "password", "password_confirm")}
    problems = _form_problems(fields)
    if problems:
        return _page(template, errors=problems, health_id=fields["health_id"], purpose=purpose)
    try:
        outcome: Outcome = redeem(session=db.session, health_id=fields["health_id"],
                                  code=fields["code"], password=fields["password"],
                                  address=_address())
    except CodesLocked as locked:
        return _locked(template, locked, fields["health_id"], purpose=purpose)
    if outcome.account is None:
        return _page(template, errors=[_error(outcome.error or account_codes.INVALID)],
                     health_id=fields["health_id"], purpose=purpose)
    return render_page("auth/done.html", kind=done_kind, login_url=LOGIN_URL)


@bp.route("/activate", methods=["GET", "POST"])
def activate() -> Response:
    return _code_page("activate", "activated", account_codes.activate_account)


@bp.route("/reset-password", methods=["GET", "POST"])
def reset_password() -> Response:
    return _code_page("reset", "password-reset", account_codes.reset_password)


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password() -> Response:
    choose_language()
    minutes = int(current_app.config.get("PASSWORD_RESET_MINUTES", 15))
    if request.method == "GET":
        return _page("auth/forgot.html", sent=False, minutes=minutes)
    try:
        check_csrf()
    except Problem as problem:
        return page_problem(problem)
    health_id = request.form.get("health_id", "")
    if not health_id.strip():
        return _page("auth/forgot.html", errors=[_error("account.health-id.missing")],
                     sent=False, minutes=minutes)
    try:
        account_codes.request_password_reset(session=db.session, health_id=health_id,
                                             address=_address())
    except CodesLocked as locked:
        return _locked("auth/forgot.html", locked, "", sent=False, minutes=minutes)
    # The same page whatever happened, without the number typed (nothing to compare).
    return _page("auth/forgot.html", sent=True, minutes=minutes)
