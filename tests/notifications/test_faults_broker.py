"""Faults between the service and its broker (issue 19): Redis or RabbitMQ goes away while the
API writes records that notify people, with a real Celery worker delivering.

A TCP proxy (tests/support/tcp_proxy.py) sits between the broker and everything that talks to
it: the app that publishes on commit, the worker process and its embedded beat. The proxy then
kills the broker (every connection reset, new ones refused) or silences it (connections held,
nothing moves). Meanwhile a station's system records doses over the API: every request must
succeed, promptly, and its notification must wait in the outbox; when the broker is back the
worker delivers each notification once, counted at the fake FCM server (every request it got,
not only distinct messages).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.ehr.samples import SAMPLES
from tests.notifications.conftest import channel_config, fcm_token, make_person
from tests.notifications.helpers import add_device, deliveries
from tests.notifications.test_celery import BROKERS, _delete_queue, _listening
from tests.support.auth import make_facility, station_client, station_token
from tests.support.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
STATION_SCOPES = "system/Patient.crs system/Immunization.crus"
WRITES = 12  # records written (and notifications created) while the broker is away
OUTAGE_SECONDS = 2.0
# A request must not wait on the broker at all; this bound only catches a hang (the old
# synchronous publish waited a connect timeout per attempt on a silent broker).
REQUEST_BOUND_SECONDS = 2.0


@pytest.fixture(scope="module", params=sorted(BROKERS))
def broker(request) -> tuple[str, str, int]:
    host, port, url = BROKERS[request.param]
    if not _listening(host, port):
        pytest.skip(f"{request.param} is not reachable on {host}:{port}")
    return url, host, port


@pytest.fixture(scope="module")
def proxy(broker) -> Iterator[TcpProxy]:
    _, host, port = broker
    with TcpProxy(host, port) as started:
        yield started


@pytest.fixture(scope="module")
def broker_url(broker, proxy) -> str:
    return proxy.url_for(broker[0])


@pytest.fixture(scope="module")
def queue(broker) -> str:
    return f"phr-fault-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def config_overrides(broker_url: str, queue: str) -> dict[str, Any]:
    return {"NOTIFICATIONS_WORKER": "celery", "CELERY_BROKER_URL": broker_url,
            "NOTIFICATIONS_CELERY_QUEUE": queue, "NOTIFICATIONS_POLL_SECONDS": "1"}


@pytest.fixture(scope="module")
def worker(providers, database_url, vapid_key_file, broker, broker_url, queue,
           tmp_path_factory) -> Iterator[tuple[subprocess.Popen, Path]]:
    """A `flask notifications worker` process (Celery, embedded beat) reaching the broker
    through the proxy only."""
    log_path = tmp_path_factory.mktemp(queue) / "worker.log"
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    env.update({k: str(v) for k, v in channel_config(providers, vapid_key_file).items()})
    env.update({
        "NOTIFICATIONS_WORKER": "celery", "CELERY_BROKER_URL": broker_url,
        "NOTIFICATIONS_CELERY_QUEUE": queue, "NOTIFICATIONS_POLL_SECONDS": "1",
    })
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "notifications", "worker",
         "--pool", "solo", "--concurrency", "1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield process, log_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
        _delete_queue(broker[0], queue)  # straight to the broker, not through the proxy


def _wait_for_all_sent(app, expected: int, worker, *, timeout: float = 90) -> float:
    process, log_path = worker
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        rows = deliveries(app)
        if len(rows) == expected and {r.status for r in rows} == {"sent"}:
            return time.monotonic() - started
        assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]
        time.sleep(0.2)
    states = sorted((r.status, r.attempts) for r in deliveries(app))
    raise AssertionError(f"not all delivered: {states}\n"
                         f"{log_path.read_text(errors='replace')[-4000:]}")


class Station:
    """A commune station's system recording doses over the API, and the people it vaccinates
    (each with the super-app on a phone)."""

    def __init__(self, app, client) -> None:
        self.app, self.client = app, client
        facility = make_facility(app)
        oauth_client, _ = station_client(app, facility=facility, scopes=STATION_SCOPES)
        self.headers = station_token(client, app, oauth_client=oauth_client).headers

    def person(self) -> uuid.UUID:
        person = make_person(self.app, email=None)
        add_device(self.app, person.id, platform="fcm", token=fcm_token())
        return person.id

    def record_dose(self, citizen: uuid.UUID) -> tuple[int, float]:
        started = time.monotonic()
        response = self.client.post(f"/api/v1/citizens/{citizen}/immunizations",
                                    json=SAMPLES["immunizations"][0], headers=self.headers)
        return response.status_code, time.monotonic() - started


def _notifications(app) -> int:
    from core.db import db
    from notifications.models import Notification

    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Notification)))


def _outage(app, client, providers, proxy: TcpProxy, worker, *, fault: str) -> dict[str, Any]:
    station = Station(app, client)
    # The path works through the proxy before the fault.
    status, _ = station.record_dose(station.person())
    assert status == 201
    _wait_for_all_sent(app, 1, worker)
    assert len(providers.fcm.received) == 1
    people = [station.person() for _ in range(WRITES)]

    if fault == "down":  # the broker process died: resets, then nothing listens
        proxy.cut()
        proxy.refuse()
    else:  # a partition: connections stay open, no byte moves
        proxy.blackhole()
    outage_started = time.monotonic()
    answers = [station.record_dose(person) for person in people]
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_started)))

    statuses = [status for status, _ in answers]
    slowest = max(seconds for _, seconds in answers)
    assert statuses == [201] * WRITES
    assert slowest < REQUEST_BOUND_SECONDS, slowest
    # Each write committed its notification and outbox row with it. They wait for the broker
    # (a sweep the worker had begun before the fault may still deliver a few: it reads the
    # database, not the broker).
    assert _notifications(app) == 1 + WRITES
    rows = deliveries(app)
    assert len(rows) == 1 + WRITES
    assert {r.status for r in rows} <= {"pending", "sent"}
    waiting = sum(1 for r in rows if r.status == "pending")

    if fault == "silent-then-reset":  # what was held (published ids too) is thrown away
        proxy.cut()
    proxy.restore()
    recovery = _wait_for_all_sent(app, 1 + WRITES, worker)

    # Each notification reached its phone once: no request lost, none sent twice.
    assert len(providers.fcm.delivered) == 1 + WRITES
    assert len(providers.fcm.received) == 1 + WRITES
    tokens = [r.json()["message"]["token"] for r in providers.fcm.received]
    assert len(set(tokens)) == 1 + WRITES
    figures = {"fault": fault, "requests": WRITES, "failed": WRITES - statuses.count(201),
               "slowest_request_s": round(slowest, 3), "waiting_at_restore": waiting,
               "delivered_after_restore_s": round(recovery, 1),
               "lost": 1 + WRITES - len(providers.fcm.delivered),
               "duplicated": len(providers.fcm.received) - len(providers.fcm.delivered)}
    print(f"\nbroker fault figures: {figures}")
    return figures


def test_broker_down_requests_succeed_and_each_notification_is_delivered_once_later(
    app, client, providers, proxy, worker
):
    _outage(app, client, providers, proxy, worker, fault="down")


def test_broker_silent_requests_do_not_wait_and_each_notification_is_delivered_once_later(
    app, client, providers, proxy, worker
):
    _outage(app, client, providers, proxy, worker, fault="silent")


@pytest.mark.long
def test_a_partition_that_ends_in_resets_loses_the_published_ids_but_no_notification(
    app, client, providers, proxy, worker
):
    """Ids published into the silent connection die with it: the sweep delivers them."""
    _outage(app, client, providers, proxy, worker, fault="silent-then-reset")
