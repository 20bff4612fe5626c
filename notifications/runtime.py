"""Per-app state of the notification service: settings, channels, and who to wake on commit."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from flask import current_app

from notifications.channels import ChannelSet
from notifications.settings import NotificationSettings

EXTENSION = "phr.notifications"
log = logging.getLogger("phr.notifications")


class NotificationsRuntime:
    """What init_app sets up: lives in ``app.extensions["phr.notifications"]``."""

    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings
        self.channels = ChannelSet(settings)
        # Set when new deliveries commit: the in-process worker stops waiting for its poll.
        self.wake = threading.Event()
        self.worker: Any = None  # notifications.worker.ThreadWorker once started
        self.worker_lock = threading.Lock()
        self.celery: Any = None  # the Celery app in celery mode
        # In celery mode: publishes the ids of committed deliveries to the broker.
        self.publish: Callable[[Sequence[uuid.UUID]], None] | None = None
        self.publisher: Any = None  # notifications.publishing.BackgroundPublisher (celery)
        # Providers ("lanes") that timed out lately, and until when this process leaves them
        # alone (notifications.delivery.LaneBreaker).
        self.lanes: Any = None

    def committed(self, delivery_ids: Sequence[uuid.UUID]) -> None:
        """New outbox rows are visible to workers: nudge whoever delivers them."""
        if not delivery_ids:
            return
        self.wake.set()
        if self.publish is not None:
            try:
                self.publish(delivery_ids)
            except Exception:  # noqa: BLE001 - the broker being down must not fail the request
                # The rows are safe in the outbox; the periodic sweep will deliver them.
                log.warning("could not publish deliveries to the broker", exc_info=True)


def runtime() -> NotificationsRuntime:
    """The current app's notification runtime."""
    return current_app.extensions[EXTENSION]
