"""Delivery guarantees: retries with backoff, exactly one copy, dead letters, dead devices."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from sqlalchemy import func, select

from core.db import db
from notifications.delivery import claim_due
from notifications.models import Device
from tests.notifications.conftest import (
    browser_subscription,
    channel_config,
    fcm_token,
    make_person,
)
from tests.notifications.helpers import add_device, deliveries, notify, process

ROOT = Path(__file__).resolve().parents[2]


def _people_with_push_and_sms(app, count: int) -> list:
    people = []
    for index in range(count):
        person = make_person(app, full_name=f"Người Thử {index}", email=None)
        add_device(app, person.id, platform="fcm", token=fcm_token())
        notify(app, subject=person.id, trigger="vaccination-due",
               params={"doses": ["measles-1"], "due_date": "2025-03-12"})
        people.append(person)
    return people


def _seconds_until_due(rows, now: dt.datetime) -> list[float]:
    return sorted((row.next_attempt_at - now).total_seconds() for row in rows)


def test_provider_down_retries_with_backoff_then_sends_each_exactly_once(app, providers, clock):
    _people_with_push_and_sms(app, 3)
    providers.fcm.down = True
    providers.sms.down = True

    first = process(app)
    assert (first.claimed, first.retried, first.sent) == (6, 6, 0)
    waits = _seconds_until_due(deliveries(app), clock.now)
    assert all(5 <= wait <= 10 for wait in waits)  # base 10 s, half of it jittered
    assert process(app).claimed == 0  # nothing is due before its backoff ends

    clock.advance(seconds=11)
    assert process(app).retried == 6
    waits = _seconds_until_due(deliveries(app), clock.now)
    assert all(10 <= wait <= 20 for wait in waits)  # doubled
    assert {row.attempts for row in deliveries(app)} == {2}
    assert {row.last_error for row in deliveries(app)} == {"http-503"}

    providers.fcm.down = False
    providers.sms.down = False
    clock.advance(seconds=21)
    assert process(app).sent == 6
    assert process(app).claimed == 0

    rows = deliveries(app)
    assert {row.status for row in rows} == {"sent"}  # nothing lost
    assert len(providers.fcm.delivered) == 3
    assert len(providers.sms.delivered) == 3
    assert len(providers.fcm.received) == 9  # two refused attempts and one accepted, each


def test_retry_after_is_honoured(app, providers, clock):
    person = make_person(app, phone=None, email=None)
    add_device(app, person.id, platform="fcm", token=fcm_token())
    notify(app, subject=person.id)
    providers.fcm.fail_next = [429]
    providers.fcm.retry_after = "120"

    assert process(app).retried == 1
    (row,) = deliveries(app)
    assert (row.next_attempt_at - clock.now).total_seconds() >= 120
    assert row.last_error == "http-429"


def test_dead_letter_after_max_attempts(app, providers, clock):
    person = make_person(app, email=None)
    notify(app, subject=person.id, trigger="break-glass")  # SMS only (no device, no e-mail)
    providers.sms.down = True
    for _ in range(5):  # NOTIFICATIONS_MAX_ATTEMPTS in the test config
        process(app)
        clock.advance(seconds=700)
    (row,) = deliveries(app)
    assert (row.status, row.attempts, row.last_error) == ("dead", 5, "http-503")
    providers.sms.down = False
    assert process(app).claimed == 0  # a dead letter is not retried by itself
    assert providers.sms.delivered == {}

    runner = app.test_cli_runner()
    result = runner.invoke(args=["notifications", "process", "--requeue-dead", "--until-idle"])
    assert result.exit_code == 0, result.output
    assert '"requeued": 1' in result.output
    assert '"sent": 1' in result.output
    assert len(providers.sms.delivered) == 1


def test_a_permanent_refusal_is_dead_at_once(app, providers):
    person = make_person(app, email=None)
    notify(app, subject=person.id, trigger="break-glass")
    providers.sms.fail_next = [400]
    assert process(app).dead == 1
    (row,) = deliveries(app)
    assert (row.status, row.attempts, row.last_error) == ("dead", 1, "http-400")


def _devices(app) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Device)))


def test_unregistered_fcm_token_removes_the_device(app, providers):
    person = make_person(app, phone=None, email=None)
    dead_token, live_token = fcm_token(), fcm_token()
    add_device(app, person.id, platform="fcm", token=dead_token)
    add_device(app, person.id, platform="fcm", token=live_token)
    providers.fcm.unregistered.add(dead_token)
    notify(app, subject=person.id)
    notify(app, subject=person.id)

    result = process(app)

    # The first message to the dead token learns it is gone; its twin is not even tried.
    assert (result.sent, result.cancelled) == (2, 2)
    assert _devices(app) == 1
    rows = deliveries(app)
    assert sorted(row.status for row in rows) == ["cancelled", "cancelled", "sent", "sent"]
    assert {row.last_error for row in rows if row.status == "cancelled"} == {
        "unregistered", "device-removed"}
    to_dead = [r for r in providers.fcm.received if r.json()["message"]["token"] == dead_token]
    assert len(to_dead) == 1
    notify(app, subject=person.id)  # later notifications go to the live device only
    assert len(deliveries(app)) == 5
    assert process(app).sent == 1


def test_invalid_fcm_token_removes_the_device(app, providers):
    person = make_person(app, phone=None, email=None)
    token = fcm_token()
    add_device(app, person.id, platform="fcm", token=token)
    providers.fcm.invalid.add(token)
    notify(app, subject=person.id)
    assert process(app).cancelled == 1
    assert _devices(app) == 0
    assert deliveries(app)[0].last_error == "invalid-token"


def test_expired_web_push_subscription_removes_the_device(app, providers):
    person = make_person(app, phone=None, email=None)
    browser = browser_subscription(providers)
    add_device(app, person.id, platform="webpush", token=browser.token())
    providers.push.gone.add(browser.name)
    notify(app, subject=person.id)
    assert process(app).cancelled == 1
    assert _devices(app) == 0
    assert deliveries(app)[0].last_error == "http-410"


def test_concurrent_claimers_never_take_the_same_row(app):
    person = make_person(app, email=None)
    for _ in range(12):
        notify(app, subject=person.id, trigger="break-glass")  # SMS each
    state = app.extensions["phr.notifications"]
    now = state.settings.clock()
    taken: list[list[uuid.UUID]] = []
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            with app.app_context():
                barrier.wait()
                claims = claim_due(db.session, limit=5, now=now, lease_seconds=60)
                taken.append([c.delivery_id for c in claims])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    every = [row_id for claims in taken for row_id in claims]
    assert len(every) == len(set(every)) == 12


def test_a_crash_between_sending_and_recording_sends_no_second_copy(
    app, providers, database_url, vapid_key_file, clock
):
    """A worker process is killed (SIGKILL) while the provider accepts its message: the row
    stays leased, is claimed again when the lease ends, and the retry carries the same key, so
    the provider keeps one copy."""
    person = make_person(app, phone=None, email=None)
    add_device(app, person.id, platform="fcm", token=fcm_token())
    notify(app, subject=person.id)
    worker: dict[str, subprocess.Popen] = {}

    def crash_the_worker(_request) -> None:
        process_ = worker["process"]
        process_.send_signal(signal.SIGKILL)
        process_.wait(30)

    providers.fcm.on_receive = crash_the_worker
    env = {**os.environ, "DATABASE_URL": database_url, "NOTIFICATIONS_LEASE_SECONDS": "60",
           "LOG_LEVEL": "WARNING"}
    env.update({k: str(v) for k, v in channel_config(providers, vapid_key_file).items()})
    worker["process"] = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "notifications", "process"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    assert worker["process"].wait(60) == -signal.SIGKILL
    providers.fcm.on_receive = None

    (row,) = deliveries(app)
    assert (row.status, row.attempts) == ("pending", 1)  # sent, but never recorded
    assert len(providers.fcm.delivered) == 1
    assert process(app).claimed == 0  # the dead worker's lease still holds

    clock.now = row.lease_until + dt.timedelta(seconds=1)
    assert process(app).sent == 1

    (row,) = deliveries(app)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(providers.fcm.received) == 2
    assert len(providers.fcm.delivered) == 1  # the same collapse key: one copy on the phone
