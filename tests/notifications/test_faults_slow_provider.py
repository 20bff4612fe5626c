"""A provider that answers in 30 s (issue 19): other deliveries do not wait on it.

Two cases: the SMS gateway hangs (push must not wait), and one browser push service hangs
(browsers subscribed at another push service must not wait).

The SMS gateway takes each message at once and answers 30 s later; the delivery client's HTTP
timeout is 2 s here (NOTIFICATIONS_HTTP_TIMEOUT_SECONDS, 10 in production) and a batch sends on
three threads (NOTIFICATIONS_SEND_CONCURRENCY), so a gateway allowed to hang every thread would
hold the push messages behind it for several timeouts. Real HTTP to local fakes, a real
database, the delivery engine as the workers run it.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.notifications.conftest import (
    BrowserSubscription,
    fcm_token,
    make_person,
)
from tests.notifications.fakes import FakeFcm, FakePushService, FakeSmtp, Providers
from tests.notifications.helpers import add_device, deliveries, notify, process
from tests.notifications.slow_fakes import SlowPushService, SlowSmsGateway

TIMEOUT = 2.0
PEOPLE = 6


@pytest.fixture(scope="module")
def providers() -> Iterator[Providers]:
    started = Providers(fcm=FakeFcm().start(), sms=SlowSmsGateway().start(),
                        push=FakePushService().start(), smtp=FakeSmtp().start())
    yield started
    started.sms.release()
    started.stop()


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"NOTIFICATIONS_HTTP_TIMEOUT_SECONDS": str(TIMEOUT),
            "NOTIFICATIONS_SEND_CONCURRENCY": "3"}


def _vaccination_reminders(app, count: int) -> None:
    """People with a phone and the super-app, each reminded of a dose: push and SMS."""
    for index in range(count):
        person = make_person(app, full_name=f"Người Thử {index}", email=None)
        add_device(app, person.id, platform="fcm", token=fcm_token())
        notify(app, subject=person.id, trigger="vaccination-due",
               params={"doses": ["measles-1"], "due_date": "2025-03-12"})


def _one_batch(app, providers) -> tuple[Any, float, list[float], float]:
    """One delivery pass; when each push reached FCM, relative to the start of the pass."""
    arrivals: list[float] = []
    providers.fcm.on_receive = lambda _request: arrivals.append(time.monotonic())
    started = time.monotonic()
    result = process(app, until_idle=False)
    ended = time.monotonic()
    providers.fcm.on_receive = None
    return result, started, [t - started for t in arrivals], ended - started


def test_a_gateway_that_answers_in_30_s_holds_up_no_push_and_loses_or_doubles_no_sms(
    app, providers, clock
):
    sms: SlowSmsGateway = providers.sms  # type: ignore[assignment]
    # Baseline: the gateway answers at once.
    _vaccination_reminders(app, PEOPLE)
    fast, _, fast_pushes, fast_batch = _one_batch(app, providers)
    assert (fast.sent, fast.retried) == (2 * PEOPLE, 0)

    # The gateway now takes each message and answers 30 s later.
    sms.slow = True
    _vaccination_reminders(app, PEOPLE)
    slow, started, slow_pushes, slow_batch = _one_batch(app, providers)

    assert len(slow_pushes) == PEOPLE
    held = [t - started for t in sms.arrivals[PEOPLE:]]
    # Every push reached FCM before the first SMS attempt could even have timed out.
    assert max(slow_pushes) < min(held) + TIMEOUT, (slow_pushes, held)
    # Two SMS were tried at once (two of the three threads: one is kept for FCM) and timed
    # out; the other four were not tried one timeout after another but given back.
    assert len(held) == 2
    assert (slow.sent, slow.retried, slow.deferred) == (PEOPLE, 2, PEOPLE - 2)
    waiting = [r for r in deliveries(app) if r.channel == "sms" and r.status == "pending"]
    assert len(waiting) == PEOPLE
    assert sorted(r.attempts for r in waiting) == [0] * (PEOPLE - 2) + [1, 1]
    assert {r.last_error for r in waiting if r.attempts} == {"timeout"}
    assert all(r.next_attempt_at > clock.now for r in waiting)  # nothing hammers the gateway
    assert len(sms.delivered) == PEOPLE + 2  # the gateway took the two it never answered

    # A reminder written now: the next batch leaves the gateway alone for a while (its SMS
    # waits, not tried) instead of waiting out another timeout before recording the push.
    _vaccination_reminders(app, 1)
    later, _, later_pushes, later_batch = _one_batch(app, providers)
    assert (later.sent, later.deferred) == (1, 1)
    assert len(later_pushes) == 1
    assert len(sms.arrivals) == PEOPLE + 2  # the gateway was not asked

    # The gateway recovers; the retries (after their backoff) go out with the same
    # Idempotency-Key, so the two it had taken are not sent to the phones twice.
    sms.release()
    clock.advance(seconds=700)  # past the longest backoff of the test config
    after = process(app)
    total = 2 * PEOPLE + 1
    assert after.sent == PEOPLE + 1
    assert {r.status for r in deliveries(app)} == {"sent"}
    assert len(sms.delivered) == total  # one per notification: none lost, none doubled
    assert len(sms.received) == total + 2  # the two retries, collapsed by their key
    assert len(providers.fcm.delivered) == len(providers.fcm.received) == total

    figures = {
        "people": PEOPLE, "http_timeout_s": TIMEOUT, "provider_answers_after_s": 30,
        "push_all_delivered_fast_gateway_s": round(max(fast_pushes), 3),
        "push_all_delivered_slow_gateway_s": round(max(slow_pushes), 3),
        "batch_fast_s": round(fast_batch, 2), "batch_slow_s": round(slow_batch, 2),
        "next_batch_while_gateway_hangs_s": round(later_batch, 3),
        "sms_lost": total - len(sms.delivered),
        "sms_retried_after_timeout_same_key": len(sms.received) - len(sms.delivered),
    }
    print(f"\nslow provider figures: {figures}")


@pytest.fixture(scope="module")
def slow_push_service() -> Iterator[SlowPushService]:
    service = SlowPushService().start()
    yield service
    service.release()
    service.stop()


def _browser_at(service: FakePushService) -> BrowserSubscription:
    """A browser subscribed at `service` (its own keys, as a real browser makes them)."""
    name = secrets.token_hex(8)
    return BrowserSubscription(name=name, endpoint=f"{service.url}/push/{name}",
                               private_key=ec.generate_private_key(ec.SECP256R1()),
                               auth_secret=os.urandom(16))


def test_one_slow_push_service_holds_up_no_browser_subscribed_elsewhere(
    app, providers, slow_push_service, clock
):
    """Two people's browsers are subscribed at a push service that hangs, four at one that
    answers: the four are not held up, the two are retried once with the same Topic."""
    slow_push_service.slow = True
    slow_people, fast_people = [], []
    for index in range(6):
        person = make_person(app, full_name=f"Người Thử {index}", phone=None, email=None)
        service = slow_push_service if index < 2 else providers.push
        add_device(app, person.id, platform="webpush", token=_browser_at(service).token())
        notify(app, subject=person.id)  # entry-created: push only
        (slow_people if index < 2 else fast_people).append(person)

    arrivals: list[float] = []
    providers.push.on_receive = lambda _request: arrivals.append(time.monotonic())
    started = time.monotonic()
    result = process(app, until_idle=False)
    batch = time.monotonic() - started
    providers.push.on_receive = None

    assert len(arrivals) == len(fast_people)
    held = slow_push_service.arrivals
    assert len(held) == 2  # two threads of three (one is kept for the other service)
    # Every browser at the answering service had its message before the first send to the
    # hanging one could even time out.
    assert max(arrivals) < min(held) + TIMEOUT, (arrivals, held)
    assert (result.sent, result.retried) == (4, 2)
    waiting = [r for r in deliveries(app) if r.status == "pending"]
    assert sorted((r.attempts, r.last_error) for r in waiting) == [(1, "timeout")] * 2

    slow_push_service.release()
    clock.advance(seconds=700)
    assert process(app).sent == 2
    assert {r.status for r in deliveries(app)} == {"sent"}
    # The service had taken both before it stopped answering: the retries, with the same
    # Topic, replaced them instead of adding a second copy.
    assert len(slow_push_service.received) == 4
    assert len(slow_push_service.delivered) == 2
    assert len(providers.push.delivered) == len(providers.push.received) == 4
    print(f"\nslow push service figures: {{'fast_browsers_all_delivered_s': "
          f"{round(max(arrivals) - started, 3)}, 'batch_s': {round(batch, 2)}}}")
