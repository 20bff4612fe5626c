"""Typed errors with a stable type, and the one handler that renders them as problem+json."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException

import core.messages  # noqa: F401  (registers the problem texts)
from core.hooks import Hook
from core.i18n import current_language, has_message, translate

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:phr-vn:problem:"

log = logging.getLogger("phr.errors")


class Message:
    """A translatable message: a catalogue key and parameters, rendered in the caller's language."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, **params: object) -> None:
        self.key = key
        self.params = params

    def render(self, lang: str) -> str:
        return translate(self.key, lang, **self.params)

    def __repr__(self) -> str:
        return f"Message({self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.key, self.params) == (other.key, other.params)

    def __hash__(self) -> int:
        return hash(self.key)


FieldErrors = Mapping[str, Sequence["Message | str"]]


class Problem(Exception):
    """An error the client should see. Subclasses fix status and code; details are translatable."""

    status: int = 500
    code: str = "internal-error"

    def __init__(
        self,
        detail: Message | None = None,
        *,
        errors: FieldErrors | None = None,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
        title: Message | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(code or self.code)
        if code:
            self.code = code
        self.detail = detail
        self.title = title
        self.errors = errors
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def title_message(self) -> Message:
        if self.title is not None:
            return self.title
        key = f"problem.{self.code}.title"
        return Message(key if has_message(key) else f"problem.{_GENERIC[self.status]}.title")

    def detail_message(self) -> Message:
        if self.detail is not None:
            return self.detail
        key = f"problem.{self.code}.detail"
        return Message(key if has_message(key) else f"problem.{_GENERIC[self.status]}.detail")


class BadRequest(Problem):
    status, code = 400, "bad-request"


class MalformedJson(Problem):
    status, code = 400, "malformed-json"


class Unauthorized(Problem):
    status, code = 401, "unauthorized"


class Forbidden(Problem):
    status, code = 403, "forbidden"


class NotFound(Problem):
    status, code = 404, "not-found"


class MethodNotAllowed(Problem):
    status, code = 405, "method-not-allowed"


class Conflict(Problem):
    status, code = 409, "conflict"


class PreconditionFailed(Problem):
    status, code = 412, "precondition-failed"


class PayloadTooLarge(Problem):
    status, code = 413, "payload-too-large"


class UnsupportedMediaType(Problem):
    status, code = 415, "unsupported-media-type"


class ValidationFailed(Problem):
    status, code = 422, "validation-error"


class PreconditionRequired(Problem):
    status, code = 428, "precondition-required"


class RequestHeaderFieldsTooLarge(Problem):
    status, code = 431, "request-header-fields-too-large"


class TooManyRequests(Problem):
    status, code = 429, "too-many-requests"

    def __init__(self, retry_after: int, **kwargs: Any) -> None:
        retry_after = max(1, int(retry_after))
        kwargs.setdefault("detail", Message("problem.too-many-requests.detail",
                                            retry_after=retry_after))
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Retry-After"] = str(retry_after)
        super().__init__(headers=headers, **kwargs)


class InternalError(Problem):
    status, code = 500, "internal-error"


class ServiceUnavailable(Problem):
    status, code = 503, "service-unavailable"


DATABASE_RETRY_AFTER = 5  # seconds: a pool refills, a failover or restart finishes


def database_unavailable() -> ServiceUnavailable:
    """The 503 for a database that cannot answer now (core/ops.py's readiness uses its own)."""
    return ServiceUnavailable(
        Message("problem.database-unavailable.detail", retry_after=DATABASE_RETRY_AFTER),
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)})


_GENERIC = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    428: "precondition-required",
    429: "too-many-requests",
    431: "request-header-fields-too-large",
    500: "internal-error",
    503: "service-unavailable",
}

_BY_STATUS: dict[int, type[Problem]] = {
    cls.status: cls
    for cls in (
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict,
        PreconditionFailed, PayloadTooLarge, UnsupportedMediaType, ValidationFailed,
        PreconditionRequired, RequestHeaderFieldsTooLarge, InternalError, ServiceUnavailable,
    )
}


def _render_errors(errors: FieldErrors, lang: str) -> dict[str, list[str]]:
    rendered: dict[str, list[str]] = {}
    for field, messages in errors.items():
        rendered[field] = [m.render(lang) if isinstance(m, Message) else str(m) for m in messages]
    return rendered


def problem_body(problem: Problem) -> dict[str, Any]:
    """The RFC 9457 body of a problem in the request's language (also used per batch item)."""
    lang = current_language()
    request_id = g.get("request_id", "")
    detail = problem.detail_message()
    if problem.status == 500:
        # A 500 says nothing but "internal error" and the request id, whatever raised it.
        detail = Message("problem.internal-error.detail", request_id=request_id)
    elif problem.status == 413 and detail.key == "problem.payload-too-large.detail":
        from flask import current_app

        detail = Message(detail.key, limit=current_app.config.get("MAX_CONTENT_LENGTH"))
    elif problem.status == 405 and detail.key == "problem.method-not-allowed.detail":
        detail = Message(detail.key, method=request.method)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + problem.code,
        "title": problem.title_message().render(lang),
        "status": problem.status,
        "detail": detail.render(lang),
        "instance": request.path,
        "request_id": request_id,
    }
    if problem.errors:
        body["errors"] = _render_errors(problem.errors, lang)
    if problem.status != 500:
        for key, value in problem.extra.items():
            body.setdefault(key, value)
    return body


# Asked for every problem: a face of the service that answers in its own format (the FHIR API
# under /fhir answers OperationOutcome) renders the problems of its paths; None is
# problem+json. Installed by the package that owns the face (core knows no domain package).
ProblemRenderer = Callable[[str, Problem], "Response | None"]
PROBLEM_RENDERER: Hook[ProblemRenderer] = Hook("problem-renderer", lambda path, problem: None)


def problem_response(problem: Problem) -> Response:
    """Render a Problem as RFC 9457 problem+json in the request's language (or as the face
    registered for the request's path renders it)."""
    rendered = PROBLEM_RENDERER()(request.path, problem)
    if rendered is not None:
        return rendered
    response = Response(
        json.dumps(problem_body(problem), ensure_ascii=False),
        status=problem.status,
        content_type=PROBLEM_CONTENT_TYPE + "; charset=utf-8",
    )
    response.headers["Content-Language"] = current_language()
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def _from_http_exception(exc: HTTPException) -> Problem:
    status = exc.code or 500
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = BadRequest if 400 <= status < 500 else InternalError
    problem = cls()
    if status == 405:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            problem.headers["Allow"] = ", ".join(sorted(allowed))
    if status == 429:
        problem = TooManyRequests(retry_after=60)
    return problem


def safe_traceback(exc: BaseException) -> str:
    """Frames only: exception messages can carry SQL parameters or values, so they stay out.

    The project's own frames come first (where it went wrong in our code), then the innermost
    library frames; for a database error the statement's opening words (never its parameters).
    """
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "site-packages" not in f.filename]
    theirs = [f for f in frames if "site-packages" in f.filename][-3:]
    lines = [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in ours[-10:] + theirs]
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    original = getattr(exc, "orig", None)
    if original is not None:
        kind += f" ({type(original).__name__})"
    statement = getattr(exc, "statement", None)
    if isinstance(statement, str):
        kind += " [" + " ".join(statement.split()[:4]) + " ...]"
    return kind + " | " + " -> ".join(lines)


def register_error_handlers(app: Flask) -> None:
    """Every error, expected or not, leaves as problem+json."""

    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        if exc.status >= 500:
            log.error("server problem %s", exc.code, extra={"error": safe_traceback(exc)})
        return problem_response(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return problem_response(_from_http_exception(exc))

    from core.vault.errors import VaultError

    @app.errorhandler(VaultError)
    def _vault(exc: VaultError) -> Response:
        # Coordinates were logged where the failure happened; the client learns nothing more.
        log.error("vault failure", extra={"error": type(exc).__name__})
        return problem_response(InternalError(code="internal-error"))

    from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    @app.errorhandler(OperationalError)
    @app.errorhandler(DisconnectionError)
    @app.errorhandler(PoolTimeout)
    @app.errorhandler(DBAPIError)
    def _database_unavailable(exc: Exception) -> Response:
        # The database unreachable, gone mid-request, past a bound (core/db.py), or every pooled
        # connection busy: a 503 the client may retry (an Idempotency-Key makes a retried create
        # safe). Any other database error is a bug: 500. Neither says a word of SQL.
        if not _database_failed(exc):
            return _unexpected(exc)
        log.error("database unavailable", extra={"error": safe_traceback(exc)})
        return problem_response(database_unavailable())

    def _database_failed(exc: BaseException | None) -> bool:
        # The failure itself, or the one an error path ran into while handling it (a statement
        # on the broken session raises PendingRollbackError, whose context is the failure).
        for _ in range(5):
            if exc is None:
                return False
            if isinstance(exc, OperationalError | DisconnectionError | PoolTimeout) or (
                    isinstance(exc, DBAPIError) and exc.connection_invalidated):
                return True
            exc = exc.__cause__ or exc.__context__
        return False

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if _database_failed(exc):
            log.error("database unavailable", extra={"error": safe_traceback(exc)})
            return problem_response(database_unavailable())
        log.error("unhandled exception", extra={"error": safe_traceback(exc)})
        return problem_response(InternalError())
