"""Reminder benchmark (not a test): compute vaccination reminders for N children on PostgreSQL,
then deliver them through a local fake provider; prints children/s and messages/s.

    .venv/bin/python bench/reminders.py                      # 100,000 children on phr_bench_notif
    .venv/bin/python bench/reminders.py --children 20000 --workers 4

Seeds (fresh each run) N children with dates of birth spread over the last two years, each with a
parent (two children per parent) who has a phone and an FCM device, and records for most children
the doses they were due (the rest missed their latest ones), all through the real models: every
personal field encrypted under the person's own data key. Then:

1. `run_reminders` over every citizen (dates of birth are encrypted: each one is decrypted), the
   guardians hook pointing each child to its parent: one transaction per 1,000 citizens;
2. W worker processes (`flask notifications process --until-idle`, the code a Celery worker runs)
   deliver the outbox to a fake FCM + SMS gateway running in its own process, which counts what it
   receives and what it would show (one copy per de-duplication key).

Reports JSON: children/s for the reminder run and messages/s for delivery, and checks that every
message reached the provider exactly once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/phr_bench_notif"
KEYS_ROOT = ROOT / "instance" / "bench-reminders"
TODAY = dt.date(2025, 3, 10)
CHUNK = 1000
SERIES_VACCINE = {
    "hepb-birth": "HEPB", "bcg": "BCG", "dtp": "DTP-HEPB-HIB", "opv": "BOPV",
    "rotavirus": "ROTAVIN-M1", "ipv": "IPV", "measles": "MEASLES", "je": "JE-INACT", "td": "TD",
}


# The fake provider (its own process) ------------------------------------------------------------
def serve_fake(port_file: str) -> None:
    """FCM v1 + SMS gateway in one HTTP/1.1 server; GET /stats answers the counts."""
    lock = threading.Lock()
    received = {"fcm": 0, "sms": 0}
    distinct: dict[str, set[str]] = {"fcm": set(), "sms": set()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave without a delayed-ACK wait

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return None

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            with lock:
                stats = {k: {"received": received[k], "distinct": len(distinct[k])}
                         for k in received}
            self._answer(200, stats)

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path.startswith("/fcm"):
                kind, key = "fcm", body["message"]["android"]["collapse_key"]
            else:
                kind, key = "sms", self.headers["Idempotency-Key"]
            with lock:
                received[kind] += 1
                distinct[kind].add(key)
            self._answer(200, {"name": f"projects/bench/messages/{key[:16]}"})

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def start_fake() -> tuple[subprocess.Popen, str]:
    port_file = KEYS_ROOT / f"fake-{uuid.uuid4().hex}.port"
    process = subprocess.Popen([sys.executable, __file__, "--serve-fake", str(port_file)])
    for _ in range(100):
        if port_file.exists() and port_file.read_text():
            break
        time.sleep(0.05)
    port = port_file.read_text()
    port_file.unlink()
    return process, f"http://127.0.0.1:{port}"


def fake_stats(url: str) -> dict[str, Any]:
    import requests

    return requests.get(url + "/stats", timeout=10).json()


# Setup ------------------------------------------------------------------------------------------
def prepare_environment() -> None:
    """Development keys kept beside the benchmark (the database is reseeded every run)."""
    from core.config import load_config

    load_config(root=KEYS_ROOT, environ={"APP_ENV": "development"})
    keys = KEYS_ROOT / "instance" / "keys"
    os.environ.update({
        "APP_ENV": "development",
        "VAULT_KEK_FILE": str(keys / "kek.json"),
        "BLIND_INDEX_KEY_FILE": str(keys / "blind-index.key"),
        "SECRET_KEY_FILE": str(keys / "secret.key"),
        "OAUTH_SIGNING_KEY_FILE": str(keys / "oauth-signing.pem"),
        "NOTIFICATIONS_WORKER": "none",
        "QUIET_HOURS": "",
        "LOG_LEVEL": "WARNING",
    })
    os.environ.pop("VAULT_KEK_JSON", None)


def ensure_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from core.config import normalize_database_url

    target = make_url(normalize_database_url(url))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                    {"name": target.database}).scalar()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = create_engine(target)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def make_app(url: str, provider: str) -> Any:
    from app import create_app
    from core.config import engine_options

    return create_app({
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url),
        "PUSH_FCM_URL": provider + "/fcm/v1/projects/bench/messages:send",
        "SMS_GATEWAY_URL": provider + "/sms",
    })


def doses_for(born: dt.date, rng: random.Random) -> list[Any]:
    """The doses a child was given: each on time, except that some children missed recent ones."""
    from registry.reference.schedule import GivenDose, load_schedule

    schedule = load_schedule()
    cutoff = TODAY - dt.timedelta(days=rng.choice((40, 40, 40, 120)))
    given: list[GivenDose] = []
    last_in_series: dict[str, dt.date] = {}
    for row in schedule.rows:
        when = row.recommended_age.after(born) if row.recommended_age is not None else None
        previous = last_in_series.get(row.series)
        if previous is not None and row.recommended_interval is not None:
            after_previous = row.recommended_interval.after(previous)
            when = max(when, after_previous) if when else after_previous
        if when is None:
            continue
        if when > cutoff:
            continue
        code = "DTP" if row.id == "dtp-4" else "MR" if row.id == "measles-2" else SERIES_VACCINE[
            row.series]
        given.append(GivenDose(code, when, f"{row.id}"))
        last_in_series[row.series] = when
    return given


def _citizen(session: Any, *, full_name: str, born: dt.date, sex: str, serial: int,
             phone: str | None = None) -> Any:
    """A citizen the way registry.services.register_citizen makes one, with its data key created up
    front (the registry looks for an existing key first: one query per citizen when seeding)."""
    from core.encryption import keyring
    from registry.models import Citizen
    from registry.reference.health_id import make_health_id

    citizen_id = uuid.uuid4()
    keyring(session).create_key(citizen_id)
    citizen = Citizen(id=citizen_id, preferred_language="vi", status="active", version=1)
    citizen.health_id = make_health_id(province_code="027", date_of_birth=born, sex=sex,
                                       serial=serial)
    citizen.full_name = full_name
    citizen.date_of_birth = born
    citizen.sex = sex
    citizen.phone = phone
    session.add(citizen)
    return citizen


def seed(app: Any, children: int, rng: random.Random) -> tuple[dict, dict]:
    """Parents (phone + FCM device) and children; returns parent_of and doses_of."""
    from core.db import db
    from core.encryption import compute_blind_index
    from notifications.models import Device

    parent_of: dict[uuid.UUID, uuid.UUID] = {}
    doses_of: dict[uuid.UUID, list[Any]] = {}
    serial = 0
    now = dt.datetime.now(dt.UTC)
    with app.app_context():
        session = db.session
        parents = (children + 1) // 2
        for start in range(0, parents, CHUNK // 2):
            for index in range(start, min(parents, start + CHUNK // 2)):
                serial += 1
                born = dt.date(1985, 1, 1) + dt.timedelta(days=rng.randrange(5000))
                parent = _citizen(session, full_name=f"Phụ huynh {index}", born=born,
                                  sex="female", serial=serial,
                                  phone=f"09{rng.randrange(10**8):08d}")
                token = f"bench{uuid.uuid4().hex}:APA91b{uuid.uuid4().hex}"
                device = Device(
                    id=uuid.uuid4(), owner_kind="citizen", owner_id=parent.id, platform="fcm",
                    token_hash=compute_blind_index("notification_device_token", f"fcm:{token}"),
                    created_at=now, last_seen_at=now,
                )
                session.add(device)
                device.token = token
                for child_index in range(2):
                    if len(parent_of) >= children:
                        break
                    serial += 1
                    child_born = TODAY - dt.timedelta(days=rng.randrange(730))
                    child = _citizen(session, full_name=f"Bé {index}-{child_index}",
                                     born=child_born, sex="male", serial=serial)
                    parent_of[child.id] = parent.id
                    doses_of[child.id] = doses_for(child_born, rng)
            session.commit()
            session.expunge_all()
            print(f"  seeded {len(parent_of)} children", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return parent_of, doses_of


# Phases -----------------------------------------------------------------------------------------
def run_reminder_phase(app: Any, parent_of: dict, doses_of: dict) -> dict[str, Any]:
    from core.db import db
    from notifications.recipients import RECIPIENTS
    from notifications.reminders import DOSES, run_reminders

    RECIPIENTS.install(app, lambda session, ids: {i: [parent_of.get(i, i)] for i in ids})
    DOSES.install(app, lambda session, ids: {i: doses_of[i] for i in ids if i in doses_of})
    with app.app_context():
        started = time.perf_counter()
        run = run_reminders(db.session, today=TODAY, chunk_size=CHUNK)
        elapsed = time.perf_counter() - started
        again_started = time.perf_counter()
        again = run_reminders(db.session, today=TODAY, chunk_size=CHUNK)
        again_elapsed = time.perf_counter() - again_started
    return {
        "citizens": run.citizens, "children": run.children,
        "notifications": run.notifications, "by_trigger": dict(run.by_trigger),
        "seconds": round(elapsed, 2),
        "children_per_s": round(run.children / elapsed, 1),
        "citizens_per_s": round(run.citizens / elapsed, 1),
        "second_run_new_notifications": again.notifications,
        "second_run_seconds": round(again_elapsed, 2),
    }


def run_delivery_phase(url: str, provider: str, workers: int, batch: int) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": url,
           "PUSH_FCM_URL": provider + "/fcm/v1/projects/bench/messages:send",
           "SMS_GATEWAY_URL": provider + "/sms", "NOTIFICATIONS_BATCH_SIZE": str(batch)}
    command = [sys.executable, "-m", "flask", "--app", "app", "notifications", "process",
               "--until-idle"]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL) for _ in range(workers)]
    results = []
    for process in processes:
        out, _ = process.communicate()
        lines = [line for line in out.decode().splitlines() if line.startswith("{")]
        results.append(json.loads(lines[-1]))
    elapsed = time.perf_counter() - started
    sent = sum(r["sent"] for r in results)
    return {"workers": workers, "batch_size": batch, "sent": sent,
            "dead": sum(r["dead"] for r in results),
            "retried": sum(r["retried"] for r in results),
            "seconds": round(elapsed, 2), "messages_per_s": round(sent / elapsed, 1)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4, help="delivery processes")
    parser.add_argument("--batch-size", type=int, default=200, help="rows per claim")
    parser.add_argument("--seed", type=int, default=5316)
    parser.add_argument("--serve-fake", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake:
        serve_fake(args.serve_fake)
        return

    KEYS_ROOT.mkdir(parents=True, exist_ok=True)
    prepare_environment()
    ensure_database(args.database_url)
    fake, provider = start_fake()
    try:
        app = make_app(args.database_url, provider)
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
        rng = random.Random(args.seed)
        started = time.perf_counter()
        parent_of, doses_of = seed(app, args.children, rng)
        seeded = round(time.perf_counter() - started, 1)
        reminders = run_reminder_phase(app, parent_of, doses_of)
        with app.app_context():
            from sqlalchemy import func, select

            from core.db import db
            from notifications.models import Delivery

            messages = db.session.scalar(select(func.count()).select_from(Delivery))
            db.engine.dispose()
        delivery = run_delivery_phase(args.database_url, provider, args.workers,
                                      args.batch_size)
        stats = fake_stats(provider)
        exactly_once = (
            stats["fcm"]["received"] == stats["fcm"]["distinct"]
            and stats["sms"]["received"] == stats["sms"]["distinct"]
            and stats["fcm"]["distinct"] + stats["sms"]["distinct"] == messages == delivery["sent"]
        )
        print(json.dumps({
            "database": args.database_url.rsplit("/", 1)[-1], "children": args.children,
            "seed_seconds": seeded, "reminders": reminders, "messages": messages,
            "delivery": delivery, "provider": stats, "exactly_once": exactly_once,
        }, indent=2))
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
