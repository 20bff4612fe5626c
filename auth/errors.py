"""Problems of the auth package: bearer-token failures (RFC 6750) and page errors."""

from __future__ import annotations

from typing import Any

from core.errors import BadRequest, Forbidden, Message, TooManyRequests, Unauthorized

REALM = "phr"


def _quote(value: str) -> str:
    return value.replace("\\", "").replace('"', "'")


def bearer_challenge(error: str | None = None, *, description: str | None = None,
                     scope: str | None = None) -> str:
    """A `WWW-Authenticate: Bearer ...` value (RFC 6750 §3)."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{_quote(description)}"')
    if scope:
        parts.append(f'scope="{_quote(scope)}"')
    return "Bearer " + ", ".join(parts)


class TokenRequired(Unauthorized):
    """No bearer token: RFC 6750 §3.1 asks for a challenge without an error code."""

    code = "token-required"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": bearer_challenge()})
        super().__init__(**kwargs)


class InvalidToken(Unauthorized):
    """The token is unknown, malformed, expired or revoked."""

    code = "invalid-token"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "headers",
            {"WWW-Authenticate": bearer_challenge(
                "invalid_token", description="The access token is invalid, expired or revoked."
            )},
        )
        super().__init__(**kwargs)


class InsufficientScope(Forbidden):
    """The token's scopes do not cover the operation."""

    code = "insufficient-scope"

    def __init__(self, scope: str, **kwargs: Any) -> None:
        kwargs.setdefault("detail", Message("problem.insufficient-scope.detail", scope=scope))
        kwargs.setdefault(
            "headers", {"WWW-Authenticate": bearer_challenge("insufficient_scope", scope=scope)}
        )
        kwargs.setdefault("extra", {"required_scope": scope})
        super().__init__(**kwargs)


class RoleNotAllowed(Forbidden):
    """The token acts for a role this operation is not for."""

    code = "role-not-allowed"


class CsrfFailed(Forbidden):
    """A form came back without the token of the page that showed it."""

    code = "csrf-failed"


class LoginLocked(TooManyRequests):
    """Too many failed logins for this username or from this address."""

    code = "login-locked"

    def __init__(self, retry_after: int, **kwargs: Any) -> None:
        kwargs.setdefault("detail", Message("problem.login-locked.detail",
                                            minutes=max(1, -(-int(retry_after) // 60))))
        super().__init__(retry_after, **kwargs)


class InvalidAuthorizationRequest(BadRequest):
    """An authorization request that cannot be sent back to the client (unknown client,
    unregistered redirect URI): shown to the user instead of redirecting."""

    code = "invalid-authorization-request"
