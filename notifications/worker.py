"""The in-process worker (NOTIFICATIONS_WORKER=thread) and the foreground loop of the CLI.

The thread is started by the first request a web process serves (so CLI commands and test
processes never get one by accident), waits on an event that commits of new deliveries set, and
falls back to polling every NOTIFICATIONS_POLL_SECONDS for retries and quiet hours. ``stop()``
ends it promptly; an atexit hook stops it when the process exits normally.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from flask import Flask

from notifications.delivery import process_batch
from notifications.runtime import EXTENSION, NotificationsRuntime

log = logging.getLogger("phr.notifications.worker")
_MAX_ERROR_PAUSE = 60.0


def run_loop(app: Flask, state: NotificationsRuntime, stop: threading.Event) -> None:
    """Deliver until ``stop`` is set: batches while there is work, then wait for a nudge."""
    errors = 0
    while not stop.is_set():
        try:
            with app.app_context():
                result = process_batch()
            errors = 0
        except Exception:  # noqa: BLE001 - a database hiccup must not kill the worker
            errors += 1
            pause = min(_MAX_ERROR_PAUSE, state.settings.poll_seconds * (2 ** min(errors, 6)))
            log.error("notification worker pass failed; pausing", exc_info=True,
                      extra={"pause_seconds": pause})
            stop.wait(pause)
            continue
        if result.claimed == 0 or result.claimed == result.skipped + result.deferred:
            state.wake.wait(state.settings.poll_seconds)
            state.wake.clear()


class ThreadWorker:
    """A daemon thread running ``run_loop`` for one app."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._state: NotificationsRuntime = app.extensions[EXTENSION]
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_loop, args=(app, self._state, self._stop),
            name="phr-notifications-worker", daemon=True,
        )

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()
        atexit.register(self.stop)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to end and wait for it (a send in flight finishes first)."""
        self._stop.set()
        self._state.wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        atexit.unregister(self.stop)


def start_thread_worker(app: Flask) -> ThreadWorker:
    """Start the app's worker thread once (idempotent); returns it."""
    state: NotificationsRuntime = app.extensions[EXTENSION]
    with state.worker_lock:
        worker: Any = state.worker
        if worker is None or not worker.alive:
            worker = ThreadWorker(app)
            worker.start()
            state.worker = worker
            log.info("notification worker thread started")
        return worker


def stop_thread_worker(app: Flask) -> None:
    """Stop the app's worker thread if it runs."""
    state: NotificationsRuntime = app.extensions[EXTENSION]
    with state.worker_lock:
        worker = state.worker
        state.worker = None
    if worker is not None:
        worker.stop()
