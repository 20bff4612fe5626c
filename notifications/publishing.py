"""Publishing committed delivery ids to the broker off the request path (celery mode).

A commit that wrote outbox rows hands their ids to this publisher and returns: the request never
waits on the broker. A thread of the process publishes them. The broker being slow, refusing or
silent costs that thread a bounded wait (the broker's connect and socket timeouts), never a
request. After a failed publish the thread discards what arrives for ``cooldown`` seconds rather
than spending a timeout on each: those rows are safe in the outbox, and the periodic sweep
delivers them once the broker is back (DESIGN.md §6, "the outbox row is the truth"). A full
queue is dropped for the same reason.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence

log = logging.getLogger("phr.notifications.celery")

Publish = Callable[[Sequence[uuid.UUID]], None]
_STOP = object()


class BackgroundPublisher:
    """Publishes ids on a daemon thread of the current process (started on first use, and again
    in a forked child, which inherits the object but not the thread)."""

    def __init__(self, publish: Publish, *, cooldown: float, max_pending: int = 10_000) -> None:
        self._publish = publish
        self._cooldown = cooldown
        self._queue: queue.Queue[object] = queue.Queue(max_pending)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._quiet_until = 0.0
        self.published = 0  # ids handed to the broker
        self.dropped = 0  # ids left to the sweep (broker failing, or queue full)

    def submit(self, delivery_ids: Sequence[uuid.UUID]) -> None:
        """Queue ids for publishing; never blocks and never raises."""
        if not delivery_ids:
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(list(delivery_ids))
        except queue.Full:
            self.dropped += len(delivery_ids)
            log.warning("publish queue full: deliveries left to the sweep",
                        extra={"deliveries": len(delivery_ids)})

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far was handled (published or dropped)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline or not self._running():
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Publish what is queued (within ``timeout``), then end the thread."""
        if not self._running():
            return
        self.flush(timeout)
        self._queue.put(_STOP)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _running(self) -> bool:
        return self._thread is not None and self._pid == os.getpid() and self._thread.is_alive()

    def _ensure_thread(self) -> None:
        if self._running():
            return
        with self._lock:
            if self._running():
                return
            if self._pid != os.getpid():
                # A forked child: what the parent had queued is the parent's to publish.
                self._queue = queue.Queue(self._queue.maxsize)
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="phr-notifications-publish",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, list)  # noqa: S101 - only lists and _STOP are queued
                self._handle(item)
            finally:
                self._queue.task_done()

    def _handle(self, ids: list[uuid.UUID]) -> None:
        if time.monotonic() < self._quiet_until:
            self.dropped += len(ids)
            return
        try:
            self._publish(ids)
        except Exception:  # noqa: BLE001 - a broker outage must not end the thread
            self.dropped += len(ids)
            self._quiet_until = time.monotonic() + self._cooldown
            log.warning("could not publish deliveries to the broker; the sweep will deliver "
                        "them", exc_info=True, extra={"deliveries": len(ids)})
            return
        self.published += len(ids)
