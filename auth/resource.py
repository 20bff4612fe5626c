"""The resource side: every request under /api carries a bearer token; handlers ask who it is.

One indexed query turns the token into the request's `Caller`: the token row (by the SHA-256
digest of the presented value, a unique index) joined with its client, its account and the
practitioner's active facility memberships. Revoking a token, disabling an account or a client,
or ending a membership takes effect on the very next request.

The hot routes (`remembers_principal`) spare that query: the worker remembers the principal a
token's digest stood for (a small TTL cache), and a statement the request runs anyway (the
consent facts, see consent.pdp) carries a probe column that checks, in the same round trip,
that the token is still live and the principal still what was remembered (token not revoked
or expired, client and account active, the same account fields and memberships). Nothing of
the request is used before the probe says so: any other statement that would run first is
preceded by the probe on its own (`_probe_first`), and a route that ran none probes before
answering. A dead token answers 401 as before; a changed principal is loaded anew and the
route runs again from its start (nothing has been written by then).

Contract for API handlers:
    caller = current_caller()                           # 401 problem when no valid token
    require_scope(resource="immunizations", interaction="r")   # 403 insufficient-scope
    caller.acting_for_citizen(citizen_id)               # what the decision point is given
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import uuid
from collections.abc import Callable, Hashable, Mapping
from datetime import date, datetime
from typing import Any, TypeVar

from authlib.oauth2.rfc6749 import ResourceProtector
from authlib.oauth2.rfc6749.errors import MissingAuthorizationError, OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from cachetools import TTLCache
from flask import Flask, current_app, g, request
from sqlalchemy import and_, bindparam, event, exists, func, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from auth import clock
from auth.credentials import digest
from auth.errors import REALM, InsufficientScope, InvalidToken, RoleNotAllowed, TokenRequired
from auth.models import Account, OAuthClient, OAuthToken
from auth.scopes import grants, required_scope
from core.db import db, pending_probe, set_pending_probe
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


@dataclasses.dataclass(frozen=True)
class _Principal:
    """A token's caller and what it was built from: what the probe compares it with."""

    caller: Caller  # without a request id
    digest: bytes
    access_expires_at: datetime
    client_facility_id: uuid.UUID | None
    account_role: str | None
    account_citizen_id: uuid.UUID | None
    account_practitioner_id: uuid.UUID | None
    account_facility_id: uuid.UUID | None
    day: date  # the day the memberships were counted for
    membership_rows: int  # active memberships on `day`
    membership_facilities: tuple[uuid.UUID, ...]


def load_caller(access_token: str, *, now: datetime,
                request_id: str | None = None) -> Caller | None:
    """The caller of a valid access token; None when unknown, expired, revoked, or its
    client or account is disabled. One query."""
    principal = _load_principal(digest(access_token), now=now)
    if principal is None:
        return None
    return dataclasses.replace(principal.caller, request_id=request_id)


def _load_principal(token_digest: bytes, *, now: datetime) -> _Principal | None:
    # A Core statement: the connection spares the ORM session's per-statement work.
    rows = db.session.connection().execute(_PRINCIPAL_QUERY, {"digest": token_digest}).all()
    if not rows:
        return None
    first = rows[0]
    if first.revoked_at is not None or first.access_expires_at <= now or not first.client_active:
        return None
    today = now.astimezone(VIETNAM_TZ).date()
    active = [row.membership_facility_id for row in rows
              if row.membership_facility_id is not None and row.membership_started_on <= today]
    memberships = frozenset(active)
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
    caller = Caller(
        account_id=first.account_id,
        client_id=first.client_id,
        role=role,
        scopes=frozenset(first.scope.split()),
        citizen_id=first.citizen_id,
        practitioner_id=first.practitioner_id,
        facility_ids=facilities,
        token_id=first.token_id,
    )
    return _Principal(
        caller=caller, digest=token_digest, access_expires_at=first.access_expires_at,
        client_facility_id=first.client_facility_id,
        account_role=first.role if first.account_id is not None else None,
        account_citizen_id=first.citizen_id, account_practitioner_id=first.practitioner_id,
        account_facility_id=first.account_facility_id, day=today,
        membership_rows=len(active), membership_facilities=tuple(sorted(memberships)),
    )


# --- the principal remembered per worker, confirmed by a probe on every request -------------

PRINCIPAL_CACHE_SIZE = 10_000
_PRINCIPALS_KEY = "phr.auth.principals"
# The probe compares the memberships with this many bound values (padded): a principal with
# more facilities is not remembered (one statement shape for everyone else).
_PROBE_FACILITIES = 4
_NO_FACILITY = uuid.UUID(int=0)


class PrincipalChanged(Exception):
    """The remembered principal is no longer the token's: the route runs again with the
    principal loaded anew (raised before anything of the request was used or written)."""


class _Principals:
    """One app's remembered principals, by token digest (never the token)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._cache: TTLCache[bytes, _Principal] = TTLCache(
            maxsize=PRINCIPAL_CACHE_SIZE, ttl=max(seconds, 0.001))

    def get(self, token_digest: bytes) -> _Principal | None:
        with self._lock:
            return self._cache.get(token_digest)

    def remember(self, principal: _Principal) -> None:
        if len(principal.membership_facilities) > _PROBE_FACILITIES:
            return
        with self._lock:
            self._cache[principal.digest] = principal

    def forget(self, token_digest: bytes) -> None:
        with self._lock:
            self._cache.pop(token_digest, None)


def _principals() -> _Principals | None:
    principals = current_app.extensions.get(_PRINCIPALS_KEY)
    return principals if principals is not None and principals.seconds > 0 else None


def _bound(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


@functools.cache
def _probe_column(shape: str) -> Any:
    """EXISTS: the token is live and its principal is the remembered one. `shape`: "client"
    (a facility system's token), "account" or "practitioner" (an account with memberships).
    Built once per shape; bound values `phr_probe_*`.

    The client, the account and the memberships are scalar subqueries of the token's row, not
    joins: PostgreSQL plans every statement anew (nothing prepared survives PgBouncer's
    transactions) and a join makes it search join orders, which cost twice the planning time
    of the whole probe written this way (0.16 against 0.08 ms). A missing row is NULL: not live.
    """
    token, client, account, membership = _token, _client, _account, _membership
    client_unchanged = select(and_(
        client.c.active.is_(True),
        client.c.facility_id.is_not_distinct_from(
            _bound("phr_probe_client_facility", client.c.facility_id)),
    )).where(client.c.client_id == token.c.client_id).scalar_subquery()
    conditions = [
        token.c.access_token_hash == bindparam("phr_probe_digest",
                                                type_=token.c.access_token_hash.type),
        token.c.revoked_at.is_(None),
        token.c.access_expires_at > _bound("phr_probe_now", token.c.access_expires_at),
        client_unchanged.is_(True),
    ]
    if shape == "client":
        conditions.append(token.c.account_id.is_(None))
    else:
        account_unchanged = select(and_(
            account.c.active.is_(True),
            account.c.role == _bound("phr_probe_role", account.c.role),
            account.c.citizen_id.is_not_distinct_from(
                _bound("phr_probe_citizen", account.c.citizen_id)),
            account.c.practitioner_id.is_not_distinct_from(
                _bound("phr_probe_practitioner", account.c.practitioner_id)),
            account.c.facility_id.is_not_distinct_from(
                _bound("phr_probe_facility", account.c.facility_id)),
        )).where(account.c.id == token.c.account_id).scalar_subquery()
        conditions.append(account_unchanged.is_(True))
        if shape == "practitioner":
            elsewhere = membership.c.facility_id.not_in(
                [_bound(f"phr_probe_f{i}", membership.c.facility_id)
                 for i in range(_PROBE_FACILITIES)])
            # The same active memberships: as many, and none at another facility.
            memberships_unchanged = select(and_(
                func.count() == bindparam("phr_probe_rows"),
                func.count().filter(elsewhere) == 0,
            )).where(
                membership.c.practitioner_id == _bound("phr_probe_practitioner",
                                                       membership.c.practitioner_id),
                membership.c.ended_on.is_(None),
                membership.c.started_on <= _bound("phr_probe_today", membership.c.started_on),
            ).scalar_subquery()
            conditions.append(memberships_unchanged.is_(True))
    return exists(select(literal(1)).select_from(token).where(*conditions)).label(
        "phr_token_live")


class _TokenProbe:
    """The probe of one request's remembered principal (core.db.StatementProbe)."""

    def __init__(self, principal: _Principal, now: datetime) -> None:
        self.principal = principal
        self.now = now
        caller = principal.caller
        if caller.account_id is None:
            self.shape: Hashable = "client"
        elif principal.account_practitioner_id is None:
            self.shape = "account"
        else:
            self.shape = "practitioner"
        params: dict[str, Any] = {
            "phr_probe_digest": principal.digest, "phr_probe_now": now,
            "phr_probe_client_facility": principal.client_facility_id,
        }
        if self.shape != "client":
            params.update(phr_probe_role=principal.account_role,
                          phr_probe_citizen=principal.account_citizen_id,
                          phr_probe_practitioner=principal.account_practitioner_id,
                          phr_probe_facility=principal.account_facility_id)
        if self.shape == "practitioner":
            facilities = list(principal.membership_facilities) or [_NO_FACILITY]
            facilities += [facilities[0]] * (_PROBE_FACILITIES - len(facilities))
            params.update(phr_probe_today=now.astimezone(VIETNAM_TZ).date(),
                          phr_probe_rows=principal.membership_rows,
                          **{f"phr_probe_f{i}": f for i, f in enumerate(facilities)})
        self.params: Mapping[str, Any] = params

    @property
    def column(self) -> Any:
        return _probe_column(str(self.shape))

    def confirm(self, value: Any) -> None:
        """The probe's answer: live goes on; otherwise 401 when the token is dead, or the
        route again with the principal loaded anew."""
        set_pending_probe(None)
        if value:
            return
        principals = _principals()
        if principals is not None:
            principals.forget(self.principal.digest)
        fresh = _load_principal(self.principal.digest, now=self.now)
        if fresh is None:
            g.pop("phr_caller", None)
            raise InvalidToken()
        if principals is not None:
            principals.remember(fresh)
        g.phr_caller = dataclasses.replace(fresh.caller, request_id=g.get("request_id"))
        raise PrincipalChanged()

    def run(self) -> None:
        """The probe as a statement of its own (nothing carried it)."""
        set_pending_probe(None)
        value = db.session.connection().execute(select(self.column), dict(self.params)).scalar()
        self.confirm(value)


@event.listens_for(Engine, "before_execute")
def _probe_first(conn: Any, clauseelement: Any, multiparams: Any, params: Any,
                 execution_options: Any) -> None:
    """No statement of a request runs before its remembered principal is confirmed: one that
    does not carry the probe is preceded by it."""
    probe = pending_probe()
    if probe is None or not isinstance(probe, _TokenProbe):
        return
    options = getattr(clauseelement, "_execution_options", None) or {}
    if execution_options.get("phr_carries_probe") or options.get("phr_carries_probe"):
        return
    probe.run()


def remembers_principal(view: F) -> F:
    """Let a route use the principal its worker remembers for the token, confirmed by the
    probe its first statement carries (see the module's docstring). The route's statements
    must carry it or be preceded by it (they are); a route whose principal changed runs
    again from its start, which is safe because nothing has run before the probe."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            try:
                response = view(*args, **kwargs)
            except (PrincipalChanged, OperationalError, DisconnectionError, PoolTimeout):
                raise  # a probe on a session whose database just failed would fail again
            except Exception:
                _probe_if_pending()  # a dead token's 401 wins over the route's own answer
                raise
            _probe_if_pending()
            return response
        except PrincipalChanged:
            db.session.rollback()
            return view(*args, **kwargs)

    wrapped._phr_remembers_principal = True  # type: ignore[attr-defined]
    return wrapped  # type: ignore[return-value]


def _probe_if_pending() -> None:
    """A route that ran no statement carrying or preceded by the probe: probe before it
    answers (nothing was written, so a changed principal just answers with the retry)."""
    probe = pending_probe()
    if isinstance(probe, _TokenProbe):
        probe.run()


def _remembering() -> bool:
    endpoint = request.endpoint
    view = current_app.view_functions.get(endpoint) if endpoint else None
    return bool(getattr(view, "_phr_remembers_principal", False))


def _authenticate_token(token_string: str) -> Caller | None:
    now = clock.now()
    request_id = g.get("request_id")
    principals = _principals()
    token_digest = digest(token_string)
    if principals is not None and _remembering():
        remembered = principals.get(token_digest)
        if remembered is not None and remembered.access_expires_at > now:
            set_pending_probe(_TokenProbe(remembered, now))
            return dataclasses.replace(remembered.caller, request_id=request_id)
    principal = _load_principal(token_digest, now=now)
    if principal is None:
        return None
    if principals is not None:
        principals.remember(principal)
    return dataclasses.replace(principal.caller, request_id=request_id)


class _CallerValidator(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> Caller | None:
        return _authenticate_token(token_string)

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
    it (and before any of their own hooks run); remember principals for
    PRINCIPAL_CACHE_SECONDS (0: never)."""
    app.extensions[_PRINCIPALS_KEY] = _Principals(
        float(app.config.get("PRINCIPAL_CACHE_SECONDS", 60)))
    app.before_request(_protect_api)
