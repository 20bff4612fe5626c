"""Opaque, tamper-proof cursors for stable keyset pagination."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from flask import current_app

from core.errors import BadRequest, Message

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def _key() -> bytes:
    return hashlib.sha256(b"phr-vn/cursor/v1" + current_app.config["SECRET_KEY"]).digest()


def encode_cursor(position: Mapping[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True, default=str).encode()
    mac = hmac.new(_key(), raw, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        mac, raw = data[:12], data[12:]
        if not hmac.compare_digest(mac, hmac.new(_key(), raw, hashlib.sha256).digest()[:12]):
            raise ValueError("bad mac")
        position = json.loads(raw)
        if not isinstance(position, dict):
            raise ValueError("not an object")
        return position
    except (ValueError, TypeError) as exc:
        raise BadRequest(Message("problem.invalid-cursor.detail"), code="invalid-cursor") from exc


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    # ASCII digits only: str.isdigit() admits "²" and "٣", and int() of a 5,000-digit string
    # raises; neither may reach int().
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 3 or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(Message("problem.invalid-limit.detail", max=MAX_LIMIT),
                         code="invalid-limit")
    return int(raw)


def parse_timestamp(raw: str | None, *, name: str) -> dt.datetime | None:
    """An RFC 3339 timestamp with offset (a naive one is ambiguous: refused)."""
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise BadRequest(Message("problem.invalid-timestamp.detail", name=name),
                         code="invalid-timestamp")
    return value.astimezone(dt.UTC)
