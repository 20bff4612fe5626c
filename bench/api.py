"""Record API benchmark (not a test): the real routes under load, beside two plain baseline routes.

    .venv/bin/python bench/api.py                       # 10,000 citizens on phr_bench_api
    .venv/bin/python bench/api.py --citizens 100000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/phr_bench_api_100k --compare-to 10k.json
    .venv/bin/python bench/api.py --compare-audit --audit-rows 1000000   # audit-table growth
    .venv/bin/python bench/api.py --routes baseline-read,entry,baseline-insert,create \\
        --pgbouncer --rounds 3      # direct and through a transaction-mode PgBouncer, alternating

Seeds N citizens with realistic records through the real models (every personal field and every
entry encrypted under the citizen's own data key; a family doctor for all), once: a re-run on the
same database reuses them and tops up a larger --citizens (--reseed starts over). Serves the app
with gunicorn (2 workers, the repo's gunicorn.conf.py), loads it with wrk (16 connections,
bench/wrk_plan.lua rotating over thousands of citizens and entries) and prints req/s and
p50/p95/p99 for the summary, a single entry, a section list, an immunization create (with
Idempotency-Key) and a 500-item batch, beside a plain read and a plain insert served by the same
app in the same run (core/bench_routes.py, on with BENCH_ROUTES=1 only), each baseline measured
right before and right after its routes (the machine is shared: the ratio uses their mean).
The creates and batches write into a fifth of the citizens that no read route reads, so the
records the reads return stay the seeded ones however many runs went before.
Then counts the SQL statements and commits each route costs and times one client alone (the
same requests in-process, SQLAlchemy events). Tokens come from the real endpoints: authorization
code + PKCE through the login form for the doctor, client credentials for the station system.

Reads are measured in a working day's steady state: the bench first records that the doctor has
seen every patient today, so the once-a-day "someone read your record" notification is not in
the figure; the statements of such a first read are counted apart ("1st"). The batch runs with
4 concurrent uploads (--batch-connections) for 60 s. Needs PostgreSQL and wrk (apt-get install
wrk); --profile needs py-spy (.venv/bin/pip install py-spy).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import io
import json
import multiprocessing
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Not phr_bench: bench/vault.py seeds and deletes its own citizens there.
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/phr_bench_api"
LUA_SCRIPT = Path(__file__).resolve().parent / "wrk_plan.lua"
CHUNK = 500  # citizens per seeding transaction
PLAN_SIZE = 20_000  # distinct targets each read plan rotates over
BATCH_ITEMS = 500
BATCH_BODIES = 40
WRITERS_PERCENT = 20  # citizens only the write routes write into (the reads never read them)
AUDIT_CHAIN_LENGTH = 20
SYNTHETIC_AUDIT_CLIENT = "bench-synthetic-audit"
VIETNAM = dt.timezone(dt.timedelta(hours=7))

BENCH_CLIENT_ID = "bench-app"
BENCH_REDIRECT_URI = "vn.gov.phr.bench:/oauth/callback"
DOCTOR_USERNAME = "bench.doctor"
STATION_CODE = "BENCH-TYT-01"
HOSPITAL_CODE = "BENCH-BV-01"
STATION_SCOPES = "system/Patient.crs system/Immunization.crus system/ImmunizationRecommendation.rs"
DOCTOR_SCOPES = "openid user/*.cruds"


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=10_000)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--duration", type=int, default=20, help="seconds measured per route")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before measuring")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch-connections", type=int, default=4,
                        help="concurrent 500-item uploads (16 would queue 8,000 items)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn gthread threads/worker")
    parser.add_argument("--audit-rows", type=int, default=0,
                        help="synthetic audit events present before measuring (other citizens)")
    parser.add_argument("--compare-audit", action="store_true",
                        help="entry read with an empty audit table, then with --audit-rows")
    parser.add_argument("--routes", default=",".join(ROUTE_ORDER),
                        help="comma-separated subset of: " + ", ".join(ROUTE_ORDER))
    parser.add_argument("--jobs", type=int, default=2, help="seeding processes")
    parser.add_argument("--reseed", action="store_true", help="drop the bench schema, seed anew")
    parser.add_argument("--seed-only", action="store_true", help="seed, then stop")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--compare-to", type=Path,
                        help="a --json file of a smaller run: ratios against it (target 0.85)")
    parser.add_argument("--profile", metavar="ROUTE",
                        help="py-spy the gunicorn workers while ROUTE is measured")
    parser.add_argument("--profile-out", type=Path,
                        default=Path("bench-profile-stacks.txt"),
                        help="py-spy raw (collapsed) stacks")
    parser.add_argument("--show-sql", action="store_true", help="print each route's statements")
    parser.add_argument("--cpu-ab", metavar="ROUTE",
                        help="after the run, CPU per request of ROUTE against its baseline, "
                             "in-process, interleaved (app + PostgreSQL)")
    parser.add_argument("--cprofile", metavar="ROUTE",
                        help="after the run, cProfile ROUTE's requests in-process, one client")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=SPEC",
                        help="serve the routes once per variant, alternating over --rounds; SPEC "
                             "is space-separated KEY=VALUE settings for gunicorn's environment "
                             "and/or the word pgbouncer (through a transaction-mode PgBouncer "
                             "the run starts); the first variant is the reference. Repeatable")
    parser.add_argument("--pgbouncer", action="store_true",
                        help="shorthand: --variant direct= --variant pgbouncer=pgbouncer")
    parser.add_argument("--pgbouncer-pool-size", type=int, default=10,
                        help="server connections per pool (gunicorn holds up to "
                             "workers × threads at once)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --variant runs")
    args = parser.parse_args(argv)
    if args.pgbouncer and not args.variant:
        args.variant = ["direct=", "pgbouncer=pgbouncer"]
    if args.compare_audit and args.audit_rows <= 0:
        args.audit_rows = 1_000_000
    return args


# --- environment and database -------------------------------------------------------------------


KEY_FILES = {  # environment variable -> file name in the run's key directory
    "VAULT_KEK_FILE": "kek.json",
    "BLIND_INDEX_KEY_FILE": "blind-index.key",
    "SECRET_KEY_FILE": "secret.key",
    "OAUTH_SIGNING_KEY_FILE": "oauth-signing.pem",
}


def standing_outcomes(directory: Path) -> dict[str, float]:
    """phr_standing_reads_total by outcome, summed over the run's gunicorn workers."""
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    outcomes: dict[str, float] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "phr_standing_reads_total":
                outcome = sample.labels["outcome"]
                outcomes[outcome] = outcomes.get(outcome, 0.0) + sample.value
    return outcomes


def prepare_environment(*, database_url: str, port: int, workdir: Path) -> None:
    """Development key files (from the bench database) and the settings the app starts with."""
    from core.config import DEFAULTS

    keys = workdir / "keys"
    os.environ.pop("VAULT_KEK_JSON", None)
    os.environ.update({name: str(keys / file) for name, file in KEY_FILES.items()})
    os.environ.update({
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "OAUTH_ISSUER": f"http://127.0.0.1:{port}",
        "NOTIFICATIONS_WORKER": "none",
        "LOG_LEVEL": "WARNING",
        "BENCH_ROUTES": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
        # The rate limits stay on (their cost is in the figures) with budgets far beyond what
        # wrk sends from one address with one token per route.
        **{name: "1000000/minute" for name in DEFAULTS if name.startswith("RATELIMIT_")
           and name not in ("RATELIMIT_STORAGE_URI", "RATELIMIT_KEY_PREFIX")},
    })


def bench_keys(url: str, *, workdir: Path, reseed: bool) -> None:
    """Write the run's key files from the bench database, generating them on first use.

    The keys live in the bench database beside the synthetic data they encrypt (so a cleaned
    instance/ never strands a seeded database): development keys of made-up people only.
    Refuses a database holding citizens the bench did not seed; --reseed drops the schema.
    """
    import psycopg2

    from core.config import load_config, write_secret_file

    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('citizens') IS NOT NULL, "
                           "to_regclass('bench_world') IS NOT NULL")
            has_citizens, is_bench = cursor.fetchone()
            if reseed:
                if "bench" not in database_name(url):
                    sys.exit("--reseed drops the schema: only for a database named *bench*")
                cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            elif has_citizens and not is_bench:
                cursor.execute("SELECT EXISTS (SELECT 1 FROM citizens)")
                if cursor.fetchone()[0]:
                    sys.exit("this database holds citizens the bench did not seed: refused")
            cursor.execute("CREATE TABLE IF NOT EXISTS bench_keys "
                           "(name varchar(64) PRIMARY KEY, value text NOT NULL)")
            cursor.execute("SELECT name, value FROM bench_keys")
            stored = dict(cursor.fetchall())
            if not stored:
                generated = workdir / "generated"
                load_config(root=generated, environ={"APP_ENV": "development"})
                stored = {file: (generated / "instance" / "keys" / file).read_text()
                          for file in KEY_FILES.values()}
                cursor.executemany("INSERT INTO bench_keys (name, value) VALUES (%s, %s)",
                                   list(stored.items()))
    finally:
        connection.close()
    keys = workdir / "keys"
    keys.mkdir(mode=0o700)
    for file in KEY_FILES.values():
        write_secret_file(keys / file, stored[file].encode())


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def ensure_database(url: str) -> None:
    """CREATE DATABASE when it does not exist (through the maintenance database)."""
    import psycopg2
    from psycopg2 import sql

    name = database_name(url)
    admin = urlsplit(url)._replace(path="/postgres").geturl()
    connection = psycopg2.connect(admin)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()


def bench_tables() -> tuple[Any, Any, Any]:
    """The bench's own bookkeeping tables (own MetaData: never part of the app's schema)."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, Text

    metadata = MetaData()
    chunks = Table("bench_seed_chunks", metadata,
                   Column("first_index", Integer, primary_key=True),
                   Column("size", Integer, nullable=False),
                   Column("entries", Integer, nullable=False))
    world = Table("bench_world", metadata,
                  Column("name", String(64), primary_key=True),
                  Column("value", Text, nullable=False))
    return metadata, chunks, world


def prepare_schema() -> None:
    """Upgrade to the head migration; create the bench's own tables."""
    from flask_migrate import upgrade

    from core.bench_routes import bench_metadata
    from core.db import db

    upgrade()
    metadata, _, _ = bench_tables()
    metadata.create_all(db.engine)
    bench_metadata.create_all(db.engine)


# --- the world: facilities, practitioners, clients, logins --------------------------------------


@dataclass(frozen=True)
class World:
    station_id: str
    hospital_id: str
    doctor_id: str
    other_doctor_id: str
    vaccinator_id: str
    keys: str  # fingerprint of the blind-index key the data was seeded under


def keys_fingerprint() -> str:
    from flask import current_app

    return hashlib.sha256(b"phr-bench\x00" + current_app.config["BLIND_INDEX_KEY"]).hexdigest()[:16]


def ensure_world() -> World:
    """Facilities, practitioners and the public OAuth client; created once per database."""
    from sqlalchemy import insert, select

    from auth.clients import create_client
    from auth.models import OAuthClient
    from core.db import db
    from registry.services import create_facility, create_practitioner

    _, _, world_table = bench_tables()
    session = db.session
    stored = session.execute(
        select(world_table.c.value).where(world_table.c.name == "world")
    ).scalar_one_or_none()
    if stored is not None:
        world = World(**json.loads(stored))
        if world.keys != keys_fingerprint():
            sys.exit("the data was seeded under other keys than bench_keys holds: use --reseed")
        return world
    station = create_facility(session=session, code=STATION_CODE, kind="commune-health-station",
                              name="Trạm Y tế xã Phù Chẩn", province_code="27",
                              district_code="261", commune_code="09376")
    hospital = create_facility(session=session, code=HOSPITAL_CODE, kind="hospital",
                               name="Bệnh viện đa khoa thị xã Từ Sơn", province_code="27",
                               district_code="261")
    session.flush()
    doctor = create_practitioner(session=session, full_name="Nguyễn Thị Thanh Hà",
                                 practising_certificate="009001/BN-CCHN", profession="doctor",
                                 facility=station, title="Trưởng trạm",
                                 started_on=dt.date(2015, 1, 1))
    other = create_practitioner(session=session, full_name="Lê Quang Minh",
                                practising_certificate="009002/BN-CCHN", profession="doctor",
                                facility=hospital, started_on=dt.date(2012, 1, 1))
    vaccinator = create_practitioner(session=session, full_name="Trần Thị Hồng",
                                     practising_certificate="009003/BN-CCHN",
                                     profession="nurse", facility=station,
                                     started_on=dt.date(2018, 1, 1))
    if session.get(OAuthClient, BENCH_CLIENT_ID) is None:
        create_client(session=session, name="Bench phone app", client_type="public",
                      grant_types=["authorization_code", "refresh_token"],
                      redirect_uris=[BENCH_REDIRECT_URI],
                      scopes="openid profile offline_access user/*.cruds".split(),
                      first_party=True, client_id=BENCH_CLIENT_ID)
    session.flush()
    world = World(station_id=str(station.id), hospital_id=str(hospital.id),
                  doctor_id=str(doctor.id), other_doctor_id=str(other.id),
                  vaccinator_id=str(vaccinator.id), keys=keys_fingerprint())
    session.execute(insert(world_table).values(name="world", value=json.dumps(asdict(world))))
    session.commit()
    return world


def doctor_password(world: World) -> str:
    """A fresh password for the family doctor's login (this run only)."""
    from sqlalchemy import select

    from auth.accounts import create_account, set_password
    from auth.models import Account
    from core.db import db

    password = "Bench-" + secrets.token_urlsafe(18)
    account = db.session.scalars(
        select(Account).where(Account.username == DOCTOR_USERNAME)
    ).one_or_none()
    if account is None:
        create_account(session=db.session, role="practitioner", password=password,
                       username=DOCTOR_USERNAME, practitioner_id=uuid.UUID(world.doctor_id))
    else:
        set_password(session=db.session, account=account, password=password)
    db.session.commit()
    return password


def station_client(world: World) -> tuple[str, str]:
    """A new client-credentials client of the bench station (its secret is shown once)."""
    from auth.clients import create_client
    from core.db import db

    client, secret = create_client(
        session=db.session, name="Bench station system", client_type="confidential",
        grant_types=["client_credentials"], scopes=STATION_SCOPES.split(),
        facility_id=uuid.UUID(world.station_id),
    )
    db.session.commit()
    assert secret is not None
    return client.client_id, secret


# --- realistic people and records ---------------------------------------------------------------


FAMILY_NAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
                "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")
MIDDLE_NAMES = {"male": ("Văn", "Đức", "Minh", "Quang", "Hữu", "Thành", "Công"),
                "female": ("Thị", "Ngọc", "Thu", "Thanh", "Phương", "Kim", "Mỹ")}
GIVEN_NAMES = {"male": ("An", "Bình", "Cường", "Dũng", "Hùng", "Khoa", "Long", "Nam", "Phúc",
                        "Quân", "Sơn", "Tuấn", "Việt", "Thắng", "Hiếu"),
               "female": ("Anh", "Chi", "Dung", "Hà", "Hạnh", "Hương", "Lan", "Linh", "Mai",
                          "Ngân", "Nhung", "Trang", "Yến", "Thảo", "Vy")}
ETHNICITIES = (("Kinh", 85.0), ("Tày", 2.0), ("Thái", 2.0), ("Mường", 1.5), ("Khmer", 1.5),
               ("H'Mông", 1.5), ("Nùng", 1.0), ("Hoa", 1.0), ("Dao", 1.0))
VILLAGES = ("Thôn Đông", "Thôn Đoài", "Thôn Trung", "Xóm Mới", "Khu phố 3", "Tổ dân phố 5")

# Vietnam's EPI schedule as given by a commune station: (vaccine, dose, age in days).
EPI_DOSES = (("HEPB", 1, 0), ("BCG", 1, 7), ("DTP-HEPB-HIB", 1, 61), ("BOPV", 1, 61),
             ("ROTAVIN-M1", 1, 61), ("DTP-HEPB-HIB", 2, 91), ("BOPV", 2, 91),
             ("ROTAVIN-M1", 2, 91), ("DTP-HEPB-HIB", 3, 121), ("BOPV", 3, 121), ("IPV", 1, 152),
             ("MEASLES", 1, 274), ("JE-INACT", 1, 365), ("JE-INACT", 2, 372), ("MR", 1, 548),
             ("DTP", 4, 548), ("JE-INACT", 3, 730))
MEDICATIONS = {
    "I10": {"name": "Amlodipin 5 mg", "atc_code": "C08CA01", "dose": "1 viên", "route": "oral",
            "frequency": "1 lần/ngày buổi sáng"},
    "E11.9": {"name": "Metformin 850 mg", "atc_code": "A10BA02", "dose": "1 viên",
              "route": "oral", "frequency": "2 lần/ngày sau ăn"},
    "J45.9": {"name": "Salbutamol 100 mcg", "atc_code": "R03AC02", "dose": "2 nhát xịt",
              "route": "inhaled", "frequency": "khi khó thở"},
}
ALLERGIES = (("Penicillin", "medication", "Nổi mề đay"), ("Tôm", "food", "Ngứa"),
             ("Phấn hoa", "environment", "Hắt hơi, chảy nước mũi"),
             ("Aspirin", "medication", "Khó thở"), ("Cua", "food", "Nổi mẩn"))


@dataclass(frozen=True)
class Person:
    health_id: str
    full_name: str
    born: dt.date
    sex: str
    phone: str | None
    email: str | None
    address: dict[str, str]
    ethnicity: str
    insurance: str | None


def vietnam_today() -> dt.date:
    return dt.datetime.now(VIETNAM).date()


def make_person(index: int, *, today: dt.date, provinces: Sequence[str]) -> Person:
    """Citizen number `index`, always the same (a seeded RNG); unique health ID and insurance."""
    from registry.reference.health_id import make_health_id

    rng = random.Random(index)
    sex = rng.choice(("male", "female"))
    roll = rng.random()
    if roll < 0.02:
        age_days = rng.randint(7, 364)
    elif roll < 0.20:
        age_days = rng.randint(365, 16 * 365 - 1)
    elif roll < 0.82:
        age_days = rng.randint(16 * 365, 60 * 365)
    else:
        age_days = rng.randint(60 * 365, 92 * 365)
    born = today - dt.timedelta(days=age_days)
    province = provinces[index % len(provinces)]
    health_id = make_health_id(province_code=province, date_of_birth=born, sex=sex,
                               serial=index // len(provinces))
    name = " ".join((rng.choice(FAMILY_NAMES), rng.choice(MIDDLE_NAMES[sex]),
                     rng.choice(GIVEN_NAMES[sex])))
    adult = age_days >= 16 * 365
    phone = f"09{rng.randrange(10**8):08d}" if adult and rng.random() < 0.85 else None
    email = f"nguoidan{index}@example.vn" if adult and rng.random() < 0.2 else None
    address = {"province_code": province[1:], "district_code": f"{rng.randrange(1, 999):03d}",
               "line": f"{rng.choice(VILLAGES)}, số {rng.randint(1, 300)}"}
    ethnicity = rng.choices([e for e, _ in ETHNICITIES], [w for _, w in ETHNICITIES])[0]
    insurance = f"{province[1:]}{index:08d}" if rng.random() < 0.9 else None
    return Person(health_id=health_id, full_name=name, born=born, sex=sex, phone=phone,
                  email=email, address=address, ethnicity=ethnicity, insurance=insurance)


Entry = tuple[str, dict[str, Any], str]  # section, content, author ("doctor" | "other" | "nurse")


def make_record(index: int, *, born: dt.date, today: dt.date) -> list[Entry]:
    """About ten entries: a child's EPI doses and growth, an adult's chronic care and checks."""
    rng = random.Random(-index - 1)
    age_days = (today - born).days
    if age_days < 16 * 365:
        return _child_record(rng, born=born, today=today)
    return _adult_record(rng, born=born, today=today, age=age_days // 365)


def _moment(rng: random.Random, day: dt.date) -> str:
    return dt.datetime.combine(day, dt.time(rng.randint(0, 9), rng.choice((0, 15, 30, 45))),
                               tzinfo=dt.UTC).isoformat()


def _child_record(rng: random.Random, *, born: dt.date, today: dt.date) -> list[Entry]:
    out: list[Entry] = [("history", {"category": "birth-condition",
                                     "description": "Sinh thường, đủ tháng, cân nặng "
                                                    f"{rng.randint(26, 38) / 10:.1f} kg",
                                     "start_date": born.isoformat()}, "doctor")]
    for code, dose, days in EPI_DOSES:
        given = born + dt.timedelta(days=days + rng.randint(0, 14))
        if given >= today or rng.random() < 0.07:  # not yet due, or missed: due/overdue
            continue
        oral = code in ("BOPV", "ROTAVIN-M1")
        out.append(("immunizations", {
            "vaccine_code": code, "dose_number": dose, "occurrence_date": given.isoformat(),
            "lot_number": f"{code[:4]}-{given:%y%m}-{rng.randint(1, 40):02d}",
            "site": "oral" if oral else "left-thigh", "route": "oral" if oral else "intramuscular",
            "facility_code": STATION_CODE}, "nurse"))
    years = (today - born).days / 365.25
    measured = today - dt.timedelta(days=rng.randint(3, 90))
    if measured > born:
        weight = 3.3 + 0.55 * min(years * 12, 12) + 2.0 * max(years - 1, 0)
        height = 50 + 25 * min(years, 1) + 6.5 * max(years - 1, 0)
        out.append(("observations", {"kind": "body-weight", "value": round(weight, 1),
                                     "unit": "kg", "effective_at": _moment(rng, measured),
                                     "method": "clinic"}, "doctor"))
        out.append(("observations", {"kind": "body-height", "value": round(height, 1),
                                     "unit": "cm", "effective_at": _moment(rng, measured),
                                     "method": "clinic"}, "doctor"))
    if rng.random() < 0.1:
        substance, category, reaction = rng.choice(ALLERGIES)
        out.append(("allergies", {"substance": substance, "category": category,
                                  "reaction": reaction, "severity": "mild"}, "doctor"))
    return out


def _adult_record(rng: random.Random, *, born: dt.date, today: dt.date, age: int) -> list[Entry]:
    def day_back(limit: int) -> dt.date:
        return max(born + dt.timedelta(days=1), today - dt.timedelta(days=rng.randint(3, limit)))

    out: list[Entry] = []
    codes = []
    if rng.random() < (0.45 if age >= 40 else 0.08):
        codes.append("I10")
    if rng.random() < (0.15 if age >= 40 else 0.03):
        codes.append("E11.9")
    if rng.random() < 0.05:
        codes.append("J45.9")
    if rng.random() < 0.08:
        codes.append("K29.7")
    for code in codes:
        onset = day_back(3650)
        out.append(("conditions", {"icd10_code": code, "clinical_status": "active",
                                   "onset_date": onset.isoformat()}, "doctor"))
        if code in MEDICATIONS:
            out.append(("medications", {**MEDICATIONS[code], "start_date": onset.isoformat(),
                                        "reason_code": code}, "doctor"))
    if rng.random() < 0.04:  # restricted (mental health): hidden even from the family doctor
        out.append(("conditions", {"icd10_code": "F32.0", "clinical_status": "active",
                                   "onset_date": day_back(1000).isoformat(),
                                   "note": "Theo dõi tại tuyến huyện"}, "other"))
    if rng.random() < 0.2:
        substance, category, reaction = rng.choice(ALLERGIES)
        out.append(("allergies", {"substance": substance, "category": category,
                                  "criticality": rng.choice(("low", "high")),
                                  "reaction": reaction, "severity": "moderate"}, "doctor"))
    hypertensive = "I10" in codes
    for days in sorted(rng.sample(range(3, 365), 2)):
        systolic = rng.randint(135, 165) if hypertensive else rng.randint(100, 135)
        diastolic = rng.randint(60, min(100, systolic - 25))
        out.append(("observations", {"kind": "blood-pressure", "systolic": systolic,
                                     "diastolic": diastolic, "unit": "mm[Hg]",
                                     "effective_at": _moment(rng, today - dt.timedelta(days)),
                                     "method": rng.choice(("clinic", "home"))}, "doctor"))
    out.append(("observations", {"kind": "body-weight", "value": round(rng.uniform(42, 85), 1),
                                 "unit": "kg", "effective_at": _moment(rng, day_back(365)),
                                 "method": "clinic"}, "doctor"))
    examined = day_back(365)
    out.append(("examinations", {
        "exam_type": "elderly" if age >= 60 else "periodic", "examined_on": examined.isoformat(),
        "physical_exam": "Tim đều, phổi không ran", "diagnosis_codes": codes[:3],
        "conclusion": "Sức khỏe loại II" if codes else "Sức khỏe loại I",
        "next_exam_due": (examined + dt.timedelta(days=365)).isoformat()}, "doctor"))
    out.append(("encounters", {"encounter_type": "outpatient",
                               "start_date": day_back(730).isoformat(),
                               "reason": "Khám định kỳ" if not codes else "Tái khám",
                               "diagnosis_codes": codes[:2]}, "doctor"))
    if "E11.9" in codes:
        out.append(("observations", {"kind": "blood-glucose",
                                     "value": round(rng.uniform(6.0, 11.0), 1),
                                     "unit": "mmol/L", "effective_at": _moment(rng, examined),
                                     "method": "clinic"}, "doctor"))
        out.append(("lab-results", {"test_name": "HbA1c", "loinc_code": "4548-4",
                                    "value": f"{rng.uniform(6.0, 9.5):.1f}", "unit": "%",
                                    "reference_range": "4.0-6.0", "interpretation": "high",
                                    "issued_on": examined.isoformat()}, "doctor"))
    elif rng.random() < 0.4:
        out.append(("lab-results", {"test_name": "Cholesterol toàn phần", "loinc_code": "2093-3",
                                    "value": f"{rng.uniform(3.5, 6.5):.1f}", "unit": "mmol/L",
                                    "reference_range": "< 5.2",
                                    "issued_on": examined.isoformat()}, "doctor"))
    if rng.random() < 0.25:
        out.append(("history", {"category": "smoking", "description": "Hút thuốc lá",
                                "status": rng.choice(("current", "former")),
                                "quantity": f"{rng.randint(3, 20)} điếu/ngày"}, "doctor"))
    if rng.random() < 0.3:
        out.append(("family-history", {"relationship": rng.choice(("father", "mother")),
                                       "icd10_code": rng.choice(("I10", "E11.9", "I64")),
                                       "onset_age": rng.randint(45, 75)}, "doctor"))
    if rng.random() < 0.8:
        first = day_back(1400)
        for dose, day in ((1, first), (2, min(first + dt.timedelta(days=60), today))):
            out.append(("immunizations", {
                "vaccine_code": "COVID-19", "dose_number": dose, "occurrence_date": day.isoformat(),
                "lot_number": f"CV-{day:%y%m}-{rng.randint(1, 90):02d}", "site": "left-arm",
                "route": "intramuscular", "facility_code": STATION_CODE}, "nurse"))
    return out


# --- seeding (multiprocessing: one app per process, one transaction per chunk) ------------------


_PROCESS: dict[str, Any] = {}


def make_app() -> Any:
    from app import create_app

    return create_app()


def _seed_process_init(world: dict[str, str]) -> None:
    app = make_app()
    context = app.app_context()
    context.push()
    _PROCESS.update(app=app, context=context, world=World(**world))


def seed_chunk(chunk: tuple[int, int, str]) -> tuple[int, int]:
    """Citizens [first, first + size): registered, assigned to the doctor, with their records."""
    from sqlalchemy import insert

    from core.db import db, utcnow
    from ehr.record_models import STATUS_CURRENT, RecordEntry
    from ehr.records import validate_content
    from ehr.section_schemas import CLINICAL_DATE_FIELD
    from registry.models import FamilyDoctorAssignment
    from registry.reference.health_id import province_codes
    from registry.reference.icd10 import default_sensitivity
    from registry.services import register_citizen

    first, size, today_iso = chunk
    today = dt.date.fromisoformat(today_iso)
    world: World = _PROCESS["world"]
    station, hospital = uuid.UUID(world.station_id), uuid.UUID(world.hospital_id)
    authors = {"doctor": (uuid.UUID(world.doctor_id), station, "clinician"),
               "other": (uuid.UUID(world.other_doctor_id), hospital, "clinician"),
               "nurse": (uuid.UUID(world.vaccinator_id), station, "station")}
    provinces = sorted(province_codes())
    session = db.session
    now = utcnow()
    entries = 0
    for index in range(first, first + size):
        person = make_person(index, today=today, provinces=provinces)
        citizen = register_citizen(
            session=session, health_id=person.health_id, full_name=person.full_name,
            date_of_birth=person.born, sex=person.sex, phone=person.phone, email=person.email,
            address=person.address, ethnicity=person.ethnicity,
            social_insurance_code=person.insurance, registered_by_facility_id=station,
        )
        # The citizen row first: the unit of work does not order record entries after it.
        session.flush()
        session.add(FamilyDoctorAssignment(
            id=uuid.uuid4(), citizen_id=citizen.id, practitioner_id=uuid.UUID(world.doctor_id),
            facility_id=station, started_at=now, changed_by="bench-seed"))
        for section, content, author in make_record(index, born=person.born, today=today):
            stored = validate_content(section, content)
            date_field = CLINICAL_DATE_FIELD[section]
            raw = stored.get(date_field) if date_field else None
            practitioner, facility, source = authors[author]
            entry = RecordEntry(
                id=uuid.uuid4(), citizen_id=citizen.id, section=section,
                clinical_date=dt.date.fromisoformat(raw[:10]) if raw else None,
                status=STATUS_CURRENT, source=source, version=1,
                sensitivity=default_sensitivity(stored["icd10_code"])
                if section == "conditions" else "normal",
                author_practitioner_id=practitioner, facility_id=facility,
                created_at=now, updated_at=now,
            )
            entry.content = stored
            session.add(entry)
            entries += 1
    _, chunks_table, _ = bench_tables()
    session.flush()
    session.execute(insert(chunks_table).values(first_index=first, size=size, entries=entries))
    session.commit()
    db.session.remove()  # the key ring goes with the session
    return size, entries


def missing_chunks(target: int) -> list[tuple[int, int]]:
    """The [first, size) ranges of citizens not yet seeded, in CHUNK-sized pieces."""
    from sqlalchemy import select

    from core.db import db

    _, chunks_table, _ = bench_tables()
    done = sorted(db.session.execute(
        select(chunks_table.c.first_index, chunks_table.c.size)).all())
    covered = sum(size for _, size in done)
    if covered > target:
        sys.exit(f"this database holds {covered:,} bench citizens, more than --citizens "
                 f"{target:,}: use another --database-url or --reseed")
    starts = {first for first, _ in done}
    wanted = []
    for first in range(0, target, CHUNK):
        if first not in starts:
            wanted.append((first, min(CHUNK, target - first)))
    return wanted


def seed(*, target: int, world: World, jobs: int) -> None:
    from core.db import db

    chunks = missing_chunks(target)
    if not chunks:
        print(f"seed: {target:,} citizens already there")
        return
    today = vietnam_today().isoformat()
    work = [(first, size, today) for first, size in chunks]
    todo = sum(size for _, size in chunks)
    print(f"seed: {todo:,} citizens in {len(chunks)} transactions, {jobs} process(es)...",
          flush=True)
    db.session.remove()
    db.engine.dispose()
    started = time.perf_counter()
    done = entries = 0
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs, initializer=_seed_process_init, initargs=(asdict(world),)) as pool:
        for size, count in pool.imap_unordered(seed_chunk, work):
            done += size
            entries += count
            if done % (CHUNK * 20) == 0 or done == todo:
                rate = done / (time.perf_counter() - started)
                print(f"seed: {done:,}/{todo:,} citizens, {entries:,} entries "
                      f"({rate:,.0f} citizens/s)", flush=True)
    print(f"seed: done in {time.perf_counter() - started:,.0f} s")


def refresh_statistics() -> None:
    """ANALYZE the database when the server's autovacuum is off (this machine's PostgreSQL
    runs without it): every run adds rows, and without statistics the planner chose a
    sequential scan of all 16 partitions of `idempotency_records` for a batch's key lookup
    (198 ms against 14 ms after ANALYZE), which made the batch's figure vary by half between
    runs. Production runs autovacuum, whose statistics this stands in for."""
    from sqlalchemy import text

    from core.db import db

    if db.session.execute(text("SHOW autovacuum")).scalar_one() == "on":
        return
    started = time.perf_counter()
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    print(f"statistics: autovacuum is off on this server; ANALYZE took "
          f"{time.perf_counter() - started:,.1f} s", flush=True)


def ensure_baseline_rows(count: int) -> None:
    """As many plain rows as record entries, of about the same size, by SQL (no app code)."""
    from sqlalchemy import text

    from core.db import db

    have = db.session.execute(text("SELECT count(*) FROM bench_baseline")).scalar_one()
    if have >= count:
        return
    payload = json.dumps({"vaccine_code": "COVID-19", "dose_number": 2,
                          "occurrence_date": "2024-05-02", "lot_number": "CV-2405-17",
                          "site": "left-arm", "route": "intramuscular",
                          "facility_code": STATION_CODE, "note": "x" * 120})
    db.session.execute(text(
        "INSERT INTO bench_baseline (id, citizen_id, section, payload, created_at) "
        "SELECT gen_random_uuid(), gen_random_uuid(), 'immunizations', :payload, now() "
        "FROM generate_series(1, :n)"), {"payload": payload, "n": count - have})
    db.session.commit()
    db.session.execute(text("ANALYZE bench_baseline"))
    db.session.commit()


# --- synthetic audit events ---------------------------------------------------------------------

AUDIT_COLUMNS = ("id", "citizen_id", "seq", "occurred_at", "actor_role", "actor_account_id",
                 "actor_citizen_id", "actor_practitioner_id", "actor_facility_id",
                 "on_behalf_of", "section", "entry_id", "sensitivity", "action", "purpose",
                 "decision", "rule", "consent_id", "break_glass_id", "client_id", "request_id",
                 "actor_label", "hash")
AUDIT_SECTIONS = ("summary", "immunizations", "observations", "conditions", "medications",
                  "allergies", "encounters", "lab-results")


def _csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def audit_chunk(spec: tuple[str, int, int]) -> int:
    """COPY `chains` complete, valid chains of AUDIT_CHAIN_LENGTH events for new citizen ids."""
    import psycopg2

    from consent.audit import GENESIS, chain_step, content_digest

    url, seed_value, chains = spec
    rng = random.Random(seed_value)

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    account, practitioner, facility = new_id(), new_id(), new_id()
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=365)
    events, heads = io.StringIO(), io.StringIO()
    for _ in range(chains):
        citizen = new_id()
        previous = GENESIS
        moment = start + dt.timedelta(seconds=rng.randrange(300 * 86400))
        for seq in range(1, AUDIT_CHAIN_LENGTH + 1):
            moment += dt.timedelta(seconds=rng.randrange(60, 86400), microseconds=rng.randrange(
                1_000_000))
            section = rng.choice(AUDIT_SECTIONS)
            entry = new_id() if section != "summary" and rng.random() < 0.6 else None
            row: dict[str, Any] = {
                "id": new_id(), "citizen_id": citizen, "occurred_at": moment,
                "actor_role": "practitioner", "actor_account_id": account,
                "actor_citizen_id": None, "actor_practitioner_id": practitioner,
                "actor_facility_id": facility, "on_behalf_of": None, "section": section,
                "entry_id": entry, "sensitivity": "normal" if entry else None, "action": "read",
                "purpose": "treatment", "decision": "permit", "rule": "family-doctor",
                "consent_id": None, "break_glass_id": None,
                "client_id": SYNTHETIC_AUDIT_CLIENT, "request_id": f"{rng.getrandbits(64):016x}",
                "actor_label": "practitioner",
            }
            previous = chain_step(previous, content_digest(row))
            row["seq"], row["hash"] = seq, previous
            events.write(",".join(_csv(row[c]) for c in AUDIT_COLUMNS) + "\n")
        heads.write(f"{citizen},{AUDIT_CHAIN_LENGTH},\\x{previous.hex()}\n")
    events.seek(0)
    heads.seek(0)
    # The app's bounded-wait callback (core/db.py) is process-wide once an engine connected and
    # psycopg2 refuses COPY under any wait callback: this bulk load runs blocking.
    from psycopg2 import extensions

    extensions.set_wait_callback(None)
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.copy_expert(f"COPY audit_events ({', '.join(AUDIT_COLUMNS)}) FROM STDIN "
                               "WITH (FORMAT csv)", events)
            cursor.copy_expert("COPY audit_chain_heads (citizen_id, seq, last_hash) FROM STDIN "
                               "WITH (FORMAT csv)", heads)
    finally:
        connection.close()
    return chains * AUDIT_CHAIN_LENGTH


def synthetic_audit_rows() -> int:
    from sqlalchemy import text

    from core.db import db

    count = db.session.execute(text("SELECT count(*) FROM audit_events WHERE client_id = :c"),
                               {"c": SYNTHETIC_AUDIT_CLIENT}).scalar_one()
    db.session.commit()
    return int(count)


def ensure_audit_rows(*, target: int, url: str, jobs: int) -> None:
    """At least `target` synthetic events (whole chains, on citizen ids nobody reads)."""
    from sqlalchemy import text

    from core.db import db

    missing = target - synthetic_audit_rows()
    if missing <= 0:
        return
    chains = -(-missing // AUDIT_CHAIN_LENGTH)
    per_chunk = 2_500
    specs = [(url, secrets.randbits(63), min(per_chunk, chains - start))
             for start in range(0, chains, per_chunk)]
    started = time.perf_counter()
    print(f"audit: writing {chains * AUDIT_CHAIN_LENGTH:,} synthetic events...", flush=True)
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        written = sum(pool.imap_unordered(audit_chunk, specs))
    db.session.execute(text("ANALYZE audit_events"))
    db.session.execute(text("ANALYZE audit_chain_heads"))
    db.session.commit()
    print(f"audit: {written:,} events in {time.perf_counter() - started:,.0f} s")


def empty_audit_tables() -> None:
    from sqlalchemy import text

    from core.db import db

    # TRUNCATE is the owner's act the append-only trigger does not see (migration 0004).
    db.session.execute(text("TRUNCATE audit_events, audit_chain_heads CASCADE"))
    db.session.commit()


# --- plans: what each route's requests are ------------------------------------------------------


ROUTE_ORDER = ("baseline-read", "entry", "summary", "list", "list-immunizations",
               "fhir-immunizations", "fhir-summary", "panel", "baseline-insert", "create", "batch")


@dataclass(frozen=True)
class Target:
    kind: str  # "rps" (ratio of req/s), "p99" (ratio of p99, at most) or "items" (items/s)
    value: float
    against: str | None = None

    def describe(self) -> str:
        if self.kind == "items":
            return f"≥ {self.value:,.0f} items/s"
        if self.kind == "p99":
            return f"p99 ≤ {self.value}× {self.against}"
        return f"≥ {self.value}× {self.against}"


@dataclass
class Route:
    key: str
    label: str
    auth: str | None  # whose token: "doctor", "station" or None (baselines)
    expect: int
    plan: list[str]
    idempotency: bool = False
    items: int = 1
    baseline: str | None = None
    targets: tuple[Target, ...] = ()


def plan_line(method: str, path: str, body: dict[str, Any] | None = None) -> str:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body else ""
    return f"{method}\t{path}\t{text}"


def immunization_body(rng: random.Random, *, day: dt.date, performer: str) -> dict[str, Any]:
    """What a station's software sends for one dose given at an outreach session."""
    return {"vaccine_code": "INFLUENZA", "dose_number": 1, "occurrence_date": day.isoformat(),
            "lot_number": f"FLU-{day:%y%m}-{rng.randint(1, 60):02d}", "site": "left-arm",
            "route": "intramuscular", "facility_code": STATION_CODE, "performer_id": performer}


def build_routes(world: World) -> dict[str, Route]:
    """The requests of every route, over random citizens and entries of the seeded world."""
    from sqlalchemy import text

    from core.db import db

    rng = random.Random(20_260_101)
    session = db.session
    citizens = [str(c) for c in session.execute(text(
        "SELECT citizen_id FROM family_doctor_assignments "
        "WHERE practitioner_id = :doctor AND ended_at IS NULL ORDER BY citizen_id"),
        {"doctor": uuid.UUID(world.doctor_id)}).scalars()]
    rng.shuffle(citizens)
    # The write routes get citizens of their own: writing into the people the reads read made
    # every run's summaries longer than the last one's (a day of runs: 11 -> 111 entries each).
    writers_count = max(len(citizens) * WRITERS_PERCENT // 100, BATCH_ITEMS + 1)
    writers, citizens = citizens[-writers_count:], citizens[:-writers_count]
    entries = session.execute(text(
        "SELECT citizen_id, section, id FROM record_entries "
        "WHERE sensitivity = 'normal' AND status = 'current' AND created_at < :cut "
        "AND NOT (citizen_id = ANY(:writers)) ORDER BY random() LIMIT :n"),
        {"n": PLAN_SIZE, "cut": dt.datetime.now(dt.UTC),
         "writers": [uuid.UUID(c) for c in writers]}).all()
    baseline_ids = [str(i) for i in session.execute(text(
        "SELECT id FROM bench_baseline ORDER BY random() LIMIT :n"), {"n": PLAN_SIZE}).scalars()]
    session.commit()
    sample = citizens[:PLAN_SIZE]
    yesterday = vietnam_today() - dt.timedelta(days=1)
    performer = world.vaccinator_id
    api = "/api/v1"

    creates = [plan_line("POST", f"{api}/citizens/{c}/immunizations",
                         immunization_body(rng, day=yesterday, performer=performer))
               for c in writers[:PLAN_SIZE]]
    baseline_inserts = [plan_line("POST", "/_bench/baseline", {
        "citizen_id": c, "section": "immunizations",
        "data": immunization_body(rng, day=yesterday, performer=performer)})
        for c in writers[:PLAN_SIZE]]
    batches = []
    for number in range(BATCH_BODIES):
        start = number * BATCH_ITEMS % max(len(writers) - BATCH_ITEMS, 1)
        items = [{"client_item_id": f"{{{{n}}}}-{i}", "citizen_id": c,
                  **immunization_body(rng, day=yesterday, performer=performer)}
                 for i, c in enumerate(writers[start:start + BATCH_ITEMS])]
        batches.append(plan_line("POST", f"{api}/immunizations/batch", {"items": items}))

    # The family doctor's panel, 20 people a page, from a random place in her list (the cursor a
    # previous page would have returned).
    from core.pagination import encode_cursor

    ordered = sorted(citizens)
    panel_pages = [plan_line("GET", f"{api}/me/patients?limit=20&cursor=" + encode_cursor(
        {"after": ordered[rng.randrange(len(ordered))]})) for _ in range(min(PLAN_SIZE, 2000))]

    read_baseline = "baseline-read"
    return {
        "baseline-read": Route("baseline-read", "baseline: plain row by primary key", None, 200,
                               [plan_line("GET", f"/_bench/baseline/{i}") for i in baseline_ids]),
        "entry": Route("entry", "single entry (GET …/{section}/{id})", "doctor", 200,
                       [plan_line("GET", f"{api}/citizens/{c}/{s}/{i}") for c, s, i in entries],
                       baseline=read_baseline,
                       targets=(Target("rps", 0.5, read_baseline),
                                Target("p99", 2.5, read_baseline))),
        "summary": Route("summary", "summary (GET …/summary)", "doctor", 200,
                         [plan_line("GET", f"{api}/citizens/{c}/summary") for c in sample],
                         baseline=read_baseline, targets=(Target("rps", 0.35, read_baseline),)),
        "list": Route("list", "section list (GET …/observations)", "doctor", 200,
                      [plan_line("GET", f"{api}/citizens/{c}/observations") for c in sample],
                      baseline=read_baseline, targets=(Target("rps", 0.45, read_baseline),)),
        "list-immunizations": Route(
            "list-immunizations", "section list (GET …/immunizations)", "doctor", 200,
            [plan_line("GET", f"{api}/citizens/{c}/immunizations") for c in sample],
            baseline=read_baseline),
        "fhir-immunizations": Route(
            "fhir-immunizations", "FHIR search (GET /fhir/R4/Immunization?patient=)", "doctor",
            200, [plan_line("GET", f"/fhir/R4/Immunization?patient={c}") for c in sample],
            baseline=read_baseline, targets=(Target("rps", 0.8, "list-immunizations"),)),
        "fhir-summary": Route(
            "fhir-summary", "IPS (GET /fhir/R4/Patient/{id}/$summary)", "doctor", 200,
            [plan_line("GET", f"/fhir/R4/Patient/{c}/$summary") for c in sample],
            baseline=read_baseline, targets=(Target("rps", 0.8, "summary"),)),
        "panel": Route("panel", "family doctor's panel (GET /me/patients, 20 a page)", "doctor",
                       200, panel_pages, baseline=read_baseline,
                       targets=(Target("rps", 0.3, read_baseline),)),
        "baseline-insert": Route("baseline-insert", "baseline: plain row inserted", None, 201,
                                 baseline_inserts),
        "create": Route("create", "immunization create (Idempotency-Key)", "station", 201,
                        creates, idempotency=True, baseline="baseline-insert",
                        targets=(Target("rps", 0.4, "baseline-insert"),)),
        "batch": Route("batch", f"immunization batch ({BATCH_ITEMS} items)", "station", 200,
                       batches, items=BATCH_ITEMS, targets=(Target("items", 2500),)),
    }


# --- serving and tokens -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(*, port: int, workers: int, threads: int, log: Path,
                 extra_env: dict[str, str] | None = None) -> Server:
    """gunicorn with the repo's gunicorn.conf.py (gthread; WEB_CONCURRENCY × WEB_THREADS)."""
    import requests

    env = {**os.environ, "WEB_CONCURRENCY": str(workers), "WEB_THREADS": str(threads),
           **(extra_env or {})}
    command = [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
               "--bind", f"127.0.0.1:{port}", "app:create_app()"]
    handle = log.open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle,  # noqa: S603
                               stderr=subprocess.STDOUT)
    server = Server(process=process, base=f"http://127.0.0.1:{port}", log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited; see {log}")
        try:
            if requests.get(server.base + "/readyz", timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.3)
    server.stop()
    sys.exit(f"gunicorn did not become ready; see {log}")


def doctor_token(base: str, password: str) -> str:
    """Authorization code + PKCE S256 through the login form, as the phone app does it."""
    return str(login_token(base, DOCTOR_USERNAME, password)["access_token"])


def login_token(base: str, username: str, password: str, *, client_id: str = BENCH_CLIENT_ID,
                scope: str = DOCTOR_SCOPES) -> dict[str, Any]:
    """The token endpoint's answer after a login through the form (authorization code + PKCE
    S256 of a first-party public client redirecting to BENCH_REDIRECT_URI); bench/campaign.py
    logs citizens in with it (username: their health ID)."""
    import requests

    http = requests.Session()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    state = secrets.token_urlsafe(8)
    url = base + "/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": BENCH_REDIRECT_URI,
        "scope": scope, "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256"})
    page = http.get(url, timeout=30)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if page.status_code != 200 or found is None:
        sys.exit(f"login page: {page.status_code}")
    answer = http.post(url, data={"csrf_token": found.group(1), "action": "login",
                                  "username": username, "password": password},
                       allow_redirects=False, timeout=30)
    location = answer.headers.get("Location", "")
    params = parse_qs(urlsplit(location).query)
    if answer.status_code != 302 or params.get("state") != [state] or "code" not in params:
        sys.exit(f"login did not redirect with a code: {answer.status_code}")
    token = http.post(base + "/oauth/token", data={
        "grant_type": "authorization_code", "code": params["code"][0],
        "redirect_uri": BENCH_REDIRECT_URI, "client_id": client_id,
        "code_verifier": verifier}, timeout=30)
    if token.status_code != 200:
        sys.exit(f"token endpoint: {token.status_code} {token.text[:200]}")
    return dict(token.json())


def station_token(base: str, client_id: str, secret: str) -> str:
    """Client credentials, as a commune station's software gets its token."""
    import requests

    token = requests.post(base + "/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(client_id, secret), timeout=30)
    if token.status_code != 200:
        sys.exit(f"token endpoint: {token.status_code} {token.text[:200]}")
    return str(token.json()["access_token"])


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Measured:
    key: str
    label: str
    requests: int
    seconds: float
    rps: float
    items_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: dict[str, int]
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after
    sql_statements: float | None = None
    sql_commits: float | None = None
    sql_statements_first: float | None = None  # first read of this citizen today
    solo_ms: float | None = None  # one client, in-process: wall time per request (median)
    solo_cpu_ms: float | None = None  # ... of which this Python process's CPU (mean)
    solo_sql_ms: float | None = None  # ... of which waiting on PostgreSQL (mean)
    statements: list[str] = field(default_factory=list)
    statements_first: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, float]] = field(default_factory=list)  # a baseline measured twice

    @property
    def failed_requests(self) -> int:
        return sum(self.errors.values())


def write_plan(route: Route, directory: Path) -> Path:
    path = directory / f"{route.key}.plan"
    path.write_text("\n".join(route.plan) + "\n", encoding="utf-8")
    return path


def check_first_request(route: Route, *, base: str, token: str | None) -> None:
    """One request by hand before the load: the plan must answer what the route promises."""
    import requests

    method, path, body = route.plan[0].split("\t", 2)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body:
        headers["Content-Type"] = "application/json"
        body = body.replace("{{n}}", "check-" + secrets.token_hex(6))
    if route.idempotency:
        headers["Idempotency-Key"] = "bench-check-" + secrets.token_hex(8)
    answer = requests.request(method, base + path, data=body.encode() or None, headers=headers,
                              timeout=120)
    if answer.status_code != route.expect:
        sys.exit(f"{route.key}: {method} {path} answered {answer.status_code}, "
                 f"expected {route.expect}: {answer.text[:500]}")
    if route.key == "batch":
        counts = answer.json()["counts"]
        if counts["failed"]:
            failed = [r for r in answer.json()["results"] if r["status"] >= 400][:3]
            sys.exit(f"batch: {counts} {failed}")


def run_wrk(*, base: str, plan: Path, token: str | None, idempotency: bool, seconds: int,
            connections: int, threads: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s",
               "-s", str(LUA_SCRIPT), base, "--", str(plan), token or "-",
               "idem" if idempotency else "-", secrets.token_hex(4), str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 180,  # noqa: S603
                          check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return dict(json.loads(line.removeprefix("BENCH_RESULT ")))
    sys.exit(f"wrk failed ({done.returncode}): {done.stderr[-1000:]}{done.stdout[-1000:]}")


def drain(base: str, *, limit: float = 300) -> None:
    """Wait until requests still queued when wrk stopped are done (a quick /healthz)."""
    import requests

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        started = time.monotonic()
        requests.get(base + "/healthz", timeout=limit)
        if time.monotonic() - started < 0.2:
            return
        time.sleep(0.5)


def measure(route: Route, *, base: str, token: str | None, plan: Path,
            args: argparse.Namespace, profiler: Callable[[int], Any] | None = None) -> Measured:
    check_first_request(route, base=base, token=token)
    batch = route.items > 1
    connections = min(args.batch_connections, args.connections) if batch else args.connections
    # A batch takes seconds: measure long enough for every connection to complete dozens.
    duration = max(args.duration, 60) if batch else args.duration
    if args.warmup:
        run_wrk(base=base, plan=plan, token=token, idempotency=route.idempotency,
                seconds=args.warmup, connections=connections, threads=args.wrk_threads)
        drain(base)
    spy = profiler(duration) if profiler else None
    load_before = os.getloadavg()[0]
    raw = run_wrk(base=base, plan=plan, token=token, idempotency=route.idempotency,
                  seconds=duration, connections=connections, threads=args.wrk_threads)
    if spy is not None:
        spy.wait(timeout=120)
    drain(base)
    seconds = raw["duration_us"] / 1e6
    rps = raw["requests"] / seconds
    result = Measured(
        key=route.key, label=route.label, requests=raw["requests"], seconds=round(seconds, 2),
        rps=rps, items_per_s=rps * route.items, p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000, p99_ms=raw["p99_us"] / 1000,
        errors={k: int(v) for k, v in raw["errors"].items() if v},
        load=(round(load_before, 2), round(os.getloadavg()[0], 2)),
    )
    print(f"  {route.key:<16}{result.rps:>9,.0f} req/s  p50 {result.p50_ms:7.1f} ms  "
          f"p95 {result.p95_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms  "
          f"load {result.load[0]:.1f}→{result.load[1]:.1f}"
          + (f"  ERRORS {result.errors}" if result.errors else ""), flush=True)
    return result


def evaluate(routes: dict[str, Route], results: dict[str, Measured]) -> None:
    for key, result in results.items():
        for target in routes[key].targets:
            check: dict[str, Any] = {"target": target.describe()}
            against = results.get(target.against) if target.against else None
            if target.kind == "items":
                check["value"] = round(result.items_per_s, 1)
                check["ok"] = result.items_per_s >= target.value
            elif against is None:
                check["value"], check["ok"] = None, None
            elif target.kind == "rps":
                check["value"] = round(result.rps / against.rps, 3)
                check["ok"] = check["value"] >= target.value
            else:
                check["value"] = round(result.p99_ms / against.p99_ms, 3)
                check["ok"] = check["value"] <= target.value
            if result.failed_requests:
                check["ok"] = False
            result.checks.append(check)


# --- statements per request (in-process, same database, same tokens) ----------------------------


class StatementCounter:
    """Counts what reaches PostgreSQL: statements (cursor executions) and commits."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements: list[str] = []
        self.timings: list[float] = []  # ms per statement, in the same order
        self.commits = 0
        self._engine = engine
        self._started = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._commit)

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(" ".join(statement.split()))
        self._started = time.perf_counter()

    def _after(self, *args: Any) -> None:
        self.timings.append((time.perf_counter() - self._started) * 1000)

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    def reset(self) -> None:
        self.statements, self.timings, self.commits = [], [], 0

    def timed(self) -> list[str]:
        return [f"{ms:6.2f} ms  {sql[:190]}" for ms, sql in zip(self.timings, self.statements,
                                                                   strict=False)]

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self._engine, "before_cursor_execute", self._before)
        event.remove(self._engine, "after_cursor_execute", self._after)
        event.remove(self._engine, "commit", self._commit)


def _send(client: Any, route: Route, line: str, tokens: dict[str, str]) -> None:
    method, path, body = line.split("\t", 2)
    headers = {"Accept-Encoding": "gzip"}
    if route.auth:
        headers["Authorization"] = f"Bearer {tokens[route.auth]}"
    if route.idempotency:
        headers["Idempotency-Key"] = "bench-count-" + secrets.token_hex(8)
    data = body.replace("{{n}}", "count-" + secrets.token_hex(6)).encode()
    answer = client.open(path, method=method, headers=headers, data=data or None,
                         content_type="application/json" if body else None)
    if answer.status_code != route.expect:
        raise RuntimeError(f"{route.key}: {answer.status_code} {answer.get_data()[:300]!r}")


def _forget_todays_reads(app: Any, lines: Sequence[str]) -> None:
    """Make the next reads of these citizens the first of the day (digest and notification)."""
    from sqlalchemy import text

    from core.db import db

    ids = [uuid.UUID(m.group(1)) for line in lines
           if (m := re.search(r"/citizens/([0-9a-f-]{36})", line))]
    since = dt.datetime.combine(vietnam_today(), dt.time(), tzinfo=VIETNAM)
    with app.app_context():
        db.session.execute(text("DELETE FROM access_digests WHERE citizen_id = ANY(:ids)"),
                           {"ids": ids})
        db.session.execute(text(
            "DELETE FROM notifications WHERE subject_citizen_id = ANY(:ids) "
            "AND trigger = 'record-accessed' AND created_at >= :since"),
            {"ids": ids, "since": since})
        db.session.commit()


def mark_read_today(world: World) -> None:
    """The doctor has seen every patient today: reads measure the steady state of a working
    day (the first read of a citizen each day also notifies them; counted apart)."""
    from sqlalchemy import text

    from core.db import db

    db.session.execute(text(
        "INSERT INTO access_digests (citizen_id, reader, last_day) "
        "SELECT citizen_id, :reader, :day FROM family_doctor_assignments "
        "WHERE practitioner_id = :doctor AND ended_at IS NULL "
        "ON CONFLICT (citizen_id, reader) DO UPDATE SET last_day = EXCLUDED.last_day"),
        {"reader": f"practitioner:{world.doctor_id}", "day": vietnam_today(),
         "doctor": uuid.UUID(world.doctor_id)})
    db.session.commit()


def solo_latency(client: Any, route: Route, result: Measured, tokens: dict[str, str],
                 counter: StatementCounter) -> None:
    """One client, no concurrency: wall time, the app's CPU and the time spent in SQL."""
    import statistics

    walls, cpus, sql = [], [], []
    repeat = 3 if route.items > 1 else 30
    for line in (route.plan * 2)[:repeat]:
        counter.reset()
        wall, cpu = time.perf_counter(), time.process_time()
        _send(client, route, line, tokens)
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        sql.append(sum(counter.timings))
    result.solo_ms = round(statistics.median(walls), 2)
    result.solo_cpu_ms = round(statistics.mean(cpus), 2)
    result.solo_sql_ms = round(statistics.mean(sql), 2)


def count_statements(app: Any, routes: dict[str, Route], results: dict[str, Measured],
                     tokens: dict[str, str]) -> None:
    """Statements and commits per request, in-process on the same database with the same tokens.

    Median of three requests after a warm-up one. A third party's read costs more the first time
    it reads a citizen on a given day (the access digest notifies the citizen): reads are counted
    that first time and again.
    """
    from core.db import db

    client = app.test_client()
    with app.app_context():
        counter = StatementCounter(db.engine)

    def median_of(lines: Sequence[str], route: Route) -> tuple[int, int, list[str]]:
        samples = []
        for line in lines:
            counter.reset()
            _send(client, route, line, tokens)
            samples.append((len(counter.statements), counter.commits, counter.timed()))
        samples.sort(key=lambda sample: sample[0])
        return samples[len(samples) // 2]

    try:
        for key, result in results.items():
            route = routes[key]
            _send(client, route, route.plan[0], tokens)  # warms per-process caches
            lines = route.plan[-3:]
            if route.auth == "doctor":
                _forget_todays_reads(app, lines)
                first, _, listed_first = median_of(lines, route)
                result.sql_statements_first = first
                result.statements_first = listed_first
            statements, commits, listed = median_of(lines, route)
            result.sql_statements, result.sql_commits = statements, commits
            result.statements = listed
            solo_latency(client, route, result, tokens, counter)
    finally:
        counter.close()


# --- profiling ----------------------------------------------------------------------------------


def cprofile_route(app: Any, route: Route, tokens: dict[str, str], *, requests: int = 300) -> None:
    """CPU of one client's requests, by function (in-process, no concurrency, no GIL waits):
    where the app's own time goes, which a sampling profiler of busy workers blurs."""
    import cProfile
    import pstats

    client = app.test_client()
    if route.items > 1:
        requests = max(1, min(requests, 3000 // route.items))  # a 500-item batch: 6 of them
    lines = (route.plan * (1 + requests // max(len(route.plan), 1)))[:requests]
    _send(client, route, lines[0], tokens)
    profiler = cProfile.Profile()
    profiler.enable()
    for line in lines:
        _send(client, route, line, tokens)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    print(f"\ncProfile of {route.key}: {requests} requests, one client in-process")
    print("  self time by package, ms per request (waits on PostgreSQL included):")
    for package, seconds in _self_time_by_package(stats).most_common(14):
        print(f"    {seconds * 1000 / requests:7.3f}  {package}")
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(r"sqlalchemy/", 45)
    stats.sort_stats("cumulative").print_stats(r"(app|auth|consent|core|ehr|notifications)/", 40)
    print(out.getvalue())


def _self_time_by_package(stats: Any) -> Counter[str]:
    """cProfile's self time summed by top-level package (site-packages name, our top-level
    directory, or the standard library module)."""
    totals: Counter[str] = Counter()
    for (filename, _, function), (_, _, self_time, _, _) in stats.stats.items():
        if filename == "~":
            package = "C: " + function.split(" of ")[-1].strip("<>'")
            if "psycopg2" in function and ("execute" in function or "commit" in function):
                package = "psycopg2 execute/commit (PostgreSQL waits)"
        elif "site-packages/" in filename:
            package = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif filename.startswith(str(ROOT)):
            package = "ours: " + Path(filename).relative_to(ROOT).parts[0]
        else:
            package = "stdlib: " + Path(filename).stem
        totals[package] += self_time
    return totals


def _postgres_cpu_ns() -> int:
    """CPU time of every PostgreSQL process on this machine (schedstat: nanoseconds)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm", encoding="ascii") as comm:
                if not comm.read().startswith("postgres"):
                    continue
            with open(f"/proc/{pid}/schedstat", encoding="ascii") as stat:
                total += int(stat.read().split()[0])
        except (OSError, ValueError):
            continue
    return total


def cpu_ab(app: Any, routes: dict[str, Route], key: str, tokens: dict[str, str], *,
           rounds: int = 12, block: int = 60) -> dict[str, Any]:
    """CPU per request of a route and of its baseline: the app's (this process) plus
    PostgreSQL's, one client in-process, in alternating blocks so that a machine whose speed
    drifts (a shared VM) slows both alike. Under load the workers are CPU-bound, so the ratio
    of the totals predicts the ratio of req/s without wrk's noise."""
    import statistics

    route = routes[key]
    baseline = routes[route.baseline or "baseline-read"]
    client = app.test_client()
    samples: dict[str, list[tuple[float, float]]] = {route.key: [], baseline.key: []}
    lines = {r.key: (r.plan * (1 + block * rounds // max(len(r.plan), 1)))
             for r in (route, baseline)}
    for r in (route, baseline):
        for line in lines[r.key][:5]:
            _send(client, r, line, tokens)
    for index in range(rounds):
        for r in (baseline, route) if index % 2 else (route, baseline):
            chunk = lines[r.key][index * block:(index + 1) * block]
            app_cpu, pg_cpu = time.process_time(), _postgres_cpu_ns()
            for line in chunk:
                _send(client, r, line, tokens)
            samples[r.key].append(((time.process_time() - app_cpu) * 1000 / len(chunk),
                                   (_postgres_cpu_ns() - pg_cpu) / 1e6 / len(chunk)))
    figures = {}
    for name, pairs in samples.items():
        figures[name] = {"app_ms": round(statistics.median(p[0] for p in pairs), 3),
                         "postgres_ms": round(statistics.median(p[1] for p in pairs), 3)}
        figures[name]["total_ms"] = round(figures[name]["app_ms"]
                                          + figures[name]["postgres_ms"], 3)
    ratio = figures[baseline.key]["total_ms"] / figures[route.key]["total_ms"]
    print(f"\nCPU per request, one client, {rounds} interleaved blocks of {block}:")
    for name, figure in figures.items():
        print(f"  {name:<16} app {figure['app_ms']:6.2f} ms + PostgreSQL "
              f"{figure['postgres_ms']:5.2f} ms = {figure['total_ms']:6.2f} ms")
    print(f"  {baseline.key} / {route.key} = {ratio:.2f}× (CPU-bound req/s ratio)")
    # The ceiling PostgreSQL alone sets: the route with no Python of its own beyond what the
    # baseline's request costs the app (Flask, the session, one statement).
    floor = figures[baseline.key]["app_ms"] + figures[route.key]["postgres_ms"]
    ceiling = figures[baseline.key]["total_ms"] / floor
    print(f"  at most {ceiling:.2f}× with no app CPU beyond the baseline's "
          f"({figures[baseline.key]['app_ms']:.2f} + {figures[route.key]['postgres_ms']:.2f} ms)")
    return {"route": route.key, "baseline": baseline.key, "figures": figures,
            "ratio": round(ratio, 3), "ceiling": round(ceiling, 3)}


def py_spy_profiler(server: Server, out: Path) -> Callable[[int], subprocess.Popen[bytes]]:
    executable = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
        "py-spy")
    if executable is None:
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")

    def start(seconds: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([executable, "record", "--pid", str(server.process.pid),  # noqa: S603
                                 # --gil: samples of the thread holding the GIL only, so a
                                 # thread waiting on PostgreSQL or for the GIL is not counted
                                 # as work (the workers are CPU-bound under this load).
                                 "--subprocesses", "--nonblocking", "--gil", "--rate", "250",
                                 "--duration", str(seconds), "--format", "raw", "-o", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return start


OUR_FRAME = re.compile(r"\((?:app|auth|consent|core|ehr|notifications)[/.]")
LINE_NUMBER = re.compile(r":\d+\)$")


def summarize_profile(path: Path, *, top: int = 25) -> dict[str, Any]:
    """Where the samples are: inclusive share of our functions, self share of any function."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    area_rules = (("PostgreSQL round trips (psycopg2 execute/commit)", ("psycopg2", "do_execute",
                                                                        "do_commit")),
                  ("AES-GCM (cryptography)", ("cryptography/",)),
                  ("marshmallow validation", ("marshmallow/",)),
                  ("SQLAlchemy ORM/Core (Python side)", ("sqlalchemy/",)),
                  ("gzip", ("gzip.py", "zlib")),
                  ("JSON encode/decode", ("json/",)),
                  ("Authlib", ("authlib/",)))
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        seen = set()
        for frame in frames:
            function = LINE_NUMBER.sub(")", frame)  # one entry per function, not per line
            if OUR_FRAME.search(function) and function not in seen:
                seen.add(function)
                inclusive[function] += count
        for name, needles in area_rules:
            if any(needle in frame for frame in frames for needle in needles):
                areas[name] += count
    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k.replace(str(ROOT) + "/", ""), round(100 * v / max(total, 1), 1))
                for k, v in counter.most_common(top)]
    return {"samples": total, "areas": share(areas), "inclusive": share(inclusive),
            "self": share(own)}


# --- output -------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def print_table(results: dict[str, Measured], routes: dict[str, Route]) -> None:
    print()
    header = (f"{'route':<42}{'req/s':>9}{'items/s':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
              f"{'vs base':>8}{'SQL':>6}{'1st':>5}{'commit':>7}{'solo ms':>9}{'cpu':>8}"
              f"{'in SQL':>8}  target")
    print(header)
    print("-" * (len(header) + 30))
    for key, result in results.items():
        route = routes[key]
        base = results.get(route.baseline) if route.baseline else None
        ratio = f"{result.rps / base.rps:.2f}×" if base else ""
        items = f"{result.items_per_s:,.0f}" if route.items > 1 else ""
        sql = "" if result.sql_statements is None else f"{result.sql_statements:.0f}"
        commits = "" if result.sql_commits is None else f"{result.sql_commits:.0f}"
        first = ("" if result.sql_statements_first is None
                 else f"{result.sql_statements_first:.0f}")
        verdicts = []
        for check in result.checks:
            mark = {True: "PASS", False: "FAIL", None: "n/a"}[check["ok"]]
            value = "" if check["value"] is None else f" ({check['value']:,})"
            verdicts.append(f"{check['target']}{value} {mark}")
        if result.failed_requests:
            verdicts.append(f"errors {result.errors}")
        print(f"{route.label:<42}{result.rps:>9,.0f}{items:>9}{result.p50_ms:>8.1f}"
              f"{result.p95_ms:>8.1f}{result.p99_ms:>8.1f}{ratio:>8}{sql:>6}{first:>5}"
              f"{commits:>7}{_num(result.solo_ms):>9}{_num(result.solo_cpu_ms):>8}"
              f"{_num(result.solo_sql_ms):>8}  "
              + "; ".join(verdicts))


def _as_json(result: Measured) -> dict[str, Any]:
    data = asdict(result) | {"rps": round(result.rps, 1)}
    for name in ("statements", "statements_first"):
        if len(data[name]) > 60:  # a batch: each statement once, with how often it ran
            grouped = Counter(line[11:] for line in data[name])
            data[name] = [f"{count}× {text}" for text, count in grouped.most_common()]
    return data


def compare_with(previous: Path, results: dict[str, Measured],
                 routes: dict[str, Route]) -> list[dict[str, Any]]:
    """Each record route against a smaller run (scale: ≥ 0.85× the figure). Besides raw req/s,
    the ratio of each route's share of its own baseline: the baselines absorb the machine's
    drift between the two runs (other work on a shared machine)."""
    earlier = {r["key"]: r for r in json.loads(previous.read_text())["results"]}
    rows = []
    for key, result in results.items():
        baseline = routes[key].baseline
        if key.startswith("baseline") or key not in earlier:
            continue
        value = result.items_per_s if routes[key].items > 1 else result.rps
        before = earlier[key]["items_per_s" if routes[key].items > 1 else "rps"]
        row: dict[str, Any] = {"key": key, "now": round(value, 1), "before": round(before, 1),
                               "ratio": round(value / before, 3) if before else None}
        if baseline and baseline in results and baseline in earlier:
            share_now = result.rps / results[baseline].rps
            share_before = earlier[key]["rps"] / earlier[baseline]["rps"]
            row["normalised"] = round(share_now / share_before, 3)
        deciding = row.get("normalised", row["ratio"])
        row["ok"] = deciding is not None and deciding >= 0.85
        rows.append(row)
    print(f"\nAgainst {previous} (target ≥ 0.85×; 'normalised' divides out each baseline):")
    for row in rows:
        normalised = f"  normalised {row['normalised']:.2f}×" if "normalised" in row else ""
        ratio = f"{row['ratio']:.2f}×" if row["ratio"] is not None else "n/a"
        print(f"  {row['key']:<10}{row['before']:>10,.1f} → {row['now']:>10,.1f}  {ratio}"
              f"{normalised}  {'PASS' if row['ok'] else 'FAIL'}")
    return rows


def print_statements(results: dict[str, Measured]) -> None:
    for result in results.values():
        print(f"\n{result.key}: {result.sql_statements} statements, {result.sql_commits} commits")
        if len(result.statements) > 40:  # a batch: group by statement
            grouped = Counter(line[11:] for line in result.statements)
            for statement, count in grouped.most_common():
                print(f"   {count:>4}× {statement[:150]}")
            continue
        for line in result.statements:
            print(f"    {line[:160]}")
        if result.statements_first:
            print(f"  first read of the citizen today: {result.sql_statements_first} statements")
            for line in result.statements_first:
                print(f"    {line[:160]}")


def print_profile(summary: dict[str, Any], route: str, out: Path) -> None:
    print(f"\nProfile of {route} ({summary['samples']:,} samples, raw stacks in {out}):")
    print("  by area (inclusive %):")
    for name, pct in summary["areas"]:
        print(f"    {pct:5.1f}%  {name}")
    print("  our functions (inclusive %):")
    for name, pct in summary["inclusive"]:
        print(f"    {pct:5.1f}%  {name}")
    print("  hottest frames (self %):")
    for name, pct in summary["self"][:15]:
        print(f"    {pct:5.1f}%  {name}")


# --- main ---------------------------------------------------------------------------------------


@dataclass
class BenchRun:
    """What one run needs: the served app, its tokens, the routes and their plan files."""

    server: Server
    routes: dict[str, Route]
    plans: dict[str, Path]
    password: str
    station: tuple[str, str]
    app: Any
    world: World
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, kind: str | None) -> str | None:
        """A fresh token for each measurement: access tokens live at most 15 minutes."""
        if kind is None:
            return None
        if kind == "doctor":
            self.tokens[kind] = doctor_token(self.server.base, self.password)
        else:
            self.tokens[kind] = station_token(self.server.base, *self.station)
        return self.tokens[kind]


BASELINE_GROUPS = (("baseline-read", ("entry", "summary", "list", "list-immunizations",
                                        "fhir-immunizations", "fhir-summary", "panel")),
                   ("baseline-insert", ("create", "batch")))


def _averaged(first: Measured, second: Measured) -> Measured:
    """A baseline measured before and after its routes: the mean, both kept in `runs`."""
    merged = Measured(**{**asdict(first), "runs": []})
    for name in ("rps", "items_per_s", "p50_ms", "p95_ms", "p99_ms"):
        setattr(merged, name, (getattr(first, name) + getattr(second, name)) / 2)
    merged.requests = first.requests + second.requests
    merged.errors = dict(Counter(first.errors) + Counter(second.errors))
    merged.load = (first.load[0], second.load[1])
    merged.runs = [{"rps": round(m.rps, 1), "p50_ms": m.p50_ms, "p95_ms": m.p95_ms,
                    "p99_ms": m.p99_ms} for m in (first, second)]
    return merged


def run_routes(session: BenchRun, keys: Sequence[str], args: argparse.Namespace,
               ) -> dict[str, Measured]:
    """Each baseline right before and right after the routes compared with it (a shared
    machine drifts: the ratio uses the mean of the two)."""
    def one(key: str) -> Measured:
        route = session.routes[key]
        profiler = (py_spy_profiler(session.server, args.profile_out)
                    if args.profile == key else None)
        return measure(route, base=session.server.base, token=session.token(route.auth),
                       plan=session.plans[key], args=args, profiler=profiler)

    results: dict[str, Measured] = {}
    for baseline, dependants in BASELINE_GROUPS:
        chosen = [key for key in dependants if key in keys]
        if baseline not in keys and not chosen:
            continue
        if any(session.routes[key].auth == "doctor" for key in chosen):
            with session.app.app_context():
                mark_read_today(session.world)
        before = one(baseline)
        for key in chosen:
            results[key] = one(key)
        results[baseline] = _averaged(before, one(baseline)) if chosen else before
    order = [key for key in ROUTE_ORDER if key in results]
    return {key: results[key] for key in order}


@dataclass(frozen=True)
class Variant:
    label: str
    env: dict[str, str]
    pgbouncer: bool


def parse_variants(specs: Sequence[str]) -> list[Variant]:
    variants = []
    for spec in specs:
        label, _, settings = spec.partition("=")
        env: dict[str, str] = {}
        through = False
        for word in settings.split():
            if word == "pgbouncer":
                through = True
            elif "=" in word:
                name, _, value = word.partition("=")
                env[name] = value
            else:
                sys.exit(f"--variant {spec!r}: {word!r} is neither KEY=VALUE nor pgbouncer")
        if not label or label in {v.label for v in variants}:
            sys.exit(f"--variant {spec!r}: a label of its own is needed")
        variants.append(Variant(label=label, env=env, pgbouncer=through))
    return variants


def run_variants(session: BenchRun, keys: Sequence[str], args: argparse.Namespace,
                 variants: Sequence[Variant], *, port: int, workdir: Path) -> dict[str, Any]:
    """The same routes served by one gunicorn per variant (its own settings, directly or through
    a transaction-mode PgBouncer), variants alternating in each of --rounds rounds; each
    route's req/s against the first variant's in the same round."""
    from tests.support.pgbouncer import start_pgbouncer

    bouncer = None
    if any(v.pgbouncer for v in variants):
        bouncer = start_pgbouncer(args.database_url, pool_size=args.pgbouncer_pool_size,
                                  max_client_conn=1000)
        print(f"pgbouncer: transaction pooling, {args.pgbouncer_pool_size} server connections, "
              f"port {bouncer.port}", flush=True)
    rounds: list[dict[str, dict[str, Measured]]] = []
    try:
        for number in range(1, args.rounds + 1):
            measured: dict[str, dict[str, Measured]] = {}
            for variant in variants:
                env = dict(variant.env)
                if variant.pgbouncer and bouncer is not None:
                    env["DATABASE_URL"] = bouncer.url
                print(f"round {number}, {variant.label}: {env or 'defaults'}", flush=True)
                session.server.stop()
                session.server = start_server(port=port, workers=args.workers,
                                              threads=args.threads, extra_env=env,
                                              log=workdir / f"gunicorn-{variant.label}.log")
                measured[variant.label] = run_routes(session, keys, args)
                if "Traceback" in session.server.log.read_text(errors="replace"):
                    print(f"  ({variant.label}: tracebacks in {session.server.log})")
            rounds.append(measured)
    finally:
        if bouncer is not None:
            bouncer.stop()
    return print_variants(rounds, variants, session.routes)


def print_variants(rounds: Sequence[dict[str, dict[str, Measured]]],
                   variants: Sequence[Variant], routes: dict[str, Route]) -> dict[str, Any]:
    reference = variants[0].label
    print(f"\nVariants against {reference!r}, same run (req/s; ratio to {reference!r} in the same "
          "round; 'vs base': the route against its own baseline under that variant):")
    rows: list[dict[str, Any]] = []
    for number, measured in enumerate(rounds, start=1):
        for key in measured[reference]:
            line = f"  round {number}  {key:<18}"
            for variant in variants:
                result = measured[variant.label][key]
                base_key = routes[key].baseline
                base = measured[variant.label].get(base_key) if base_key else None
                ratio = result.rps / measured[reference][key].rps
                share = result.rps / base.rps if base else None
                line += (f"  {variant.label} {result.rps:7,.0f} ({ratio:.2f}×"
                         + (f", vs base {share:.2f}×" if share else "") + ")"
                         + (f" ERRORS {result.errors}" if result.errors else ""))
                rows.append({"round": number, "variant": variant.label, "key": key,
                             "rps": round(result.rps, 1), "p99_ms": result.p99_ms,
                             "vs_reference": round(ratio, 3),
                             "vs_baseline": round(share, 3) if share else None,
                             "errors": result.errors})
            print(line)
    return {"reference": reference,
            "variants": [{"label": v.label, "env": v.env, "pgbouncer": v.pgbouncer}
                         for v in variants], "rows": rows}


def compare_audit(session: BenchRun, args: argparse.Namespace) -> dict[str, Any]:
    """The entry read with an empty audit table, then with --audit-rows synthetic events."""
    keys = ("baseline-read", "entry")
    print("audit comparison: emptying audit_events and audit_chain_heads", flush=True)
    with session.app.app_context():
        empty_audit_tables()
    empty = run_routes(session, keys, args)
    with session.app.app_context():
        ensure_audit_rows(target=args.audit_rows, url=args.database_url, jobs=args.jobs)
    full = run_routes(session, keys, args)
    ratio = full["entry"].rps / empty["entry"].rps
    baseline_drift = full["baseline-read"].rps / empty["baseline-read"].rps
    print(f"\nentry read with an empty audit table: {empty['entry'].rps:,.0f} req/s "
          f"(p99 {empty['entry'].p99_ms:.1f} ms); with {args.audit_rows:,} audit rows: "
          f"{full['entry'].rps:,.0f} req/s (p99 {full['entry'].p99_ms:.1f} ms)")
    print(f"ratio {ratio:.3f} (target ≥ 0.9: {'PASS' if ratio >= 0.9 else 'FAIL'}); "
          f"baseline read drifted {baseline_drift:.3f}× meanwhile")
    return {"audit_rows": args.audit_rows, "ratio": round(ratio, 3), "ok": ratio >= 0.9,
            "baseline_drift": round(baseline_drift, 3),
            "empty": [_as_json(r) for r in empty.values()],
            "full": [_as_json(r) for r in full.values()]}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if os.environ.get("APP_ENV") == "production":
        sys.exit("bench/api.py seeds and writes records: refused with APP_ENV=production")
    if not args.database_url.startswith(("postgresql://", "postgres://")):
        sys.exit("bench/api.py measures PostgreSQL: give a postgresql:// --database-url")
    keys = [k.strip() for k in args.routes.split(",") if k.strip()]
    unknown = sorted(set(keys) - set(ROUTE_ORDER))
    if unknown:
        sys.exit(f"unknown routes: {', '.join(unknown)}")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="phr-bench-api-") as tmp:
        workdir = Path(tmp)
        (workdir / "prometheus").mkdir()
        ensure_database(args.database_url)
        bench_keys(args.database_url, workdir=workdir, reseed=args.reseed)
        prepare_environment(database_url=args.database_url, port=port, workdir=workdir)
        app = make_app()
        with app.app_context():
            prepare_schema()
            world = ensure_world()
            seed(target=args.citizens, world=world, jobs=args.jobs)
            ensure_baseline_rows(args.citizens * 10)
            if args.seed_only:
                return
            if args.audit_rows and not args.compare_audit:
                ensure_audit_rows(target=args.audit_rows, url=args.database_url, jobs=args.jobs)
            refresh_statistics()
            routes = build_routes(world)
            password = doctor_password(world)
            station = station_client(world)
            from core.db import db

            db.session.remove()
        plans = {key: write_plan(route, workdir) for key, route in routes.items()}
        print(f"serving: gunicorn, {args.workers} workers × {args.threads} threads (gthread), "
              f"LOG_LEVEL=WARNING (no access-log lines), NOTIFICATIONS_WORKER=none; "
              f"wrk {args.connections} connections ({args.batch_connections} for the batch), "
              f"{args.wrk_threads} threads, {args.warmup} s warm-up + {args.duration} s per route "
              f"(60 s for the batch)", flush=True)
        server = start_server(port=port, workers=args.workers, threads=args.threads,
                              log=workdir / "gunicorn.log")
        session = BenchRun(server=server, routes=routes, plans=plans, password=password,
                          station=station, app=app, world=world)
        output: dict[str, Any] = {
            "command": " ".join([".venv/bin/python", "bench/api.py", *sys.argv[1:]]),
            "citizens": args.citizens, "database": database_name(args.database_url),
            "server": {"workers": args.workers, "threads": args.threads,
                       "worker_class": "gthread", "log_level": "WARNING"},
            "load": {"connections": args.connections, "wrk_threads": args.wrk_threads,
                     "batch_connections": args.batch_connections,
                     "duration_s": args.duration, "warmup_s": args.warmup},
            "cores": os.cpu_count(),
        }
        try:
            if args.compare_audit:
                output["audit_compare"] = compare_audit(session, args)
                results: dict[str, Measured] = {}
            elif args.variant:
                output["variants"] = run_variants(session, keys, args,
                                                  parse_variants(args.variant), port=port,
                                                  workdir=workdir)
                results = {}
            else:
                with app.app_context():
                    output["audit_rows"] = synthetic_audit_rows()
                results = run_routes(session, keys, args)
        finally:
            log_tail = session.server.log.read_text(errors="replace")[-3000:]
            session.server.stop()
        standing = standing_outcomes(workdir / "prometheus")
        if standing:
            # How many single reads the workers served under a standing decision (one
            # statement) and how many carried one that did not hold (consent/standing.py).
            print("standing decisions in the gunicorn workers: " + ", ".join(
                f"{outcome} {count:,.0f}" for outcome, count in sorted(standing.items())))
            output["standing_reads"] = standing
        if results:
            with app.app_context():
                evaluate(routes, results)
            count_statements(app, routes, results, session.tokens)
            print_table(results, routes)
            if args.cprofile:
                cprofile_route(app, routes[args.cprofile], session.tokens)
            if args.cpu_ab:
                output["cpu_ab"] = cpu_ab(app, routes, args.cpu_ab, session.tokens)
            if args.show_sql:
                print_statements(results)
            output["results"] = [_as_json(r) for r in results.values()]
            if args.compare_to:
                output["compare_to"] = compare_with(args.compare_to, results, routes)
        if args.profile and args.profile_out.exists():
            summary = summarize_profile(args.profile_out)
            print_profile(summary, args.profile, args.profile_out)
            output["profile"] = {"route": args.profile, **summary}
        if "Traceback" in log_tail:
            print("\ngunicorn log tail:\n" + log_tail)
        if args.json:
            args.json.write_text(json.dumps(output, ensure_ascii=False, indent=2) + "\n",
                                 encoding="utf-8")
            print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
