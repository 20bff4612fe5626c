"""The app served by a real gunicorn process that a test can kill right after a commit.

`create_app()` is a test-support app factory (gunicorn: "tests.support.crash_server:create_app()"):
the app exactly as `app.create_app()` builds it from the environment, plus one SQLAlchemy
`after_commit` hook. When a request carries `CRASH_HEADER: after-commit` and its transaction
stored a record entry, the hook ends the worker process with `os._exit(1)` the moment the commit
returns: the data is in the database, no answer is written, the client's connection drops.
Only this factory installs the hook (the app never does), and only a request with the header
trips it.

`running_server(database_url, log_path)` starts gunicorn with the project's gunicorn.conf.py
(one gthread worker) on a free local port, waits until /readyz answers and yields the base URL;
it stops the server on the way out (before the `app` fixture empties the database).

    with running_server(database_url, tmp_path / "server.log") as url:
        requests.post(url + "/api/v1/...", headers={CRASH_HEADER: "after-commit", ...})
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CRASH_HEADER = "X-Test-Crash"
_FLUSHED_ENTRY = "tests.crash_server.entry_flushed"


def create_app() -> Any:
    """The normal app plus the crash hook (for the server process only)."""
    from app import create_app as create_normal_app
    from core.db import db

    app = create_normal_app()
    with app.app_context():
        session_class = db.session.session_factory.class_
    _install_crash_hook(session_class)
    return app


def _install_crash_hook(session_class: type) -> None:
    from flask import has_request_context, request
    from sqlalchemy import event

    from ehr.record_models import RecordEntry

    def remember_entry(session: Any, flush_context: Any) -> None:
        # after_flush still shows the flushed objects in `session.new`.
        if any(isinstance(row, RecordEntry) for row in session.new):
            session.info[_FLUSHED_ENTRY] = True

    def die_after_commit(session: Any) -> None:
        stored_an_entry = session.info.pop(_FLUSHED_ENTRY, False)
        if stored_an_entry and has_request_context() \
                and request.headers.get(CRASH_HEADER) == "after-commit":
            os._exit(1)  # no cleanup, no answer: as if the worker were killed

    def forget(session: Any) -> None:
        session.info.pop(_FLUSHED_ENTRY, None)

    event.listen(session_class, "after_flush", remember_entry)
    event.listen(session_class, "after_commit", die_after_commit)
    event.listen(session_class, "after_rollback", forget)


def wait_for_text(path: Path, text: str, *, timeout: float = 15) -> None:
    """Wait until the server's log holds `text` (gunicorn reports a dead worker when it reaps
    it, which may be a moment after the client saw the connection drop)."""
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in the server log:\n"
                                 + path.read_text(errors="replace"))
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_server(database_url: str, log_path: Path, *, timeout: float = 60,
                   app: str = "tests.support.crash_server:create_app()",
                   ready_path: str = "/readyz",
                   env: dict[str, str] | None = None) -> Iterator[str]:
    """A gunicorn process (the project's gunicorn.conf.py) serving `app` (this module's
    `create_app()` by default) on `database_url`; yields its base URL once `ready_path`
    answers 200. `env`: more of its environment (WEB_THREADS, say)."""
    import requests

    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "WEB_CONCURRENCY": "1",
           "LOG_LEVEL": "WARNING", **(env or {})}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}", "--no-control-socket",  # no shared ~/.gunicorn
             app],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited with {process.returncode}:\n"
                                     + log_path.read_text(errors="replace"))
            # A worker still loading may time out its first answer: wait on, like a refusal.
            with contextlib.suppress(requests.RequestException):
                if requests.get(url + ready_path, timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("the server did not get ready:\n"
                                     + log_path.read_text(errors="replace"))
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGINT)  # quick shutdown: nothing is left to answer
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
