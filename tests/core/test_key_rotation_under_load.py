"""Key operations under load (issue 19): `vault rotate-kek --retire-old` and `vault
rotate-data-keys`, run as an operator runs them, while two warm gunicorn workers serve reads and
writes with real tokens.

What could break: a worker holding the old KEK (the key file provider re-reads the file on
change), a request that unwrapped a data key just before it was rewrapped or re-encrypted
away from, a create wrapped or encrypted under a key that is being retired, a stored
idempotent answer re-encrypted under a worker's feet. The test asserts every answer was 2xx,
that every entry created reads back with its values from each worker after the rotation, that
no live data key is left under a retired KEK, and that `vault verify` is clean.

On PostgreSQL and on SQLite: SQLite has one writer, but pysqlite opens a transaction at its
first write (reads before it run outside), so a request's write waits for a rotation batch's
commit (busy_timeout, 30 s) instead of failing on a lock upgrade. Marked `long` (under a
minute on SQLite, about 80 s on PostgreSQL on a busy 2-core machine: two CLI processes, the
KEK grace period, the read-back from each worker).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import db
from core.encryption import DataKey
from ehr.record_models import RecordEntry
from registry.reference.health_id import make_health_id
from tests.ehr.samples import SAMPLES, TODAY
from tests.support.auth import STATION_SCOPES, Tokens, station_client, station_token
from tests.support.crash_server import ROOT, free_port
from tests.support.practice import Practice, small_practice
from tests.support.worker_server import WORKER_HEADER

pytestmark = pytest.mark.long

WORKERS = 2
CLIENT_THREADS = 4
PEOPLE = 4
SECTION = "allergies"


@contextlib.contextmanager
def serving(env: dict[str, str], log_path: Path, *, timeout: float = 90) -> Iterator[str]:
    """gunicorn (the project's gunicorn.conf.py) with WORKERS workers; yields the base URL."""
    import requests

    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}", "--no-control-socket",
             "tests.support.worker_server:create_app()"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"gunicorn exited with {process.returncode}:\n"
                                     + log_path.read_text(errors="replace"))
            with contextlib.suppress(requests.RequestException):
                if requests.get(url + "/readyz", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("gunicorn did not get ready:\n"
                                     + log_path.read_text(errors="replace"))
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)  # graceful: in-flight answers are finished
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def vault(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    """`flask --app app vault …` as the operator runs it: a process of its own."""
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "vault", *args],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                            check=False)
    lines = result.stdout.strip().splitlines()
    return result.returncode, json.loads(lines[-1]) if lines else {}, result.stderr


@dataclass
class Load:
    """What the client threads did: every answer, and the entries they created."""

    base: str
    practice: Practice
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (when it ended, what it was, status, worker pid)
    answers: list[tuple[float, str, int, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    created: dict[str, tuple[uuid.UUID, dict[str, Any]]] = field(default_factory=dict)
    station: Tokens | None = None
    registered: dict[str, tuple[str, str]] = field(default_factory=dict)  # id: health ID, name

    def call(self, what: str, method: str, path: str, *, expect: int,
             **kwargs: Any) -> dict[str, Any] | None:
        import requests

        # A new connection per request: the kernel hands each to either worker.
        try:
            response = requests.request(method, self.base + path, timeout=60,
                                        headers={"Connection": "close",
                                                 **kwargs.pop("headers")}, **kwargs)
        except requests.RequestException as exc:
            with self.lock:
                self.failures.append(f"{what}: {type(exc).__name__}")
            return None
        with self.lock:
            self.answers.append((time.monotonic(), what, response.status_code,
                                 response.headers.get(WORKER_HEADER, "?")))
            if response.status_code != expect:
                self.failures.append(f"{what}: {response.status_code} {response.text[:300]}")
                return None
        return response.json()

    def client(self, number: int) -> None:
        practice = self.practice
        count = 0
        while not self.stop.is_set():
            person = practice.people[(number + count) % len(practice.people)]
            body = {**SAMPLES[SECTION][0], "reaction": f"Nổi mề đay lần {number}-{count}"}
            key = f"rotation-{number}-{count}"
            path = f"/api/v1/citizens/{person}/{SECTION}"
            doctor = {**practice.doctor.headers, "Idempotency-Key": key}
            created = self.call("create", "POST", path, expect=201, json=body, headers=doctor)
            if created is not None:
                with self.lock:
                    self.created[created["id"]] = (person, body)
                read = self.call("read", "GET", f"{path}/{created['id']}", expect=200,
                                 headers=practice.tokens[person].headers)
                if read is not None and read["data"]["reaction"] != body["reaction"]:
                    self.failures.append(f"read {created['id']}: wrong value")
                if count % 3 == 0:  # the stored answer, decrypted again
                    replay = self.call("replay", "POST", path, expect=201, json=body,
                                       headers=doctor)
                    if replay is not None and replay["id"] != created["id"]:
                        self.failures.append(f"replay {key}: another entry")
            summary = self.call("summary", "GET", f"/api/v1/citizens/{person}/summary",
                                expect=200, headers=practice.tokens[person].headers)
            if summary is not None and summary["citizen"]["full_name"] != practice.names[person]:
                self.failures.append(f"summary of {person}: wrong name")
            count += 1

    def registrar(self) -> None:
        """The station registers newborns: each gets a data key wrapped under whichever KEK
        is active at that moment (the straggler `--retire-old` waits its grace period for)."""
        count = 0
        while not self.stop.is_set():
            birth = TODAY - dt.timedelta(days=1 + count % 20)
            health_id = make_health_id(province_code="027", date_of_birth=birth, sex="female",
                                       serial=100_000 + count)
            name = f"Bé gái Lê Ngọc {count}"
            body = {"health_id": health_id, "full_name": name, "date_of_birth": birth.isoformat(),
                    "sex": "female", "address": {"province_code": "27", "district_code": "260",
                                                 "commune_code": "09334", "line": "Thôn Đông"}}
            created = self.call("register", "POST", "/api/v1/citizens", expect=201, json=body,
                                headers=self.station.headers)
            if created is not None:
                with self.lock:
                    self.registered[created["id"]] = (health_id, name)
            count += 1


def until_every_worker_answered(seconds: float = 30.0) -> Iterator[int]:
    """Attempts, for up to `seconds`, until the caller has heard from every worker. Each
    request opens a connection, and the kernel hands it to whichever worker wakes first: often
    the one that has just answered (once, under CI's load, 60 lookups in a row). A short pause
    lets both wait again before the next one, and the bound is time, not a count."""
    deadline = time.monotonic() + seconds
    attempt = 0
    while time.monotonic() < deadline:
        yield attempt
        attempt += 1
        time.sleep(0.02)


def read_back_from_every_worker(base: str, practice: Practice,
                                created: dict[str, tuple[uuid.UUID, dict[str, Any]]]) -> set[str]:
    """List every person's entries until each worker has answered for each person; every
    created entry must be there with its values. Returns the workers seen."""
    import requests

    seen: set[str] = set()
    for person in practice.people:
        expected = {entry_id: body for entry_id, (owner, body) in created.items()
                    if owner == person}
        answered_by: set[str] = set()
        for _ in until_every_worker_answered():
            if len(answered_by) == WORKERS:
                break
            listed: dict[str, dict[str, Any]] = {}
            cursor = None
            while True:
                params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
                response = requests.get(f"{base}/api/v1/citizens/{person}/{SECTION}",
                                        params=params, timeout=60,
                                        headers={"Connection": "close",
                                                 **practice.tokens[person].headers})
                assert response.status_code == 200, response.text
                answered_by.add(response.headers[WORKER_HEADER])
                page = response.json()
                listed.update({item["id"]: item["data"] for item in page["items"]})
                cursor = page.get("next_cursor")
                if not cursor:
                    break
            assert set(expected) <= set(listed)
            for entry_id, body in expected.items():
                assert {k: listed[entry_id][k] for k in body} == body, entry_id
        assert len(answered_by) == WORKERS, f"only {answered_by} answered for {person}"
        seen |= answered_by
    return seen


def read_registered_from_every_worker(base: str, station: Tokens,
                                      registered: dict[str, tuple[str, str]]) -> None:
    """Each newborn registered during the rotation is found by health ID (blind index) and
    reads back with its name (decrypted) from each worker."""
    import requests

    for citizen_id, (health_id, name) in registered.items():
        answered_by: set[str] = set()
        for _ in until_every_worker_answered():
            response = requests.post(f"{base}/api/v1/citizens/lookup", timeout=60,
                                     json={"health_id": health_id},
                                     headers={"Connection": "close", **station.headers})
            assert response.status_code == 200, response.text
            assert (response.json()["id"], response.json()["full_name"]) == (citizen_id, name)
            answered_by.add(response.headers[WORKER_HEADER])
            if len(answered_by) == WORKERS:
                break
        assert len(answered_by) == WORKERS, f"only {answered_by} answered for {citizen_id}"


def test_rotations_under_load_fail_no_request_and_leave_everything_readable(
        app, client, database_url, tmp_path):
    practice = small_practice(app, client, people=PEOPLE)
    station = station_token(client, app, oauth_client=station_client(
        app, facility=practice.station, scopes=STATION_SCOPES)[0])
    # The service's key file, of this test's own (a copy of the run's: the people above have
    # data keys under its KEK); the rotation retires that KEK from the copy only.
    kek_file = tmp_path / "kek.json"
    shutil.copyfile(os.environ["VAULT_KEK_FILE"], kek_file)
    kek_file.chmod(0o600)
    old_kek = json.loads(kek_file.read_text())["active"]
    env = {**os.environ, "DATABASE_URL": database_url, "VAULT_KEK_FILE": str(kek_file),
           "WEB_CONCURRENCY": str(WORKERS), "WEB_THREADS": "4", "LOG_LEVEL": "WARNING",
           # Rate limits are not what is measured here (each worker counts in its memory).
           "RATELIMIT_PER_TOKEN": "100000/minute", "RATELIMIT_PER_ADDRESS": "100000/minute"}
    env.pop("VAULT_KEK_JSON", None)

    with serving(env, tmp_path / "server.log") as base:
        load = Load(base=base, practice=practice, station=station)
        threads = [threading.Thread(target=load.client, args=(n,), daemon=True)
                   for n in range(CLIENT_THREADS)]
        threads.append(threading.Thread(target=load.registrar, daemon=True))
        for thread in threads:
            thread.start()
        # Warm: both workers have answered (read the key file, unwrapped keys) before rotating.
        deadline = time.monotonic() + 60
        while len({pid for *_, pid in load.answers}) < WORKERS or len(load.answers) < 40:
            assert not load.failures
            assert time.monotonic() < deadline, "both workers did not answer within 60 s"
            time.sleep(0.2)

        rotation_started = time.monotonic()
        kek_code, kek_report, kek_err = vault(env, "rotate-kek", "--retire-old")
        kek_retired_at = time.monotonic()
        dk_code, dk_report, dk_err = vault(env, "rotate-data-keys", "--batch-size", "50")
        rotation_ended = time.monotonic()
        time.sleep(2)  # and on after it, on the retired KEK's successor
        load.stop.set()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)

        served_after_retire = {pid for end, _, _, pid in load.answers if end > kek_retired_at}
        workers = read_back_from_every_worker(base, practice, load.created)
        read_registered_from_every_worker(base, station, load.registered)

    during = [a for a in load.answers if rotation_started <= a[0] <= rotation_ended]
    print(json.dumps({  # the figures README's "Reliability" table quotes (pytest -s)
        "requests": len(load.answers), "during_rotation": len(during),
        "failed": len(load.failures), "created": len(load.created),
        "registered": len(load.registered),
        "rotate_kek_seconds": round(kek_retired_at - rotation_started, 1),
        "rotate_data_keys_seconds": round(rotation_ended - kek_retired_at, 1),
        "rotate_kek": kek_report, "rotate_data_keys": dk_report}))

    assert load.failures == []
    assert all(200 <= status < 300 for _, _, status, _ in load.answers)
    assert len(during) > 0
    assert {what for _, what, _, _ in during} >= {"create", "read", "summary", "register"}
    assert kek_code == 0, kek_err
    assert kek_report["retired"] == [old_kek]
    assert kek_report["done"] is True
    assert kek_report["failed"] == 0
    assert kek_report["rewrapped"] >= PEOPLE
    assert dk_code == 0, dk_err
    assert dk_report["done"] is True
    assert dk_report["failed"] == 0
    assert dk_report["started"] >= PEOPLE
    assert dk_report["reencrypted"] > 0
    # Both warm workers went on serving after the KEK they had used was gone from the file.
    assert len(served_after_retire) == WORKERS
    assert len(workers) == WORKERS

    # Nothing was created twice; no live data key is left under the retired KEK.
    document = json.loads(kek_file.read_text())
    assert list(document["keys"]) == [document["active"]] != [old_kek]
    with app.app_context():
        stored = db.session.scalar(select(func.count()).select_from(RecordEntry).where(
            RecordEntry.citizen_id.in_(practice.people), RecordEntry.section == SECTION))
        kek_ids = set(db.session.scalars(select(DataKey.kek_id).where(
            DataKey.wrapped_key.is_not(None))))
    assert stored == len(load.created)
    assert kek_ids == {document["active"]}

    code, verified, err = vault(env, "verify")
    assert code == 0, err
    assert verified["failed"] == 0
    assert verified["checked"] > len(load.created)
