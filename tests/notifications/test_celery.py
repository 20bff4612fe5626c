"""The Celery path (NOTIFICATIONS_WORKER=celery) against the local Redis and RabbitMQ.

A real `flask notifications worker` process runs Celery on the broker; the test app publishes on
commit. Each broker is skipped, with the reason, when nothing listens on its port.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notifications.conftest import channel_config, fcm_token, make_person
from tests.notifications.helpers import add_device, deliveries, notify

ROOT = Path(__file__).resolve().parents[2]
BROKERS = {
    "redis": ("127.0.0.1", 6379, "redis://127.0.0.1:6379/0"),
    "rabbitmq": ("127.0.0.1", 5672, "amqp://guest:guest@127.0.0.1:5672//"),
}


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module", params=sorted(BROKERS))
def broker(request) -> str:
    host, port, url = BROKERS[request.param]
    if not _listening(host, port):
        pytest.skip(f"{request.param} is not reachable on {host}:{port}: start it to test the "
                    "Celery path (DESIGN.md §8)")
    return url


@pytest.fixture(scope="module")
def queue(broker: str) -> str:
    return f"phr-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def config_overrides(broker: str, queue: str) -> dict[str, Any]:
    return {"NOTIFICATIONS_WORKER": "celery", "CELERY_BROKER_URL": broker,
            "NOTIFICATIONS_CELERY_QUEUE": queue}


@pytest.fixture(scope="module")
def worker_log(tmp_path_factory: pytest.TempPathFactory, queue: str) -> Path:
    return tmp_path_factory.mktemp(queue) / "worker.log"


@pytest.fixture(scope="module")
def celery_worker(providers, database_url, vapid_key_file, broker, queue,
                  worker_log) -> Iterator[subprocess.Popen]:
    """One worker process per broker for the module (each test's app empties the database,
    the worker only reads what the tests' commits publish)."""
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    env.update({k: str(v) for k, v in channel_config(providers, vapid_key_file).items()})
    env.update({
        "NOTIFICATIONS_WORKER": "celery", "CELERY_BROKER_URL": broker,
        "NOTIFICATIONS_CELERY_QUEUE": queue, "NOTIFICATIONS_POLL_SECONDS": "1",
        "NOTIFICATIONS_BACKOFF_SECONDS": "0.5", "NOTIFICATIONS_BACKOFF_MAX_SECONDS": "1",
    })
    log = worker_log.open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "notifications", "worker",
         "--pool", "solo", "--concurrency", "1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        log.close()
        _delete_queue(broker, queue)


def _delete_queue(broker: str, queue: str) -> None:
    from kombu import Connection, Queue

    with Connection(broker, connect_timeout=3) as connection:
        Queue(queue).bind(connection.default_channel).delete()


def _wait_for(app, predicate, *, worker: subprocess.Popen, log: Path, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = deliveries(app)
        if predicate(rows):
            return rows
        assert worker.poll() is None, log.read_text(errors="replace")
        time.sleep(0.2)
    raise AssertionError(f"timed out; worker log:\n{log.read_text(errors='replace')[-4000:]}")


def test_a_commit_publishes_and_a_celery_worker_delivers_once(app, providers, celery_worker,
                                                              worker_log):
    person = make_person(app, email=None)
    add_device(app, person.id, platform="fcm", token=fcm_token())
    notify(app, subject=person.id, trigger="break-glass")  # push + SMS, published on commit

    rows = _wait_for(app, lambda rows: {r.status for r in rows} == {"sent"},
                     worker=celery_worker, log=worker_log)

    assert sorted(r.channel for r in rows) == ["push", "sms"]
    assert len(providers.fcm.received) == 1
    assert len(providers.sms.received) == 1


def test_the_beat_sweep_retries_until_the_provider_is_back(app, providers, celery_worker,
                                                           worker_log):
    person = make_person(app, email=None)
    providers.sms.fail_next = [503, 503]
    notify(app, subject=person.id, trigger="break-glass")  # SMS only

    (row,) = _wait_for(app, lambda rows: rows and rows[0].status == "sent",
                       worker=celery_worker, log=worker_log)

    assert row.attempts == 3
    assert len(providers.sms.received) == 3
    assert len(providers.sms.delivered) == 1


def test_a_reminder_run_fans_out_to_the_workers(app, celery_worker, worker_log):
    import json

    # With the contact phone a station registers: a child with no guardian, no account and no
    # phone has nobody to remind (issue 15).
    children = [make_person(app, date_of_birth=dt.date(2025, 1, 17), email=None)
                for _ in range(3)]
    result = app.test_cli_runner().invoke(
        args=["notifications", "run-reminders", "--today", "2025-03-10", "--fan-out", "4"])
    assert result.exit_code == 0, (result.output, repr(result.exception))
    assert json.loads(result.output) == {"today": "2025-03-10", "published_shards": 4}

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with app.app_context():
            from sqlalchemy import func, select

            from core.db import db
            from notifications.models import Notification

            count = db.session.scalar(select(func.count()).select_from(Notification))
        if count == 2 * len(children):  # BCG overdue and the two-month doses, each child
            break
        assert celery_worker.poll() is None, worker_log.read_text(errors="replace")
        time.sleep(0.2)
    assert count == 2 * len(children), worker_log.read_text(errors="replace")[-4000:]
