"""The in-process worker (NOTIFICATIONS_WORKER=thread) and the CLI around the outbox."""

from __future__ import annotations

import json
import threading
import time

import pytest

from notifications import shutdown
from tests.notifications.conftest import fcm_token, make_person
from tests.notifications.helpers import add_device, deliveries, notify


@pytest.fixture
def config_overrides():
    return {"NOTIFICATIONS_WORKER": "thread", "NOTIFICATIONS_POLL_SECONDS": "30"}


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "phr-notifications-worker"]


def _wait_until_sent(app, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = deliveries(app)
        if rows and {r.status for r in rows} == {"sent"}:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"not delivered: {[(r.channel, r.status) for r in deliveries(app)]}")


def test_the_first_request_starts_the_worker_and_a_commit_wakes_it(app, providers):
    assert _worker_threads() == []  # creating the app (CLI, tests) starts nothing
    app.test_client().get("/healthz")
    (thread,) = _worker_threads()
    app.test_client().get("/healthz")
    assert _worker_threads() == [thread]  # once per app

    person = make_person(app, email=None)
    add_device(app, person.id, platform="fcm", token=fcm_token())
    started = time.monotonic()
    notify(app, subject=person.id, trigger="break-glass")
    rows = _wait_until_sent(app)
    # Woken by the commit, not by its 30-second poll.
    assert time.monotonic() - started < 10
    assert sorted(r.channel for r in rows) == ["push", "sms"]

    shutdown(app)
    assert not thread.is_alive()
    assert _worker_threads() == []


def test_process_and_stats_commands(app, providers):
    person = make_person(app, email=None)
    notify(app, subject=person.id, trigger="break-glass")
    providers.sms.down = True
    runner = app.test_cli_runner()

    first = json.loads(runner.invoke(args=["notifications", "process"]).output)
    assert (first["claimed"], first["retried"]) == (1, 1)
    providers.sms.down = False
    waiting = json.loads(runner.invoke(args=["notifications", "process", "--until-idle"]).output)
    assert waiting["claimed"] == 0  # the retry is not due yet
    now = json.loads(runner.invoke(
        args=["notifications", "process", "--until-idle", "--retry-now"]).output)
    assert (now["made_due"], now["sent"]) == (1, 1)
    stats = json.loads(runner.invoke(args=["notifications", "stats"]).output)
    assert stats == {"deliveries": {"sms": {"sent": 1}}}


def test_the_worker_command_delivers_and_stops_on_sigterm(app, providers, database_url,
                                                          vapid_key_file, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.notifications.conftest import channel_config

    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    env.update({k: str(v) for k, v in channel_config(providers, vapid_key_file).items()})
    env["NOTIFICATIONS_POLL_SECONDS"] = "0.2"
    output = tmp_path / "worker.out"
    with output.open("wb") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "notifications", "worker"],
            cwd=Path(__file__).resolve().parents[2], env=env, stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            person = make_person(app, email=None)
            notify(app, subject=person.id, trigger="break-glass")
            _wait_until_sent(app, timeout=30)
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(20)
    assert code == 0, output.read_text()
    lines = [json.loads(line) for line in output.read_text().splitlines() if line.startswith("{")]
    assert {"worker": "stopped"} in lines
