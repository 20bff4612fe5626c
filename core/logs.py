"""JSON-lines logging with request ids; a filter keeps personal values out of every line."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context

REDACTED = "[redacted]"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

# Defence in depth for values nobody marked: long digit runs (health IDs, phone and insurance
# numbers), e-mail addresses, bearer tokens and OAuth secrets in query-string form.
_SCRUB_PATTERNS = (
    (re.compile(r"(?i)bearer\s+[A-Za-z0-9\-._~+/]+=*"), "Bearer " + REDACTED),
    (
        re.compile(
            r"(?i)\b(access_token|refresh_token|id_token|code|code_verifier|client_secret|"
            r"password|token)=([^&\s\"']+)"
        ),
        r"\1=" + REDACTED,
    ),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), REDACTED),
    (re.compile(r"(?<![\w-])\+?\d[\d .-]{7,}\d(?![\w-])"), REDACTED),
)


class Personal:
    """Marks a value as personal: it may be passed to a logger but is never written out."""

    __slots__ = ("_value",)

    def __init__(self, value: object) -> None:
        self._value = value

    def __str__(self) -> str:
        return REDACTED

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return REDACTED


def personal(value: object) -> Personal:
    return Personal(value)


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUB_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact(value: Any) -> Any:
    if isinstance(value, Personal):
        return REDACTED
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(v) for v in value)
    return value


class RedactionFilter(logging.Filter):
    """Replace Personal values in arguments and extras, then scrub the rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            record.args = _redact(record.args)
        elif record.args:
            record.args = tuple(_redact(a) for a in record.args)
        for key in list(vars(record)):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _redact(getattr(record, key)))
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not break logging
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        # Tracebacks print exception messages, which may carry values: keep frames only.
        if record.exc_info:
            from core.errors import safe_traceback

            exc = record.exc_info[1]
            if exc is not None:
                record.__dict__["error"] = safe_traceback(exc)
            record.exc_info = None
            record.exc_text = None
        return True


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        line = json.dumps(entry, ensure_ascii=False, default=str)
        return scrub_line(line)


def scrub_line(line: str) -> str:
    # Last line of defence on the whole serialized entry (extras included).
    return scrub(line)


_configured_handler: logging.Handler | None = None


def configure_logging(level: str = "INFO", stream: Any = None) -> logging.Handler:
    """Install one JSON handler on the root logger (idempotent across app instances)."""
    global _configured_handler
    root = logging.getLogger()
    if _configured_handler is not None:
        root.removeHandler(_configured_handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    handler.addFilter(RedactionFilter())
    root.addHandler(handler)
    root.setLevel(level)
    _configured_handler = handler
    # Werkzeug's own access log prints raw URLs; ours prints the route template instead.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return handler
