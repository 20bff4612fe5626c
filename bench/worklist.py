"""Vaccination worklist benchmark (not a test): latency of a commune station's worklist.

    .venv/bin/python bench/worklist.py                                   # SQLite file
    .venv/bin/python bench/worklist.py \
        --database-url postgresql://postgres@127.0.0.1:5432/worklist_bench

Seeds, on an emptied database upgraded to the head migration, one commune with N children
(default 1,000, born over the last 16 years, village and phone set, two thirds with a mother
linked as guardian), the adults of the same commune (the mothers and others), and children of
other communes; every personal field encrypted under the person's own data key, the cohort index
kept by the registry's listeners. The children's past doses are uploaded through
`POST /api/v1/immunizations/batch` as the station's system (each child on time up to a point,
then behind), so the worklist has due, overdue and completed doses to weigh.

Then asks `GET /api/v1/facilities/{id}/immunization-worklist` R times (default 50) with the
station's real client-credentials token, IN PROCESS (Flask's test client: no network, no
WSGI server; one thread), and reports JSON: p50/p99/max latency in ms, the children and doses
listed, the audit events each request appends. The issue's target: p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORKDIR = ROOT / "instance" / "bench-worklist"
DEFAULT_DATABASE_URL = f"sqlite:///{WORKDIR / 'worklist.sqlite3'}"
PROVINCE = "24"
COMMUNE = "09334"  # Xã Liên Bão (Bắc Ninh)
OTHER_COMMUNES = ("07627", "07615", "07616")
VILLAGES = ("Thôn Đông", "Thôn Đoài", "Thôn Trung", "Xóm Mới", "Xóm Chợ", "Thôn Hạ")
STATION_SCOPES = ("system/Patient.crs system/Immunization.crus "
                  "system/ImmunizationRecommendation.rs")
BATCH = 500
NAMES = ("An", "Bình", "Chi", "Dũng", "Hà", "Hùng", "Lan", "Linh", "Mai", "Nam", "Phúc", "Vy")


def prepare_environment() -> None:
    """Development keys kept beside the benchmark (the database is emptied every run)."""
    from core.config import load_config

    load_config(root=WORKDIR, environ={"APP_ENV": "development"})
    keys = WORKDIR / "instance" / "keys"
    os.environ.update({
        "APP_ENV": "development",
        "VAULT_KEK_FILE": str(keys / "kek.json"),
        "BLIND_INDEX_KEY_FILE": str(keys / "blind-index.key"),
        "SECRET_KEY_FILE": str(keys / "secret.key"),
        "OAUTH_SIGNING_KEY_FILE": str(keys / "oauth-signing.pem"),
        "NOTIFICATIONS_WORKER": "none",
        "LOG_LEVEL": "WARNING",
    })
    os.environ.pop("VAULT_KEK_JSON", None)
    os.environ.pop("DATABASE_URL", None)


def empty_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from core.config import normalize_database_url

    target = make_url(normalize_database_url(url))
    if target.get_backend_name() == "sqlite":
        path = Path(target.database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        return
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


def make_app(url: str) -> Any:
    from flask_migrate import upgrade

    from app import create_app
    from core.config import engine_options

    app = create_app({"SQLALCHEMY_DATABASE_URI": url,
                      "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url)})
    with app.app_context():
        upgrade()
    return app


def vietnam_today() -> dt.date:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)).date()


def doses_for(born: dt.date, today: dt.date, rng: random.Random) -> list[tuple[str, dt.date]]:
    """(vaccine, day) of the doses a child was given: on time up to a cut-off, then none."""
    from ehr.worklist import programme_vaccine
    from registry.reference.schedule import load_schedule

    schedule = load_schedule()
    cutoff = today - dt.timedelta(days=rng.choice((0, 20, 45, 45, 120, 400)))
    given: list[tuple[str, dt.date]] = []
    last: dict[str, dt.date] = {}
    for row in schedule.rows:
        when = row.recommended_age.after(born) if row.recommended_age is not None else None
        previous = last.get(row.series)
        if previous is not None and row.recommended_interval is not None:
            after = row.recommended_interval.after(previous)
            when = max(when, after) if when else after
        if when is None or when > cutoff or when > today:
            continue
        code = schedule.series[row.series].default_vaccine or programme_vaccine(row.id)
        if code is None:
            continue
        given.append((code, when))
        last[row.series] = when
    return given


def _person(session: Any, rng: random.Random, *, born: dt.date, commune: str,
            village: str | None, phone: bool, registered_by: uuid.UUID | None = None) -> Any:
    from registry.reference.health_id import make_health_id
    from registry.services import register_citizen

    sex = rng.choice(("male", "female"))
    return register_citizen(
        session=session, full_name=f"Nguyễn {rng.choice(NAMES)} {rng.choice(NAMES)}",
        date_of_birth=born, sex=sex,
        health_id=make_health_id(province_code="027", date_of_birth=born, sex=sex,
                                 serial=rng.randrange(1_000_000)),
        phone=f"09{rng.randrange(10**8):08d}" if phone else None,
        address={"province_code": PROVINCE, "commune_code": commune, "village": village,
                 "line": f"Số {rng.randrange(1, 300)}"} if village else
        {"province_code": PROVINCE, "commune_code": commune},
        registered_by_facility_id=registered_by)


def seed(app: Any, *, children: int, adults: int, elsewhere: int, rng: random.Random
         ) -> dict[str, Any]:
    """The commune, its station and the station's system client; returns ids and secrets."""
    from auth.clients import create_client
    from consent.models import Guardianship
    from core.db import db, utcnow
    from registry.services import create_facility

    today = vietnam_today()
    with app.app_context():
        session = db.session
        station = create_facility(session=session, code="BENCH-WL", kind="commune-health-station",
                                  name="Trạm Y tế xã Liên Bão", province_code=PROVINCE,
                                  commune_code=COMMUNE)
        session.flush()
        client, secret = create_client(
            session=session, name="Bench station system", client_type="confidential",
            grant_types=["client_credentials"], scopes=STATION_SCOPES.split(),
            facility_id=station.id)
        session.commit()
        facility_id, client_id = station.id, client.client_id

        mothers = []
        for index in range(adults):
            born = today - dt.timedelta(days=rng.randrange(18 * 365, 60 * 365))
            mothers.append(_person(session, rng, born=born, commune=COMMUNE,
                                   village=rng.choice(VILLAGES), phone=True).id)
            if index % 500 == 499:
                session.commit()
                session.expunge_all()
        session.commit()
        kids: list[tuple[uuid.UUID, dt.date]] = []
        now = utcnow()
        for index in range(children):
            born = today - dt.timedelta(days=rng.randrange(16 * 365 - 2))
            village = None if rng.random() < 0.05 else rng.choice(VILLAGES)
            # A few newborns were registered at the station while living elsewhere.
            own = rng.random() < 0.97
            child = _person(session, rng, born=born, commune=COMMUNE if own else OTHER_COMMUNES[0],
                            village=village, phone=rng.random() < 0.3,
                            registered_by=facility_id if rng.random() < 0.4 or not own else None)
            session.flush()
            kids.append((child.id, born))
            if mothers and rng.random() < 2 / 3:
                session.add(Guardianship(
                    id=uuid.uuid4(), guardian_citizen_id=rng.choice(mothers),
                    dependant_citizen_id=child.id, kind="minor", relationship="mother",
                    categories=[], valid_from=now, created_via="seed", created_at=now))
            if index % 500 == 499:
                session.commit()
                session.expunge_all()
        for _ in range(elsewhere):
            born = today - dt.timedelta(days=rng.randrange(16 * 365 - 2))
            _person(session, rng, born=born, commune=rng.choice(OTHER_COMMUNES[1:]),
                    village=rng.choice(VILLAGES), phone=True)
        session.commit()
        db.session.remove()
    return {"facility_id": facility_id, "client_id": client_id, "secret": secret,
            "children": kids, "today": today}


def token(http: Any, client_id: str, secret: str) -> str:
    response = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(client_id, secret))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["access_token"]


def upload_history(http: Any, world: dict[str, Any], rng: random.Random) -> int:
    """The children's past doses, through the station batch, 500 items a request."""
    items = []
    for child_id, born in world["children"]:
        for number, (code, day) in enumerate(doses_for(born, world["today"], rng), start=1):
            items.append({"client_item_id": f"seed-{child_id.hex[:20]}-{number}",
                          "citizen_id": str(child_id), "vaccine_code": code,
                          "dose_number": 1, "occurrence_date": day.isoformat(),
                          "lot_number": f"L{rng.randrange(10**5):05d}"})
    created = 0
    for start in range(0, len(items), BATCH):
        headers = {"Authorization": f"Bearer {token(http, world['client_id'], world['secret'])}"}
        response = http.post("/api/v1/immunizations/batch", headers=headers,
                             json={"items": items[start:start + BATCH]})
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        created += response.get_json()["counts"]["created"]
    return created


def audit_events(app: Any) -> int:
    from sqlalchemy import func, select

    from consent.models import AuditEvent
    from core.db import db

    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.section == "immunization-worklist"))
        db.session.remove()
        return int(count or 0)


def measure(app: Any, http: Any, world: dict[str, Any], requests: int, *, accept: str
            ) -> dict[str, Any]:
    url = f"/api/v1/facilities/{world['facility_id']}/immunization-worklist"
    access = token(http, world["client_id"], world["secret"])
    headers = {"Authorization": f"Bearer {access}", "Accept": accept}
    warm = http.get(url, headers=headers)
    assert warm.status_code == 200, warm.get_data(as_text=True)[:500]
    before = audit_events(app)
    timings, cpu = [], []
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = http.get(url, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200
    appended = audit_events(app) - before
    timings.sort()
    result = {
        "accept": accept, "requests": requests,
        "p50_ms": round(statistics.median(timings), 1),
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 1),
        "max_ms": round(timings[-1], 1),
        # CPU time of this process: what the figures would be on an idle machine, roughly.
        "cpu_p50_ms": round(statistics.median(cpu), 1),
        "audit_events_per_request": appended // requests,
    }
    if accept == "application/json":
        summary = warm.get_json()["summary"]
        result.update(listed_children=summary["children"], listed_doses=summary["doses"])
    else:
        result["csv_bytes"] = len(warm.get_data())
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--adults", type=int, default=1000, help="adults of the same commune")
    parser.add_argument("--elsewhere", type=int, default=500, help="children of other communes")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1515)
    args = parser.parse_args(argv)

    prepare_environment()
    empty_database(args.database_url)
    rng = random.Random(args.seed)
    app = make_app(args.database_url)
    started = time.perf_counter()
    world = seed(app, children=args.children, adults=args.adults, elsewhere=args.elsewhere,
                 rng=rng)
    http = app.test_client()
    doses = upload_history(http, world, rng)
    seeded_s = round(time.perf_counter() - started, 1)
    backend = "postgresql" if args.database_url.startswith("postgres") else "sqlite"
    report = {
        "database": backend, "client": "in-process Flask test client, one thread",
        "children": args.children, "adults": args.adults, "elsewhere": args.elsewhere,
        "doses_seeded": doses, "seed_seconds": seeded_s,
        "json": measure(app, http, world, args.requests, accept="application/json"),
        "csv": measure(app, http, world, max(5, args.requests // 5), accept="text/csv"),
    }
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
