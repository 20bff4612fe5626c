"""Celery for NOTIFICATIONS_WORKER=celery: the same delivery code, run by workers on a broker.

The outbox row is the truth, not the broker message. A commit publishes the ids of its new
deliveries (``phr.notifications.deliver``, from a thread: notifications/publishing.py); a periodic
sweep (``phr.notifications.sweep``, beat) delivers whatever is due (retries, quiet hours ending,
messages whose publish failed or was dropped while the broker was down). Tasks are
acknowledged late and rejected when a worker is lost, so a crash redelivers the message; running a
task twice is harmless because a row is claimed before it is sent.

Workers are started by ``flask --app app notifications worker`` in celery mode, which builds the
Flask app first and then hands the command line to Celery (no import of the app module needed).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from flask import Flask

from notifications.runtime import EXTENSION, NotificationsRuntime

log = logging.getLogger("phr.notifications.celery")

DELIVER_TASK = "phr.notifications.deliver"
SWEEP_TASK = "phr.notifications.sweep"
REMINDERS_TASK = "phr.notifications.reminders"


def make_celery(app: Flask) -> Any:
    """A Celery app bound to this Flask app (tasks run inside its app context)."""
    from celery import Celery

    state: NotificationsRuntime = app.extensions[EXTENSION]
    settings = state.settings
    celery = Celery("phr-notifications", broker=settings.celery_broker_url,
                    set_as_current=False)
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.celery_queue,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        # A worker waits for its broker however long the outage lasts (Celery's default gives
        # up after 100 attempts, about 50 minutes, and the worker exits).
        broker_connection_max_retries=None,
        broker_connection_timeout=3,
        # The publishing thread must not stall on a dead broker (requests never wait on it,
        # notifications/publishing.py): the sweep delivers anything whose publish failed.
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0,
                                   "interval_step": 0.5, "interval_max": 0.5},
        broker_transport_options=_transport_options(settings),
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        beat_scheduler="celery.beat:Scheduler",  # in memory: no schedule file on disk
        beat_schedule={
            "notifications-sweep": {
                "task": SWEEP_TASK,
                "schedule": settings.poll_seconds,
                "options": {"queue": settings.celery_queue, "expires": settings.poll_seconds * 4},
            },
        },
    )

    @celery.task(name=DELIVER_TASK, acks_late=True)
    def deliver(delivery_ids: list[str]) -> dict[str, int]:
        from notifications.delivery import process_batch

        ids = [uuid.UUID(value) for value in delivery_ids]
        with app.app_context():
            return process_batch(ids=ids, limit=len(ids)).as_dict()

    @celery.task(name=SWEEP_TASK, acks_late=True)
    def sweep() -> dict[str, int]:
        from notifications.delivery import process_until_idle

        with app.app_context():
            return process_until_idle(max_batches=20).as_dict()

    @celery.task(name=REMINDERS_TASK, acks_late=True)
    def reminders(shard: int, shards: int, today: str) -> dict[str, object]:
        import datetime as dt

        from core.db import db
        from notifications.reminders import run_reminders, shard_bounds

        start_after, up_to = shard_bounds(shard, shards)
        with app.app_context():
            # Idempotent: a redelivered shard finds its reminders written and adds nothing.
            return run_reminders(db.session, today=dt.date.fromisoformat(today),
                                 start_after=start_after, up_to=up_to).as_dict()

    from celery.signals import worker_process_init

    def _after_fork(**_: Any) -> None:
        # A forked child must not share the parent's database connections.
        from core.db import db

        with app.app_context():
            db.engine.dispose(close=False)

    worker_process_init.connect(_after_fork, weak=False)
    return celery


def _transport_options(settings: Any) -> dict[str, Any]:
    # Redis redelivers an unacknowledged message after this long (acks_late + a crash).
    options: dict[str, Any] = {"visibility_timeout": max(300, int(settings.lease_seconds * 3))}
    if settings.celery_broker_url.startswith(("redis://", "rediss://")):
        # kombu's Redis transport waits forever on a silent connection by default: a publish
        # to a broker that went away without closing the socket would never return.
        options.update(socket_connect_timeout=3, socket_timeout=10)
    return options


def publisher(celery: Any, *, queue: str, chunk: int) -> Any:
    """A function that publishes delivery ids in tasks of at most ``chunk`` ids."""

    def publish(delivery_ids: Sequence[uuid.UUID]) -> None:
        ids = [str(value) for value in delivery_ids]
        for start in range(0, len(ids), chunk):
            celery.send_task(DELIVER_TASK, args=[ids[start:start + chunk]], queue=queue)

    return publish


def publish_reminder_shards(celery: Any, *, queue: str, today: Any, shards: int) -> None:
    """Split a reminder run over the workers: one task per slice of the citizens."""
    for shard in range(1, shards + 1):
        celery.send_task(REMINDERS_TASK, args=[shard, shards, today.isoformat()], queue=queue)


def close_celery(celery: Any) -> None:
    """Close the broker connections a publishing process holds (Celery.close() only forgets
    its pool; producers come from kombu's process-wide pools, keyed by broker URL)."""
    from kombu import pools

    pool = getattr(celery, "_pool", None)
    if pool is not None:
        pool.force_close_all()
    amqp = celery.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    pools.reset()
    celery.close()


def run_worker(
    celery: Any, *, queue: str, beat: bool, concurrency: int | None, pool: str | None,
    loglevel: str,
) -> None:
    """Run a Celery worker in the foreground (the CLI's `notifications worker` in celery mode)."""
    argv = ["worker", "--queues", queue, "--loglevel", loglevel, "--without-gossip",
            "--without-mingle"]
    if beat:
        argv.append("--beat")
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if pool:
        argv += ["--pool", pool]
    celery.worker_main(argv=argv)
