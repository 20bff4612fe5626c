"""SIGTERM to a real gunicorn (the project's gunicorn.conf.py) in the middle of a steady stream
of creates and reads: the requests it was serving finish, every answer is whole, nothing is
half-written, and the master exits cleanly within graceful_timeout.

Four client threads send immunization creates (each with its own Idempotency-Key) and list
reads, a new connection per request, while the master gets SIGTERM. On PostgreSQL the server
reaches the database through the test's TCP proxy with a little latency on every round trip,
so that requests are certainly in flight when the signal comes (a create then takes about half
a second). Afterwards, from the database: every key answered 201 has exactly one entry, with
its idempotency record and its audit event; a key that got no answer (its connection was
refused or reset before a worker took it) has none; the audit chains verify.

Figures are printed (run with -s) for README's "Reliability" table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text

from core.db import db
from registry.services import assign_family_doctor
from tests.ehr.samples import SAMPLES
from tests.support.auth import Tokens, make_citizen, make_facility, make_practitioner, token_for
from tests.support.crash_server import ROOT, free_port
from tests.support.tcp_proxy import TcpProxy

CLIENTS = 4
LATENCY = 0.02  # seconds added each way to every database round trip (PostgreSQL only)


@dataclass
class Outcome:
    kind: str  # create | read
    key: str
    sent: float
    done: float
    status: int | None = None  # None: no answer
    entry_id: str | None = None
    error: str = ""


@contextlib.contextmanager
def _database_for_server(database_url: str) -> Iterator[tuple[str, TcpProxy | None]]:
    if not database_url.startswith(("postgresql", "postgres:")):
        yield database_url, None
        return
    parts = urlsplit(database_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        yield proxy.url_for(database_url), proxy


def _start(database_url: str, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    import requests

    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "WEB_CONCURRENCY": "2",
           "WEB_THREADS": "4", "LOG_LEVEL": "WARNING"}
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and config
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}", "--no-control-socket", "app:create_app()"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    ready = 0
    while ready < 4:  # both workers up: a few answers in a row
        if process.poll() is not None:
            raise AssertionError(log_path.read_text(errors="replace"))
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("not ready:\n" + log_path.read_text(errors="replace"))
        try:
            ok = requests.get(url + "/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            ok = False
        ready = ready + 1 if ok else 0
        time.sleep(0.05)
    return process, url


def _client(url: str, world: dict[str, Any], index: int, stop: threading.Event,
            outcomes: list[Outcome], lock: threading.Lock) -> None:
    import requests

    headers = {**world["doctor"].headers, "Connection": "close"}
    patient = world["patients"][index % len(world["patients"])]
    path = f"{url}/api/v1/citizens/{patient}/immunizations"
    n = 0
    while not stop.is_set():
        n += 1
        kind = "create" if n % 2 else "read"
        key = f"sigterm-{index}-{n:05d}"
        outcome = Outcome(kind=kind, key=key, sent=time.monotonic(), done=0.0)
        try:
            if kind == "create":
                response = requests.post(path, json=SAMPLES["immunizations"][0], timeout=60,
                                         headers={**headers, "Idempotency-Key": key})
            else:
                response = requests.get(path, headers=headers, timeout=60)
            outcome.status = response.status_code
            body = response.json()  # a whole JSON body, or this raises
            if kind == "create" and response.status_code == 201:
                outcome.entry_id = body["id"]
            if kind == "read" and response.status_code == 200:
                assert isinstance(body["items"], list)
        except requests.ConnectionError as exc:
            outcome.error = type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - a broken answer is a finding
            outcome.error = f"broken answer: {type(exc).__name__}"
        outcome.done = time.monotonic()
        with lock:
            outcomes.append(outcome)
        if outcome.status is None:
            time.sleep(0.05)  # refused: the server is going away; try until told to stop


def test_sigterm_under_load_finishes_what_it_took_and_writes_nothing_half(
        app: Any, database_url: str, tmp_path: Path) -> None:
    station = make_facility(app)
    doctor = make_practitioner(app, facility=station, full_name="Nguyễn Thị Hương")
    patients = [make_citizen(app, full_name=f"Bệnh Nhân {n}",
                             date_of_birth=dt.date(1960 + n, 3, 14)) for n in range(2)]
    with app.app_context():
        for patient in patients:
            assign_family_doctor(session=db.session, citizen_id=patient,
                                 practitioner_id=doctor, facility_id=station, changed_by="test")
        db.session.commit()
    token: Tokens = token_for(app.test_client(), app, role="practitioner", practitioner=doctor)
    world = {"doctor": token, "patients": patients}

    log_path = tmp_path / "gunicorn.log"
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    stop = threading.Event()
    with _database_for_server(database_url) as (server_db, proxy):
        process, url = _start(server_db, log_path)
        try:
            if proxy is not None:
                proxy.delay(LATENCY)
            threads = [threading.Thread(target=_client, args=(url, world, n, stop, outcomes, lock))
                       for n in range(CLIENTS)]
            for thread in threads:
                thread.start()
            load_until = time.monotonic() + 30
            while time.monotonic() < load_until:
                with lock:
                    answered = sum(1 for o in outcomes if o.status is not None)
                if answered >= 16:
                    break
                time.sleep(0.05)
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
            exited = time.monotonic()
            time.sleep(0.2)  # a last refused attempt or two
            stop.set()
            for thread in threads:
                thread.join(timeout=90)
        finally:
            stop.set()
            if process.poll() is None:
                process.kill()
                process.wait(10)

    log = log_path.read_text(errors="replace")
    answered = [o for o in outcomes if o.status is not None]
    unanswered = [o for o in outcomes if o.status is None]
    in_flight = [o for o in answered if o.sent < signalled < o.done]
    broken = [o for o in outcomes if o.error.startswith("broken")]
    failed = [o for o in answered if o.status not in (200, 201)]
    print(f"\nSIGTERM under load: {len(outcomes)} requests, {len(answered)} answered "
          f"({len(in_flight)} in flight at the signal, all finished), {len(unanswered)} refused "
          f"after it, {len(failed)} failed, {len(broken)} broken; master exited "
          f"{exited - signalled:.2f} s after the signal with {code}")
    assert code == 0, log[-3000:]
    assert not broken, broken[:5]
    assert not failed, [(o.kind, o.status) for o in failed[:5]]
    assert len(answered) >= 16
    if proxy is not None:
        assert in_flight, "no request was in flight at the signal"
    # Nothing is refused before the signal; after it, only connections no worker took.
    assert all(o.sent >= signalled - 0.5 for o in unanswered), unanswered[:5]

    created = {o.key: o.entry_id for o in answered if o.kind == "create"}
    without_answer = {o.key for o in unanswered if o.kind == "create"}
    with app.app_context():
        entries = db.session.execute(text(
            "SELECT id FROM record_entries WHERE section = 'immunizations'")).scalars().all()
        records = db.session.execute(text(
            "SELECT resource_id FROM idempotency_records")).scalars().all()
        audits = db.session.execute(text(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'create' "
            "AND section = 'immunizations' AND decision = 'permit'")).scalar_one()
        from consent.audit import verify_chains

        chains = verify_chains(db.session)
    stored = sorted(_canonical(entry) for entry in entries)
    # Every 201 is stored once; nothing else is stored (a create without an answer wrote
    # nothing); each entry has its one idempotency record and its one audit event.
    assert stored == sorted(_canonical(entry_id) for entry_id in created.values()), (
        len(stored), len(created), len(without_answer))
    assert sorted(_canonical(record) for record in records) == stored
    assert audits == len(stored)
    assert chains.ok, chains.as_dict()
    print(f"SIGTERM under load: {len(created)} entries created, {len(stored)} stored, "
          f"0 lost, 0 duplicated")


def _canonical(value: Any) -> str:
    return str(uuid.UUID(str(value)))
