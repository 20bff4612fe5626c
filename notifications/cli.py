"""`flask --app app notifications ...`: reminders, delivery passes, the worker, outbox stats."""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from core.db import db
from notifications.quiet_hours import VIETNAM
from notifications.runtime import runtime

notifications_cli = AppGroup("notifications", help="Health notifications: outbox and reminders.")


def _echo(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, default=str))


def vietnam_today() -> dt.date:
    """Today's date in Vietnam by the service clock."""
    return runtime().settings.clock().astimezone(VIETNAM).date()


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        shard, shards = (int(part) for part in value.split("/"))
        if not 1 <= shard <= shards:
            raise ValueError
    except ValueError:
        raise click.BadParameter("use K/N with 1 <= K <= N, e.g. 3/8") from None
    return shard, shards


@notifications_cli.command("run-reminders")
@click.option("--today", "today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Compute as of this date (default: today in Asia/Ho_Chi_Minh).")
@click.option("--chunk-size", default=1000, show_default=True, type=click.IntRange(1, 10000),
              help="Citizens per transaction.")
@click.option("--limit", default=None, type=click.IntRange(1), help="Stop after N citizens.")
@click.option("--shard", "shard", default=None, metavar="K/N",
              help="Only the K-th of N equal slices of the citizens (run N of these at once).")
@click.option("--fan-out", "fan_out", default=None, type=click.IntRange(1, 10000),
              help="Celery mode: publish N shard tasks for the workers instead of computing here.")
def run_reminders_command(today: dt.datetime | None, chunk_size: int, limit: int | None,
                          shard: str | None, fan_out: int | None) -> None:
    """Compute vaccination (and periodic-exam) reminders for everyone; idempotent."""
    from notifications.reminders import run_reminders, shard_bounds

    day = today.date() if today else vietnam_today()
    if fan_out is not None:
        state = runtime()
        if state.celery is None:
            raise click.UsageError("--fan-out needs NOTIFICATIONS_WORKER=celery")
        from notifications.tasks import publish_reminder_shards

        publish_reminder_shards(state.celery, queue=state.settings.celery_queue, today=day,
                                shards=fan_out)
        _echo({"today": day.isoformat(), "published_shards": fan_out})
        return
    bounds = _shard(shard)
    start_after, up_to = shard_bounds(*bounds) if bounds else (None, None)
    run = run_reminders(db.session, today=day, chunk_size=chunk_size, limit=limit,
                        start_after=start_after, up_to=up_to)
    _echo({"today": day.isoformat(), **({"shard": shard} if shard else {}), **run.as_dict()})


@notifications_cli.command("process")
@click.option("--until-idle", is_flag=True, help="Repeat until nothing is due.")
@click.option("--retry-now", is_flag=True,
              help="First make every waiting message due now (after a provider outage).")
@click.option("--requeue-dead", is_flag=True,
              help="First give dead-lettered messages a fresh set of attempts.")
@click.option("--limit", default=None, type=click.IntRange(1), help="Rows per batch.")
def process_command(until_idle: bool, retry_now: bool, requeue_dead: bool,
                    limit: int | None) -> None:
    """Deliver due messages once (or until idle) in this process."""
    from notifications.delivery import (
        BatchResult,
        process_batch,
        process_until_idle,
    )
    from notifications.delivery import requeue_dead as requeue
    from notifications.delivery import retry_now as make_due

    now = runtime().settings.clock()
    extra: dict[str, int] = {}
    if requeue_dead:
        extra["requeued"] = requeue(db.session, now=now)
    if retry_now:
        extra["made_due"] = make_due(db.session, now=now)
    result: BatchResult = process_until_idle() if until_idle else process_batch(limit=limit)
    _echo({**extra, **result.as_dict()})


@notifications_cli.command("worker")
@click.option("--concurrency", type=click.IntRange(1), default=None,
              help="Celery mode: worker processes (default: CPU count).")
@click.option("--pool", type=click.Choice(["prefork", "threads", "solo"]), default=None,
              help="Celery mode: execution pool.")
@click.option("--beat/--no-beat", default=True, show_default=True,
              help="Celery mode: also run the periodic sweep (retries, quiet hours).")
def worker_command(concurrency: int | None, pool: str | None, beat: bool) -> None:
    """Run the delivery worker in the foreground (a Celery worker in celery mode)."""
    state = runtime()
    if state.settings.worker == "celery":
        from notifications.tasks import run_worker

        run_worker(state.celery, queue=state.settings.celery_queue, beat=beat,
                   concurrency=concurrency, pool=pool,
                   loglevel=current_app.config.get("LOG_LEVEL", "INFO"))
        return
    from notifications.worker import run_loop

    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()
        state.wake.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        _echo({"worker": "started", "mode": "in-process"})
        run_loop(current_app._get_current_object(), state, stop)  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    _echo({"worker": "stopped"})


@notifications_cli.command("stats")
def stats_command() -> None:
    """Outbox rows by channel and state (no personal data)."""
    from notifications.models import Delivery

    rows = db.session.execute(
        select(Delivery.channel, Delivery.status, func.count())
        .group_by(Delivery.channel, Delivery.status)
    ).all()
    summary: dict[str, dict[str, int]] = {}
    for channel, status, count in rows:
        summary.setdefault(channel, {})[status] = int(count)
    _echo({"deliveries": summary})
