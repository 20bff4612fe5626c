"""A WSGI app that answers with how many objects its worker has frozen out of the garbage
collector's walks (`gc.get_freeze_count()`): served by gunicorn with the project's
gunicorn.conf.py, it shows what the config's worker hooks did to the worker."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = str(gc.get_freeze_count()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
