"""Health notifications: outbox, channels, preferences, devices, reminders and the worker.

``init_app(app)`` wires everything: settings, the domain-event subscriptions (a notification is
written in the transaction of the change that caused it), the API blueprint, the CLI, the demo
seeder and the worker of NOTIFICATIONS_WORKER (thread: started by the first request a web
process serves; celery: publishing to the broker on commit; none: `flask notifications process`).

Hooks other packages may set in ``app.extensions`` (see recipients.py and reminders.py):
``phr.recipients_for``, ``phr.recipients_for_many``, ``phr.accounts_for_practitioner``,
``phr.immunization_doses``, ``phr.periodic_exam_due``.
"""

from __future__ import annotations

import atexit
from typing import Any

from flask import Flask

from notifications.runtime import EXTENSION, NotificationsRuntime


def init_app(app: Flask) -> None:
    """Set the notification service up on ``app``."""
    from core.events import EventBus
    from ehr.cli import register_seeder
    from notifications import messages
    from notifications.api import bp
    from notifications.cli import notifications_cli
    from notifications.handlers import subscribe
    from notifications.settings import load_settings

    messages.register()
    state = NotificationsRuntime(load_settings(app.config, instance_path=app.instance_path))
    app.extensions[EXTENSION] = state
    events = app.extensions.setdefault("phr.events", EventBus())
    subscribe(events)
    app.register_blueprint(bp)
    app.cli.add_command(notifications_cli)
    register_seeder(app, _demo_reminders(app))
    app.extensions.setdefault("phr.unread_count", _unread_count)

    if state.settings.worker == "celery":
        from notifications.tasks import close_celery, make_celery, publisher

        state.celery = make_celery(app)
        state.publish = publisher(state.celery, queue=state.settings.celery_queue,
                                  chunk=state.settings.batch_size)
        atexit.register(close_celery, state.celery)
    elif state.settings.worker == "thread":
        app.before_request(_start_worker_once(app, state))


def _unread_count(session: Any, *, citizen_id: Any, account_id: Any = None) -> int:
    """The badge on the phone's home screen (the record summary asks through this hook)."""
    from notifications.inbox import unread_count
    from notifications.recipients import Recipient

    return unread_count(session, Recipient.citizen(citizen_id))


def _start_worker_once(app: Flask, state: NotificationsRuntime) -> Any:
    def start() -> None:
        if state.worker is None:
            from notifications.worker import start_thread_worker

            start_thread_worker(app)

    return start


def _demo_reminders(app: Flask) -> Any:
    def seed(identities: dict[str, Any]) -> int:
        """Reminders for the demo world as of today (idempotent: dedup keys)."""
        from core.db import db
        from notifications.cli import vietnam_today
        from notifications.reminders import run_reminders

        return run_reminders(db.session, today=vietnam_today()).notifications

    return seed


def shutdown(app: Flask) -> None:
    """Stop the worker thread and close broker connections (tests, embedding servers)."""
    state: NotificationsRuntime | None = app.extensions.get(EXTENSION)
    if state is None:
        return
    from notifications.worker import stop_thread_worker

    stop_thread_worker(app)
    if state.celery is not None:
        from notifications.tasks import close_celery

        close_celery(state.celery)
        atexit.unregister(close_celery)
