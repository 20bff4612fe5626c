"""Campaign-day benchmark (not a test): a mixed load by locust, reminders computed meanwhile.

    .venv/bin/python bench/campaign.py --citizens 2000 --users 40,80,160 --seconds 45
    .venv/bin/python bench/campaign.py --citizens 10000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/phr_bench_campaign --json out.json

Seeds (or reuses, or tops up) the citizens and records of bench/api.py through its own code
(real models, every field encrypted), serves the app with gunicorn as it does (2 workers × 4
threads), and runs bench/campaign_locust.py headless at each --users level in turn: citizens
reading their own record (80 % of the users), family doctors reading and recording, stations
looking children up and uploading dose batches; meanwhile a separate process computes the
day's vaccination reminders over everyone, pass after pass (`notifications.reminders.
run_reminders`, what `flask notifications run-reminders` runs). The station's worklist is read
in the morning, before the load, and timed alone: the bench station registered every seeded
citizen, so its worklist lists some 1,900 children at 10,000 citizens, a read of several
seconds that holds a worker meanwhile (`--worklist mix` puts it in the steady mix too).

Every token is real and comes from the real endpoints: a pool of citizen accounts logs in
through the login form (authorization code + PKCE; username: the health ID) once, and before
each level refreshes through /oauth/token; the doctor logs in the same way; the station system
uses client credentials. Prints per route p50/p95/p99, req/s and errors (locust's CSV stats),
the reminders' throughput, and the capacity: the highest level with 0 errors and every route's
p99 within its bound (--p99-ms; the batch upload and the worklist are bulk work with their own
--bulk-p99-ms). Needs PostgreSQL and locust (.venv/bin/pip install locust).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import datetime as dt
import json
import multiprocessing
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import api as bench  # noqa: E402  bench/api.py: seeding, world, server and tokens

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/phr_bench_campaign"
LOCUSTFILE = HERE / "campaign_locust.py"
CITIZEN_CLIENT_ID = "bench-citizen-app"
CITIZEN_SCOPES = "openid profile offline_access patient/*.cruds"
REMINDER_SHARDS = 20  # units of the reminders loop: it stops between two of them
LOOKUP_SAMPLE = 2_000
BULK_ROUTES = ("batch", "worklist")  # routes of bulk work: judged by --bulk-p99-ms
# Every user of the run comes from 127.0.0.1: the per-address budgets (meant for a carrier's
# address shared by many people) would refuse the whole campaign as one client. Per-token and
# per-route budgets stay as configured.
# gunicorn closes a keep-alive connection idle for 2 s (its default), shorter than a user's
# pause: a POST sent on a connection the server has just closed fails in the client. Phones
# reach the service through a proxy whose keep-alive outlasts such pauses; here gunicorn keeps
# connections longer than the longest pause (3 s) instead.
SERVER_ENV = {"RATELIMIT_PER_ADDRESS": "1000000/minute", "RATELIMIT_OAUTH": "1000000/minute",
              "GUNICORN_CMD_ARGS": "--keep-alive 10"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=10_000,
                        help="seeded citizens (a re-run reuses them; a larger number tops up)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--users", default="40,60,80",
                        help="comma-separated locust user levels, run in this order")
    parser.add_argument("--seconds", type=int, default=55,
                        help="seconds of load per level (the first 5 ramp up, not measured)")
    parser.add_argument("--token-pool", type=int, default=300,
                        help="citizens with an account and a token (users pick one each)")
    parser.add_argument("--batch-items", type=int, default=100,
                        help="doses per station upload (a session's; at most 500)")
    parser.add_argument("--p99-ms", type=float, default=1000.0,
                        help="p99 bound of every interactive route at capacity")
    parser.add_argument("--bulk-p99-ms", type=float, default=10_000.0,
                        help="p99 bound of the batch upload and the worklist")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn gthread threads/worker")
    parser.add_argument("--jobs", type=int, default=2, help="seeding processes")
    parser.add_argument("--worklist", choices=("morning", "mix", "off"), default="morning",
                        help="stations read their worklist before the load, timed alone "
                             "(morning), or also in the steady mix (mix)")
    parser.add_argument("--no-reminders", action="store_true",
                        help="leave the reminders job out (to see what it costs)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.levels = [int(u) for u in args.users.split(",") if u.strip()]
    if not args.levels or min(args.levels) < 1:
        parser.error("--users: one or more positive numbers")
    if not 1 <= args.batch_items <= bench.BATCH_ITEMS:
        parser.error(f"--batch-items: 1 to {bench.BATCH_ITEMS}")
    if args.seconds < 15:
        parser.error("--seconds: at least 15")
    return args


# --- who takes part: accounts and what they ask for ---------------------------------------------


def ensure_citizen_client() -> None:
    """The phone app as a first-party public client with `patient/` scopes (bench-app, the
    doctor's, holds `user/` ones only)."""
    from auth.clients import create_client
    from auth.models import OAuthClient
    from core.db import db

    if db.session.get(OAuthClient, CITIZEN_CLIENT_ID) is None:
        create_client(session=db.session, name="Bench citizen phone app", client_type="public",
                      grant_types=["authorization_code", "refresh_token"],
                      redirect_uris=[bench.BENCH_REDIRECT_URI], scopes=CITIZEN_SCOPES.split(),
                      first_party=True, client_id=CITIZEN_CLIENT_ID)
        db.session.commit()


def sample_people(pool: int) -> tuple[list[tuple[str, str]], list[str]]:
    """(citizen id, health ID) of `pool` adults who get an account, and health IDs a station
    looks up (children and adults); decrypted through the models, as the app reads them."""
    from sqlalchemy import func, select

    from core.db import db
    from core.encryption import keyring
    from registry.models import Citizen

    session = db.session
    people = list(session.scalars(select(Citizen).order_by(func.random()).limit(
        max(LOOKUP_SAMPLE, pool * 2))))
    keyring(session).preload(c.id for c in people)
    today = bench.vietnam_today()
    adults = [(str(c.id), str(c.health_id)) for c in people
              if (today - c.date_of_birth).days >= 18 * 365]
    health_ids = [str(c.health_id) for c in people]
    session.rollback()
    if len(adults) < pool:
        sys.exit(f"only {len(adults)} adults sampled for a pool of {pool}: seed more citizens")
    return adults[:pool], health_ids


def citizen_accounts(adults: Sequence[tuple[str, str]]) -> str:
    """A login for each pooled adult (created once), all with this run's fresh password."""
    from sqlalchemy import select

    from auth.accounts import create_account, set_password
    from auth.models import Account
    from core.db import db

    password = "Campaign-" + secrets.token_urlsafe(18)
    ids = [uuid.UUID(i) for i, _ in adults]
    existing = {a.citizen_id: a for a in db.session.scalars(
        select(Account).where(Account.citizen_id.in_(ids)))}
    for citizen_id in ids:
        if citizen_id in existing:
            set_password(session=db.session, account=existing[citizen_id], password=password)
        else:
            create_account(session=db.session, role="citizen", citizen_id=citizen_id,
                           password=password)
    db.session.commit()
    return password


@dataclass
class Tokens:
    """What the users present. Access tokens live 15 minutes: renewed before each level."""

    base: str
    citizens: list[dict[str, str]]  # id, health_id, access, refresh
    doctor_password: str
    station: tuple[str, str]
    doctor: list[str] = field(default_factory=list)
    stations: list[str] = field(default_factory=list)

    def login_citizens(self, password: str) -> None:
        def one(person: dict[str, str]) -> None:
            answer = bench.login_token(self.base, person["health_id"], password,
                                       client_id=CITIZEN_CLIENT_ID, scope=CITIZEN_SCOPES)
            person["access"], person["refresh"] = answer["access_token"], answer["refresh_token"]

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(one, self.citizens))

    def renew(self, *, doctors: int, stations: int) -> None:
        import requests

        def refresh(person: dict[str, str]) -> None:
            answer = requests.post(self.base + "/oauth/token", data={
                "grant_type": "refresh_token", "refresh_token": person["refresh"],
                "client_id": CITIZEN_CLIENT_ID}, timeout=60)
            if answer.status_code != 200:
                sys.exit(f"refresh: {answer.status_code} {answer.text[:200]}")
            person["access"] = answer.json()["access_token"]
            person["refresh"] = answer.json()["refresh_token"]

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(refresh, self.citizens))
        self.doctor = [bench.doctor_token(self.base, self.doctor_password)
                       for _ in range(doctors)]
        self.stations = [bench.station_token(self.base, *self.station) for _ in range(stations)]


def write_plan(path: Path, tokens: Tokens, work: dict[str, Any]) -> None:
    plan = {**work, "citizens": [{"id": p["id"], "token": p["access"]} for p in tokens.citizens],
            "doctor_tokens": tokens.doctor, "station_tokens": tokens.stations}
    path.write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")


def doctor_and_station_work(world: bench.World, *, batch_items: int,
                            health_ids: list[str]) -> dict[str, Any]:
    """The requests of bench/api.py's plans (its entries, patients and batches), reused."""
    routes = bench.build_routes(world)
    entries = [line.split("\t", 2)[1] for line in routes["entry"].plan]
    patients = [line.split("\t", 2)[1].split("/")[4] for line in routes["summary"].plan]
    batches = []
    for line in routes["batch"].plan:
        body = json.loads(line.split("\t", 2)[2])
        batches.append(json.dumps({"items": body["items"][:batch_items]}, ensure_ascii=False))
    return {"doctor_entries": entries, "patients": patients, "batches": batches,
            "health_ids": health_ids, "facility_id": world.station_id}


# --- the reminders job, in a process of its own -------------------------------------------------


def reminders_loop(stop: Any, out: Any) -> None:
    """Run the day's reminders over every citizen, pass after pass, until `stop` is set; each
    pass in REMINDER_SHARDS slices of the id space (the loop stops between two)."""
    from core.db import db
    from notifications.reminders import run_reminders, shard_bounds

    app = bench.make_app()
    with app.app_context():
        out.put({"ready": True})
        today = bench.vietnam_today()
        totals = {"citizens": 0, "children": 0, "notifications": 0, "passes": 0}
        started = time.perf_counter()
        while not stop.is_set():
            for shard in range(1, REMINDER_SHARDS + 1):
                if stop.is_set():
                    break
                start_after, up_to = shard_bounds(shard, REMINDER_SHARDS)
                run = run_reminders(db.session, today=today, start_after=start_after,
                                    up_to=up_to)
                totals["citizens"] += run.citizens
                totals["children"] += run.children
                totals["notifications"] += run.notifications
            else:
                totals["passes"] += 1
        db.session.remove()
    out.put({**totals, "seconds": round(time.perf_counter() - started, 2)})


@dataclass
class Reminders:
    process: Any
    stop: Any
    out: Any

    @classmethod
    def start(cls) -> Reminders:
        context = multiprocessing.get_context("spawn")
        stop, out = context.Event(), context.Queue()
        process = context.Process(target=reminders_loop, args=(stop, out), daemon=True)
        process.start()
        if not out.get(timeout=120).get("ready"):
            sys.exit("the reminders process did not start")
        return cls(process=process, stop=stop, out=out)

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        result = dict(self.out.get(timeout=300))
        self.process.join(timeout=30)
        seconds = result["seconds"] or 1
        result["citizens_per_s"] = round(result["citizens"] / seconds, 1)
        return result


# --- one level: locust, load average, its CSV ---------------------------------------------------


@dataclass
class RouteStats:
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class Level:
    users: int
    seconds: float
    rps: float
    requests: int
    failures: int
    routes: list[RouteStats]
    failure_messages: list[str]
    reminders: dict[str, Any] | None
    loadavg: list[float]  # 1-minute load average, sampled every 5 s during the level
    ok: bool = False
    verdict: str = ""


def _number(value: str) -> float:
    return float(value) if value not in ("", "N/A") else 0.0


def read_stats(prefix: Path) -> tuple[list[RouteStats], RouteStats, list[str]]:
    rows = list(csv.DictReader(Path(f"{prefix}_stats.csv").open(encoding="utf-8")))

    def stats(row: dict[str, str]) -> RouteStats:
        return RouteStats(name=row["Name"], requests=int(row["Request Count"]),
                          failures=int(row["Failure Count"]), rps=_number(row["Requests/s"]),
                          p50_ms=_number(row["50%"]), p95_ms=_number(row["95%"]),
                          p99_ms=_number(row["99%"]), max_ms=_number(row["Max Response Time"]))

    routes = sorted((stats(r) for r in rows if r["Name"] != "Aggregated"), key=lambda s: s.name)
    total = stats(next(r for r in rows if r["Name"] == "Aggregated"))
    failures = [f"{r['Occurrences']}× {r['Name']}: {r['Error']}"
                for r in csv.DictReader(Path(f"{prefix}_failures.csv").open(encoding="utf-8"))]
    return routes, total, failures


def run_level(users: int, *, args: argparse.Namespace, base: str, plan: Path,
              workdir: Path) -> Level:
    ramp = 5
    prefix = workdir / f"level-{users}"
    command = [str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE),
               "--headless", "--only-summary", "--host", base, "-u", str(users),
               "-r", str(max(1, -(-users // ramp))), "-t", f"{args.seconds}s",
               "--reset-stats", "--stop-timeout", "30", "--csv", str(prefix),
               "--loglevel", "WARNING"]
    reminders = None if args.no_reminders else Reminders.start()
    loads: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(5):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    env = {**os.environ, "CAMPAIGN_PLAN": str(plan), "CAMPAIGN_WORKLIST": args.worklist}
    finished = subprocess.run(command, env=env,
                              capture_output=True, text=True, timeout=args.seconds + 180,
                              check=False)
    elapsed = time.perf_counter() - started
    done.set()
    reminded = reminders.finish() if reminders else None
    if not Path(f"{prefix}_stats.csv").exists():
        sys.exit(f"locust failed ({finished.returncode}): {finished.stderr[-2000:]}")
    routes, total, failures = read_stats(prefix)
    return Level(users=users, seconds=round(elapsed, 1), rps=total.rps, requests=total.requests,
                 failures=total.failures, routes=routes, failure_messages=failures,
                 reminders=reminded, loadavg=[round(x, 2) for x in loads])


def judge(level: Level, args: argparse.Namespace) -> None:
    over = []
    for route in level.routes:
        bound = args.bulk_p99_ms if any(b in route.name for b in BULK_ROUTES) else args.p99_ms
        if route.p99_ms > bound:
            over.append(f"{route.name} p99 {route.p99_ms:,.0f} > {bound:,.0f} ms")
    level.ok = level.failures == 0 and not over and level.requests > 0
    level.verdict = "ok" if level.ok else "; ".join(
        ([f"{level.failures} errors"] if level.failures else []) + over)


def print_level(level: Level) -> None:
    load = (f"load average {min(level.loadavg):.1f}–{max(level.loadavg):.1f}"
            if level.loadavg else "")
    print(f"\n{level.users} users: {level.rps:,.1f} req/s, {level.requests:,} requests, "
          f"{level.failures} errors, {load} → {level.verdict}")
    print(f"  {'route':<44}{'req/s':>8}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'errors':>8}")
    for r in level.routes:
        print(f"  {r.name:<44}{r.rps:>8.1f}{r.p50_ms:>8.0f}{r.p95_ms:>8.0f}{r.p99_ms:>8.0f}"
              f"{r.max_ms:>8.0f}{r.failures:>8}")
    for message in level.failure_messages[:10]:
        print(f"  failure: {message}")
    if level.reminders:
        r = level.reminders
        print(f"  reminders meanwhile: {r['citizens']:,} citizens in {r['seconds']:.0f} s = "
              f"{r['citizens_per_s']:,.0f} citizens/s ({r['passes']} full passes, "
              f"{r['children']:,} children, {r['notifications']:,} notifications created)")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if os.environ.get("APP_ENV") == "production":
        sys.exit("bench/campaign.py seeds and writes records: refused with APP_ENV=production")
    if not args.database_url.startswith(("postgresql://", "postgres://")):
        sys.exit("bench/campaign.py measures PostgreSQL: give a postgresql:// --database-url")
    if not Path(sys.executable).with_name("locust").exists():
        sys.exit("locust is not installed: .venv/bin/pip install locust")
    port = bench.free_port()
    with tempfile.TemporaryDirectory(prefix="phr-bench-campaign-") as tmp:
        workdir = Path(tmp)
        (workdir / "prometheus").mkdir()
        bench.ensure_database(args.database_url)
        bench.bench_keys(args.database_url, workdir=workdir, reseed=False)
        bench.prepare_environment(database_url=args.database_url, port=port, workdir=workdir)
        app = bench.make_app()
        with app.app_context():
            bench.prepare_schema()
            world = bench.ensure_world()
            bench.seed(target=args.citizens, world=world, jobs=args.jobs)
            ensure_citizen_client()
            adults, health_ids = sample_people(args.token_pool)
            citizen_password = citizen_accounts(adults)
            work = doctor_and_station_work(world, batch_items=args.batch_items,
                                           health_ids=health_ids)
            doctor_password = bench.doctor_password(world)
            station = bench.station_client(world)
            from core.db import db

            db.session.remove()
        server = bench.start_server(port=port, workers=args.workers, threads=args.threads,
                                    log=workdir / "gunicorn.log", extra_env=SERVER_ENV)
        levels: list[Level] = []
        try:
            tokens = Tokens(base=server.base, doctor_password=doctor_password, station=station,
                            citizens=[{"id": i, "health_id": h} for i, h in adults])
            started = time.perf_counter()
            tokens.login_citizens(citizen_password)
            print(f"tokens: {len(adults)} citizens logged in through the form in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            print(f"serving: gunicorn {args.workers} workers × {args.threads} threads; locust "
                  f"levels {args.levels} users, {args.seconds} s each (5 s ramp not measured); "
                  f"{args.batch_items}-item batches; reminders "
                  f"{'off' if args.no_reminders else 'in a loop meanwhile'}", flush=True)
            most = max(args.levels)
            morning = None
            if args.worklist != "off":
                tokens.renew(doctors=1, stations=1)
                morning = read_worklist(server.base, tokens.stations[0], work["facility_id"])
            for users in args.levels:
                # A token per doctor and per station user (each is another person or station);
                # weights as in campaign_locust.py: 12 % doctors, 8 % stations.
                tokens.renew(doctors=-(-most * 12 // 100) + 1, stations=-(-most * 8 // 100) + 1)
                with app.app_context():
                    bench.mark_read_today(world)
                plan = workdir / "plan.json"
                write_plan(plan, tokens, work)
                level = run_level(users, args=args, base=server.base, plan=plan, workdir=workdir)
                judge(level, args)
                print_level(level)
                levels.append(level)
                bench.drain(server.base)
            log = server.log.read_text(errors="replace")
            if "Traceback" in log or "WORKER TIMEOUT" in log:
                print(f"(the server log has tracebacks or worker timeouts:)\n{log[-3000:]}")
        finally:
            server.stop()
    report(levels, args, morning)


def read_worklist(base: str, token: str, facility_id: str) -> dict[str, Any]:
    """The station's worklist read twice, alone (no other load but the machine's): the first
    read of the day, then the next."""
    import requests

    times, children = [], 0
    for _ in range(2):
        started = time.perf_counter()
        answer = requests.get(f"{base}/api/v1/facilities/{facility_id}/immunization-worklist",
                              headers={"Authorization": f"Bearer {token}"}, timeout=300)
        times.append(round((time.perf_counter() - started) * 1000))
        if answer.status_code != 200:
            sys.exit(f"worklist: {answer.status_code} {answer.text[:300]}")
        children = int(answer.json()["summary"]["children"])
    print(f"worklist alone (before the load): {times[0]:,} ms, then {times[1]:,} ms, "
          f"{children:,} children listed (load average {os.getloadavg()[0]:.1f})", flush=True)
    return {"ms": times, "children_listed": children, "loadavg": round(os.getloadavg()[0], 2)}


def report(levels: Sequence[Level], args: argparse.Namespace,
           morning: dict[str, Any] | None) -> None:
    # The capacity is the level below the first that fails: on a shared machine a higher level
    # may pass again by luck, and is reported, not counted.
    capacity = None
    for level in sorted(levels, key=lambda level: level.users):
        if not level.ok:
            break
        capacity = level
    bounds = (f"0 errors, p99 ≤ {args.p99_ms:,.0f} ms on every route "
              f"(batch and worklist ≤ {args.bulk_p99_ms:,.0f} ms)")
    if capacity is None:
        print(f"\ncapacity: no level met {bounds}")
    else:
        above = [level.users for level in levels if level.users > capacity.users]
        print(f"\ncapacity: {capacity.users} users, {capacity.rps:,.1f} req/s ({bounds})"
              + (f"; {min(above)} users did not meet it" if above else
                 "; the highest level run: the limit is above it, run higher --users"))
    if args.json:
        args.json.write_text(json.dumps({
            "command": " ".join([".venv/bin/python", "bench/campaign.py", *sys.argv[1:]]),
            "citizens": args.citizens, "database": bench.database_name(args.database_url),
            "server": {"workers": args.workers, "threads": args.threads},
            "seconds_per_level": args.seconds, "batch_items": args.batch_items,
            "bounds": bounds, "capacity_users": capacity.users if capacity else None,
            "worklist": args.worklist, "worklist_alone": morning,
            "reminders": not args.no_reminders,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "levels": [asdict(level) for level in levels]}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
