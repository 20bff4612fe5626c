"""The time the auth package believes it is: UTC now, or a clock tests set in the app config."""

from __future__ import annotations

from datetime import datetime

from flask import current_app, has_app_context

from core.db import utcnow


def now() -> datetime:
    """Current UTC time; `app.config["CLOCK"]` (a callable returning an aware datetime) wins."""
    if has_app_context():
        clock = current_app.config.get("CLOCK")
        if clock is not None:
            value = clock()
            if value.tzinfo is None:
                raise ValueError("CLOCK must return a timezone-aware datetime")
            return value
    return utcnow()
