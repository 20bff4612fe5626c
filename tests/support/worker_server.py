"""The app as gunicorn serves it, telling which worker process answered (tests only).

`create_app()` (gunicorn: "tests.support.worker_server:create_app()") is `app.create_app()`
plus one after-request hook adding `WORKER_HEADER: <pid>`, so a test driving several gunicorn
workers can tell that each of them answered (a warm worker after a key rotation, say). Only
this factory adds the header; the app never does.
"""

from __future__ import annotations

import os
from typing import Any

WORKER_HEADER = "X-Test-Worker"


def create_app() -> Any:
    from app import create_app as create_normal_app

    app = create_normal_app()

    @app.after_request
    def tell_worker(response: Any) -> Any:
        response.headers[WORKER_HEADER] = str(os.getpid())
        return response

    return app
