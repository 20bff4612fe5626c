"""The resource side: every request under /api carries a bearer token; handlers ask who it is.

One indexed query per request turns the token into the request's `Caller`: the token row (by the
SHA-256 digest of the presented value, a unique index) joined with its client, its account and
the practitioner's active facility memberships. Revoking a token, disabling an account or a
client, or ending a membership therefore takes effect on the very next request.

Contract for API handlers:
    caller = current_caller()                           # 401 problem when no valid token
    require_scope(resource="immunizations", interaction="r")   # 403 insufficient-scope
    caller.acting_for_citizen(citizen_id)               # what the decision point is given
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from authlib.oauth2.rfc6749 import ResourceProtector
from authlib.oauth2.rfc6749.errors import MissingAuthorizationError, OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from flask import Flask, g, request
from sqlalchemy import and_, bindparam, select

from auth import clock
from auth.credentials import digest
from auth.errors import REALM, InsufficientScope, InvalidToken, RoleNotAllowed, TokenRequired
from auth.models import Account, OAuthClient, OAuthToken
from auth.scopes import grants, required_scope
from core.db import db
from core.vietnam_time import VIETNAM_TZ
from registry.caller import Caller
from registry.models import PractitionerMembership

API_PREFIX = "/api"
_USER_CONTEXTS = {"citizen": "patient", "practitioner": "user", "station": "user"}

F = TypeVar("F", bound=Callable[..., Any])


def smart_context(caller: Caller) -> str | None:
    """The SMART context a token's clinical scopes are read in (None: admin)."""
    if caller.account_id is None:
        return "system"
    return _USER_CONTEXTS.get(caller.role)


def has_scope(caller: Caller, *, resource: str, interaction: str) -> bool:
    """Whether the token's scopes cover `interaction` (letters of "cruds") on `resource` (a FHIR
    type, a record section such as "immunizations", or a target such as "consents")."""
    context = smart_context(caller)
    if context is None:
        return False
    return grants(caller.scopes, context=context, resource=resource, interaction=interaction)


_token = OAuthToken.__table__
_client = OAuthClient.__table__
_account = Account.__table__
_membership = PractitionerMembership.__table__

_PRINCIPAL_QUERY = (
    select(
        _token.c.id.label("token_id"),
        _token.c.client_id,
        _token.c.account_id,
        _token.c.scope,
        _token.c.access_expires_at,
        _token.c.revoked_at,
        _client.c.active.label("client_active"),
        _client.c.facility_id.label("client_facility_id"),
        _account.c.role,
        _account.c.active.label("account_active"),
        _account.c.citizen_id,
        _account.c.practitioner_id,
        _account.c.facility_id.label("account_facility_id"),
        _membership.c.facility_id.label("membership_facility_id"),
        _membership.c.started_on.label("membership_started_on"),
    )
    .select_from(
        _token.join(_client, _client.c.client_id == _token.c.client_id)
        .outerjoin(_account, _account.c.id == _token.c.account_id)
        .outerjoin(
            _membership,
            and_(
                _membership.c.practitioner_id == _account.c.practitioner_id,
                _membership.c.ended_on.is_(None),
            ),
        )
    )
    .where(_token.c.access_token_hash == bindparam("digest"))
)


def load_caller(access_token: str, *, now: datetime,
                request_id: str | None = None) -> Caller | None:
    """The caller of a valid access token; None when unknown, expired, revoked, or its
    client or account is disabled. One query."""
    # A Core statement: the connection spares the ORM session's per-statement work.
    rows = db.session.connection().execute(
        _PRINCIPAL_QUERY, {"digest": digest(access_token)}).all()
    if not rows:
        return None
    first = rows[0]
    if first.revoked_at is not None or first.access_expires_at <= now or not first.client_active:
        return None
    today = now.astimezone(VIETNAM_TZ).date()
    memberships = frozenset(
        row.membership_facility_id
        for row in rows
        if row.membership_facility_id is not None and row.membership_started_on <= today
    )
    if first.account_id is None:
        if first.client_facility_id is None:
            return None
        role, facilities = "station", frozenset({first.client_facility_id})
    else:
        if not first.account_active:
            return None
        role = first.role
        if role == "practitioner":
            facilities = memberships
        elif role == "station":
            facilities = frozenset({first.account_facility_id})
            if first.practitioner_id is not None:
                # Station staff act for their station only while they work there.
                facilities &= memberships
        else:
            facilities = frozenset()
    return Caller(
        account_id=first.account_id,
        client_id=first.client_id,
        role=role,
        scopes=frozenset(first.scope.split()),
        citizen_id=first.citizen_id,
        practitioner_id=first.practitioner_id,
        facility_ids=facilities,
        token_id=first.token_id,
        request_id=request_id,
    )


class _CallerValidator(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> Caller | None:
        return load_caller(token_string, now=clock.now(), request_id=g.get("request_id"))

    def validate_token(self, token: Any, scopes: Any, request: Any) -> None:
        # Expiry, revocation and disabled accounts were checked by the query; scopes are
        # SMART scopes, checked per operation by require_scope.
        if token is None:
            raise InvalidTokenError(realm=self.realm)


class _HeaderRequest:
    __slots__ = ("headers",)

    def __init__(self, headers: Any) -> None:
        self.headers = headers


_protector = ResourceProtector()
_protector.register_token_validator(_CallerValidator(realm=REALM))


def authenticate() -> Caller:
    """Authenticate this request's bearer token (once per request) or raise a 401 problem."""
    caller = g.get("phr_caller")
    if caller is not None:
        return caller
    try:
        caller = _protector.validate_request(None, _HeaderRequest(request.headers))
    except MissingAuthorizationError:
        raise TokenRequired() from None
    except InvalidTokenError:
        raise InvalidToken() from None
    except OAuth2Error:
        # Another scheme (Basic...) presents no bearer token; a mangled Bearer header is invalid.
        scheme = (request.headers.get("Authorization", "").split(None, 1) or [""])[0]
        if scheme.lower() == "bearer":
            raise InvalidToken() from None
        raise TokenRequired() from None
    g.phr_caller = caller
    return caller


def current_caller() -> Caller:
    """Who this request's token acts as (authenticating it if that has not happened yet)."""
    return authenticate()


def require_token(view: F) -> F:
    """Decorator for routes outside /api that need a bearer token (those under /api always do)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        authenticate()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def require_scope(*, resource: str, interaction: str) -> None:
    """403 `insufficient-scope` unless the token's SMART scopes cover the operation.

    `resource` is a FHIR type ("Immunization"), a record section ("immunizations") or a
    per-citizen target ("consents", "summary"...); `interaction` letters of "cruds".
    A token acting as an admin holds no clinical scope: 403 `role-not-allowed`.
    """
    caller = authenticate()
    context = smart_context(caller)
    if context is None:
        raise RoleNotAllowed()
    if not has_scope(caller, resource=resource, interaction=interaction):
        raise InsufficientScope(
            required_scope(context=context, resource=resource, interaction=interaction)
        )


def require_role(*roles: str) -> Caller:
    """403 `role-not-allowed` unless the token acts as one of `roles`."""
    caller = authenticate()
    if caller.role not in roles:
        raise RoleNotAllowed()
    return caller


def require_user_scope(scope: str) -> Caller:
    """403 `insufficient-scope` unless the token holds a plain scope such as `openid`."""
    caller = authenticate()
    if scope not in caller.scopes:
        raise InsufficientScope(scope)
    return caller


def _protect_api() -> None:
    if request.method == "OPTIONS":  # CORS preflight carries no credentials
        return
    path = request.path
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        authenticate()


def install_resource_protection(app: Flask) -> None:
    """Require a valid bearer token on every request under /api, whichever blueprint serves
    it (and before any of their own hooks run)."""
    app.before_request(_protect_api)
