"""Request plumbing: request ids, access log lines, metrics, and strict JSON bodies."""

from __future__ import annotations

import gzip
import json as stdlib_json
import logging
import math
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from core.errors import (
    MalformedJson,
    Message,
    PayloadTooLarge,
    RequestHeaderFieldsTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from core.i18n import current_language
from core.metrics import observe_request

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$")

access_log = logging.getLogger("phr.access")


def _incoming_request_id() -> str:
    candidate = request.headers.get(REQUEST_ID_HEADER, "")
    if _SANE_REQUEST_ID.fullmatch(candidate):
        return candidate
    return uuid.uuid4().hex


def route_label() -> str:
    """The route template (never the raw path: it could carry identifiers)."""
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


# Input limits (README "Design"): a body nests at most MAX_JSON_DEPTH arrays/objects deep; a
# header field holds at most MAX_HEADER_FIELD_BYTES, all of them MAX_HEADER_BYTES (gunicorn lets
# bigger ones through, up to gunicorn.conf.py's limit_request_field_size, so that the refusal
# is ours: problem+json rather than gunicorn's text/html).
MAX_JSON_DEPTH = 64
MAX_HEADER_FIELD_BYTES = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_body() -> dict[str, Any]:
    """The request body as a JSON object; 415 for another content type, 400 when malformed.

    Strict JSON (RFC 8259 as I-JSON, RFC 7493, narrows it): UTF-8 only, no NaN/Infinity, no
    number beyond a double, no member name twice in an object, at most MAX_JSON_DEPTH levels
    of nesting. A string with an unpaired UTF-16 surrogate (`"\\ud800"`) is a 422 naming the
    field: no later code (fingerprints, encryption, the database) ever sees one.
    """
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType()
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge as exc:
        raise PayloadTooLarge() from exc
    if not raw:
        raise MalformedJson(Message("problem.json-object-required.detail"))
    try:
        body = stdlib_json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_unique_members,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except _NotANumber as exc:
        raise MalformedJson(Message("problem.json-not-a-number.detail")) from exc
    except _DuplicateMember as exc:
        raise MalformedJson(Message("problem.json-duplicate-key.detail")) from exc
    except RecursionError as exc:
        # Thousands of levels: the C parser gives up before our own check could run.
        raise MalformedJson(Message("problem.json-too-deep.detail",
                                    limit=MAX_JSON_DEPTH)) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJson() from exc
    if not isinstance(body, dict):
        raise MalformedJson(Message("problem.json-object-required.detail"))
    if _nests_deeper_than(body, MAX_JSON_DEPTH):
        raise MalformedJson(Message("problem.json-too-deep.detail", limit=MAX_JSON_DEPTH))
    # A lone surrogate can only come from a \uD800-\uDFFF escape (strict UTF-8 decoding refuses
    # encoded ones); bodies without such an escape skip the walk.
    if b"\\ud" in raw or b"\\uD" in raw:
        paths = sorted(set(_paths_with_lone_surrogates(body, ())))
        if paths:
            raise ValidationFailed(errors={
                ".".join(path) or "_schema": [Message("validation.unpaired-surrogate")]
                for path in paths
            })
    return body


class _DuplicateMember(ValueError):
    pass


class _NotANumber(ValueError):
    pass


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _DuplicateMember()
    return members


def _refuse_constant(name: str) -> Any:
    raise _NotANumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: valid JSON syntax, but no double holds it
        raise _NotANumber()
    return value


def _nests_deeper_than(body: Any, limit: int) -> bool:
    """Whether arrays/objects nest more than `limit` deep (iterative: no recursion to blow)."""
    stack = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
    return False


def _paths_with_lone_surrogates(node: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Dotted paths (as load_or_problem names fields) of strings with an unpaired surrogate;
    a member name with one is reported at its object."""
    if isinstance(node, str):
        if _LONE_SURROGATE.search(node):
            yield path
    elif isinstance(node, dict):
        for key, value in node.items():
            if _LONE_SURROGATE.search(key):
                yield path
            else:
                yield from _paths_with_lone_surrogates(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths_with_lone_surrogates(value, (*path, str(index)))


def refuse_oversized_headers() -> None:
    """431 problem+json when one header field or all of them together are too large."""
    total = 0
    for name, value in request.headers.items():
        size = len(name) + len(value)
        total += size + 4  # ": " and CRLF, as on the wire
        if size > MAX_HEADER_FIELD_BYTES or total > MAX_HEADER_BYTES:
            raise RequestHeaderFieldsTooLarge(Message(
                "problem.request-header-fields-too-large.detail",
                field_limit=MAX_HEADER_FIELD_BYTES, total_limit=MAX_HEADER_BYTES,
            ))


GZIP_MIN_BYTES = 512


def gzip_if_accepted(response: Response) -> Response:
    """gzip JSON answers for phones on weak networks when the client accepts it."""
    vary = {v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()}
    vary.add("Accept-Encoding")
    response.headers["Vary"] = ", ".join(sorted(vary))
    accepted = request.headers.get("Accept-Encoding", "").lower()
    if (
        "gzip" not in accepted
        or response.direct_passthrough
        or response.status_code < 200
        or response.status_code in (204, 304)
        or "Content-Encoding" in response.headers
        or not response.mimetype.endswith("json")
    ):
        return response
    data = response.get_data()
    if len(data) < GZIP_MIN_BYTES:
        return response
    response.set_data(gzip.compress(data, compresslevel=5, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        # The compressed bytes differ from the identity representation: the tag turns weak.
        response.headers["ETag"] = "W/" + etag
    return response


def install_request_hooks(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.request_id = _incoming_request_id()
        g.request_started = time.perf_counter()
        refuse_oversized_headers()
        g.language = current_language()
        length = request.content_length
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if length is not None and limit is not None and length > limit:
            raise PayloadTooLarge()

    @app.after_request
    def _compress(response: Response) -> Response:
        return gzip_if_accepted(response)

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if "Content-Language" not in response.headers and response.mimetype.endswith("json"):
            response.headers["Content-Language"] = g.get("language", "vi")
        vary = {v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()}
        vary.update({"Accept-Language", "Authorization", "Accept-Encoding"})
        response.headers["Vary"] = ", ".join(sorted(vary))
        started = g.get("request_started")
        duration = time.perf_counter() - started if started is not None else 0.0
        route = route_label()
        observe_request(
            method=request.method, route=route, status=response.status_code, seconds=duration
        )
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(duration * 1000, 2),
            },
        )
        return response
