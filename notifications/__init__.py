"""Health notifications: outbox, channels, preferences, devices, reminders and the worker.

``init_app(app)`` wires everything: settings, the domain-event subscriptions (a notification is
written in the transaction of the change that caused it), the API blueprint, the CLI, the demo
seeder and the worker of NOTIFICATIONS_WORKER (thread: started by the first request a web
process serves; celery: publishing to the broker on commit; none: `flask notifications process`).

It answers two questions the record asks of it (typed hooks declared in `ehr.api_citizens`):
the unread count on the summary and the notifications held about a person in the export.
"""

from __future__ import annotations

import atexit
from typing import Any

from flask import Flask

from notifications.runtime import EXTENSION, NotificationsRuntime


def init_app(app: Flask) -> None:
    """Set the notification service up on ``app``."""
    from core.events import EventBus
    from ehr.api_citizens import EXPORT_NOTIFICATIONS, UNREAD_COUNT
    from notifications import account_notices, messages
    from notifications.api import bp
    from notifications.cli import notifications_cli
    from notifications.handlers import subscribe
    from notifications.settings import load_settings

    messages.register()
    state = NotificationsRuntime(load_settings(app.config, instance_path=app.instance_path))
    app.extensions[EXTENSION] = state
    events = app.extensions.setdefault("phr.events", EventBus())
    subscribe(events)
    account_notices.install(events)
    app.register_blueprint(bp)
    app.cli.add_command(notifications_cli)
    UNREAD_COUNT.install(app, _unread_count)
    EXPORT_NOTIFICATIONS.install(app, _exported)

    if state.settings.worker == "celery":
        from notifications.publishing import BackgroundPublisher
        from notifications.tasks import make_celery, publisher

        state.celery = make_celery(app)
        # Requests hand their ids over and return; a thread publishes (a broker outage costs
        # no request anything, and the sweep delivers what could not be published).
        state.publisher = BackgroundPublisher(
            publisher(state.celery, queue=state.settings.celery_queue,
                      chunk=state.settings.batch_size),
            cooldown=state.settings.poll_seconds,
        )
        state.publish = state.publisher.submit
        atexit.register(_close_publishing, state)
    elif state.settings.worker == "thread":
        app.before_request(_start_worker_once(app, state))


def _unread_count(session: Any, citizen_id: Any) -> int:
    """The badge on the phone's home screen (the record summary asks)."""
    from notifications.inbox import unread_count
    from notifications.recipients import Recipient

    return unread_count(session, Recipient.citizen(citizen_id))


def _exported(session: Any, citizen_id: Any, caller: Any) -> dict[str, Any]:
    """The person's own inbox, in their export. Only for the person: a guardian's export of a
    child does not hold the child's inbox, which may tell of care the child alone sees (the
    guardian's notifications about the child are in the guardian's own inbox)."""
    from auth.resource import has_scope
    from core.i18n import current_language
    from notifications.api import RESOURCE
    from notifications.inbox import all_notifications, render
    from notifications.recipients import Recipient

    if caller.role != "citizen" or caller.citizen_id != citizen_id:
        return {}
    if not has_scope(caller, resource=RESOURCE, interaction="r"):
        return {}  # a token for vaccinations exports no inbox, as it reads none
    me = Recipient.citizen(citizen_id)
    return {"notifications": render(session, me, all_notifications(session, me),
                                    lang=current_language())}


def _start_worker_once(app: Flask, state: NotificationsRuntime) -> Any:
    def start() -> None:
        if state.worker is None:
            from notifications.worker import start_thread_worker

            start_thread_worker(app)

    return start


def demo_reminders(app: Flask) -> Any:
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
        _close_publishing(state)
        atexit.unregister(_close_publishing)


def _close_publishing(state: NotificationsRuntime) -> None:
    """Publish what is queued (briefly), then close the broker connections."""
    from notifications.tasks import close_celery

    if state.publisher is not None:
        state.publisher.close()
    close_celery(state.celery)
