"""ETags and conditional requests: If-None-Match → 304 on reads, If-Match required on updates."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Response, jsonify, request

from core.errors import PreconditionFailed, PreconditionRequired


def body_etag(payload: Any) -> str:
    """A strong ETag over the JSON representation (lists, summaries: views differ per caller)."""
    raw = json.dumps(
        payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


def version_etag(resource_id: object, version: int) -> str:
    """The ETag of one version of one resource; If-Match compares against this."""
    return f'"{resource_id}.v{version}"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    weakless = etag.removeprefix("W/")
    for candidate in header.split(","):
        if candidate.strip().removeprefix("W/") == weakless:
            return True
    return False


def json_with_etag(payload: Any, *, etag: str | None = None, status: int = 200) -> Response:
    """Answer JSON with an ETag, or 304 when the client already holds this representation."""
    tag = etag or body_etag(payload)
    if request.method in ("GET", "HEAD") and _matches(request.headers.get("If-None-Match"), tag):
        response = Response(status=304)
    else:
        response = jsonify(payload)
        response.status_code = status
    response.headers["ETag"] = tag
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def require_if_match(current_etag: str) -> None:
    """428 without If-Match, 412 when it names another version."""
    header = request.headers.get("If-Match")
    if not header:
        raise PreconditionRequired()
    if not _matches(header, current_etag):
        raise PreconditionFailed()
