"""Request plumbing: request ids, access log lines, metrics, and strict JSON bodies."""

from __future__ import annotations

import gzip
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, json, request
from werkzeug.exceptions import RequestEntityTooLarge

from core.errors import MalformedJson, Message, PayloadTooLarge, UnsupportedMediaType
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


def json_body() -> dict[str, Any]:
    """The request body as a JSON object; 415 for another content type, 400 when malformed."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType()
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge as exc:
        raise PayloadTooLarge() from exc
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJson() from exc
    if not isinstance(body, dict):
        raise MalformedJson(Message("problem.json-object-required.detail"))
    return body


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
