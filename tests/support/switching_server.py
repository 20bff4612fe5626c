"""The app as gunicorn serves it, its threads switching every microsecond (tests only).

`create_app()` (gunicorn: "tests.support.switching_server:create_app()") is `app.create_app()`
in a worker whose interpreter hands the GIL to another thread every microsecond instead of every
5 ms: a race between a cold worker's threads, a few bytecodes wide (core/sql_threads.py), opens
on every run instead of once in hundreds. Slower, never different: what a request answers must
not depend on when its thread is switched.
"""

from __future__ import annotations

import sys
from typing import Any


def create_app() -> Any:
    from app import create_app as create_normal_app

    app = create_normal_app()
    sys.setswitchinterval(1e-6)
    return app
