"""Vault benchmark (not a test): field encryption throughput and the cost of decrypting on reads.

    .venv/bin/python bench/vault.py                      # SQLite file in a temporary directory
    .venv/bin/python bench/vault.py --database-url postgresql://postgres@127.0.0.1:5432/phr_bench

Prints two tables: encrypt/decrypt throughput per field kind (text, date, json) and the time to
load 1,000 citizens reading only clear columns, three decrypted fields, or all of them, with the
ratio to the clear read. Keys are generated into a temporary directory; on PostgreSQL the
schema is upgraded to the head migration and the benchmark's citizens are deleted afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

THREE_FIELDS = ("full_name", "date_of_birth", "sex")  # what a list of people shows
ALL_FIELDS = ("health_id", "social_insurance_code", "full_name", "date_of_birth", "sex",
              "phone", "email", "address", "ethnicity")
CLEAR_COLUMNS = ("id", "status", "preferred_language")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--citizens", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (best kept)")
    parser.add_argument("--ops", type=int, default=20_000, help="operations per field kind")
    return parser.parse_args()


def prepare_environment(workdir: Path, database_url: str) -> str:
    """Development keys in ``workdir`` (never instance/) and the database URL to use."""
    from core.config import load_config

    load_config(root=workdir, environ={"APP_ENV": "development"})
    keys = workdir / "instance" / "keys"
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
    return database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"


def best_seconds(run: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` runs: slower ones measure other processes (as timeit says)."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return min(timings)


# Field kinds -----------------------------------------------------------------------------------


def field_throughput(ops: int, repeat: int) -> list[tuple[str, float, float]]:
    """(kind, encrypt µs/op, decrypt µs/op) with one data key, as the key ring uses it."""
    from core.encryption import decrypt_value, encrypt_value
    from core.vault import FieldCipher, FieldContext, new_data_key

    cipher = FieldCipher(key_id=uuid.uuid4(), data_key=new_data_key())
    context = FieldContext(table="citizens", column="full_name", row_id=str(uuid.uuid4()),
                           citizen_id=str(uuid.uuid4()))
    samples = {
        "text": "Nguyễn Thị Ngọc Ánh",
        "date": dt.date(1987, 4, 23),
        "json": {"province_code": "79", "district_code": "760", "commune_code": "26734",
                 "line": "Số 12 đường Nguyễn Thị Minh Khai"},
    }
    rows = []
    for kind, value in samples.items():
        ciphertext = encrypt_value(cipher, kind, value, context)
        enc = best_seconds(
            lambda kind=kind, value=value: [encrypt_value(cipher, kind, value, context)
                                            for _ in range(ops)], repeat)
        dec = best_seconds(
            lambda kind=kind, ct=ciphertext: [decrypt_value(cipher, kind, ct, context)
                                              for _ in range(ops)], repeat)
        rows.append((kind, enc / ops * 1e6, dec / ops * 1e6))
    return rows


def unwrap_cost(ops: int, repeat: int) -> float:
    """µs to unwrap one data key with the configured KEK provider (once per key per request)."""
    from core.encryption import vault_settings
    from core.vault import new_data_key

    provider = vault_settings().provider
    kek_id, wrapped = provider.wrap(new_data_key())
    seconds = best_seconds(lambda: [provider.unwrap(kek_id, wrapped) for _ in range(ops)],
                             repeat)
    return seconds / ops * 1e6


# Reading citizens ------------------------------------------------------------------------------


def seed(count: int) -> list[uuid.UUID]:
    from core.db import db
    from registry.reference.health_id import make_health_id
    from registry.services import register_citizen

    ids = []
    base = secrets.randbelow(900_000)
    for index in range(count):
        born = dt.date(1940 + index % 80, 1 + index % 12, 1 + index % 28)
        sex = ("male", "female")[index % 2]
        citizen = register_citizen(
            session=db.session,
            health_id=make_health_id(province_code="001", date_of_birth=born, sex=sex,
                                     serial=(base + index) % 1_000_000),
            full_name=f"Nguyễn Văn Thử {index}", date_of_birth=born, sex=sex,
            phone=f"09{secrets.randbelow(10**8):08d}", email=f"bench{index}@example.vn",
            address={"province_code": "01", "line": f"Số {index} phố Huế"},
            ethnicity="Kinh", social_insurance_code=f"{secrets.randbelow(10**10):010d}",
        )
        ids.append(citizen.id)
        if index % 200 == 199:
            db.session.commit()
    db.session.commit()
    db.session.remove()
    return ids


def read_citizens(ids: list[uuid.UUID], fields: tuple[str, ...], *, preload: bool) -> int:
    """Load the citizens in a new session (new key ring) and touch ``fields``."""
    from sqlalchemy import select

    from core.db import db
    from core.encryption import keyring
    from registry.models import Citizen

    db.session.remove()
    citizens = list(db.session.scalars(select(Citizen).where(Citizen.id.in_(ids))))
    if preload:
        keyring(db.session()).preload(c.id for c in citizens)
    touched = 0
    for citizen in citizens:
        for name in fields:
            touched += getattr(citizen, name) is not None
    db.session.remove()
    return touched


def read_costs(ids: list[uuid.UUID], repeat: int) -> list[tuple[str, float]]:
    cases = [
        ("clear columns only (id, status, language)", CLEAR_COLUMNS, False),
        ("3 fields, keys fetched one by one", THREE_FIELDS, False),
        ("3 fields, keys preloaded (1 query)", THREE_FIELDS, True),
        ("all 9 fields, keys preloaded", ALL_FIELDS, True),
    ]
    read_citizens(ids, ALL_FIELDS, preload=True)  # warm the database cache and the pool
    return [(label, best_seconds(lambda f=f, p=p: read_citizens(ids, f, preload=p), repeat))
            for label, f, p in cases]


def cleanup(ids: list[uuid.UUID]) -> None:
    from sqlalchemy import delete

    from core.db import db
    from core.encryption import DataKey
    from registry.models import Citizen

    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        db.session.execute(delete(Citizen).where(Citizen.id.in_(chunk)))
        db.session.execute(delete(DataKey).where(DataKey.citizen_id.in_(chunk)))
    db.session.commit()


def print_tables(database: str, count: int, repeat: int,
                 kinds: list[tuple[str, float, float]], unwrap_us: float,
                 reads: list[tuple[str, float]]) -> None:
    print(f"Field encryption (AES-256-GCM, one data key; best of {repeat})")
    print(f"{'kind':<8}{'encrypt µs/op':>15}{'decrypt µs/op':>15}{'decrypts/s':>13}")
    for kind, enc, dec in kinds:
        print(f"{kind:<8}{enc:>15.1f}{dec:>15.1f}{1e6 / dec:>13,.0f}")
    print(f"unwrap one data key (KEK provider): {unwrap_us:.1f} µs")
    print()
    print(f"Reading {count:,} citizens on {database} (new session each time; best of {repeat})")
    baseline = reads[0][1]
    print(f"{'read':<44}{'ms':>9}{'µs/citizen':>12}{'ratio':>8}")
    for label, seconds in reads:
        print(f"{label:<44}{seconds * 1e3:>9.1f}{seconds / count * 1e6:>12.1f}"
              f"{seconds / baseline:>8.2f}")


def main() -> None:
    args = parse_args()
    if os.environ.get("APP_ENV") == "production":
        sys.exit("bench/vault.py writes test citizens: refused with APP_ENV=production")
    with tempfile.TemporaryDirectory(prefix="phr-bench-") as tmp:
        url = prepare_environment(Path(tmp), args.database_url)
        from flask_migrate import upgrade

        from app import create_app
        from core.config import engine_options

        app = create_app({"SQLALCHEMY_DATABASE_URI": url,
                          "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url)})
        database = "PostgreSQL" if url.startswith("postgres") else "SQLite (file, WAL)"
        with app.app_context():
            upgrade()
            kinds = field_throughput(args.ops, args.repeat)
            unwrap_us = unwrap_cost(args.ops // 10, args.repeat)
            ids = seed(args.citizens)
            try:
                reads = read_costs(ids, args.repeat)
            finally:
                if args.database_url:
                    cleanup(ids)
            print_tables(database, args.citizens, args.repeat, kinds, unwrap_us, reads)


if __name__ == "__main__":
    main()
