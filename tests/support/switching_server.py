"""The app as gunicorn serves it, its threads switching every microsecond (tests only).

`create_app()` (gunicorn: "tests.support.switching_server:create_app()") is `app.create_app()`
in a worker whose interpreter hands the GIL to another thread every microsecond instead of every
5 ms, so that threads interleave inside what would otherwise run whole (a race a few bytecodes
wide, such as core/sql_threads.py's, opens far more often; not on every run: see
tests/ehr/test_cold_worker.py). Slower, never different: what a request answers must not
depend on when its thread is switched.
"""

from __future__ import annotations

import sys
from typing import Any


def create_app() -> Any:
    from app import create_app as create_normal_app

    app = create_normal_app()
    sys.setswitchinterval(1e-6)
    return app
