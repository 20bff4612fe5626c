"""The restore drill (issue 19): pg_dump → a new database → `vault verify` and `audit verify`.

A backup restored with its key file verifies to exactly what the source verified to; a person
crypto-shredded before the backup stays erased in the restored copy (reported as erased, not as
a failure); a restore opened with a wrong key file, or with none, stops with one clear error
line, never a stack trace. PostgreSQL only: the drill is pg_dump and pg_restore.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from core.config import normalize_database_url
from core.db import db
from core.encryption import ERASED, KEY_DESTROYED, DataKey
from core.restore_drill import ROOT, count_rows
from core.vault.kek import LocalKeyFileKekProvider
from registry.models import Citizen
from tests.ehr.samples import SAMPLES
from tests.support.practice import Practice, small_practice

# About a minute each on a busy 2-core machine (pg_restore of 150 partitions, two flask
# processes): `make test-long`, which .ci/run runs on PostgreSQL.
pytestmark = [pytest.mark.postgres, pytest.mark.long]


@pytest.fixture
def pg(app: Any, database_url: str) -> Any:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (set TEST_DATABASE_URL): the drill is pg_dump/pg_restore")
    return app


def cli(app: Any, *args: str) -> tuple[int, dict[str, Any], str]:
    result = app.test_cli_runner().invoke(args=list(args))
    lines = result.stdout.strip().splitlines()
    document = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return result.exit_code, document, result.output


def fill_records(client: Any, practice: Practice) -> None:
    """Entries written by the doctor and read by each person: audit chains, encrypted rows,
    stored idempotent answers."""
    for index, person in enumerate(practice.people):
        for section in ("allergies", "conditions", "immunizations"):
            response = client.post(
                f"/api/v1/citizens/{person}/{section}", json=SAMPLES[section][0],
                headers={**practice.doctor.headers,
                         "Idempotency-Key": f"drill-{index}-{section}"})
            assert response.status_code == 201, response.get_json()
        summary = client.get(f"/api/v1/citizens/{person}/summary",
                             headers=practice.tokens[person].headers)
        assert summary.status_code == 200, summary.get_json()


@contextlib.contextmanager
def kept_copy(database_url: str, report: dict[str, Any]) -> Iterator[str]:
    """The scratch database a `--keep` drill left, dropped on the way out."""
    url = make_url(normalize_database_url(database_url))
    copy = url.set(database=report["scratch"]).render_as_string(hide_password=False)
    try:
        yield copy
    finally:
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{report["scratch"]}" WITH (FORCE)'))
        admin.dispose()


def database_exists(database_url: str, name: str) -> bool:
    admin = create_engine(make_url(normalize_database_url(database_url)).set(database="postgres"))
    try:
        with admin.connect() as connection:
            return connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                      {"n": name}).first() is not None
    finally:
        admin.dispose()


def flask_verify(database_url: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """`flask vault verify` in a process of its own, as an operator runs it on a restore."""
    environ = {**os.environ, "DATABASE_URL": database_url, "NOTIFICATIONS_WORKER": "none"}
    for name, value in env.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", "vault", "verify"],
                          cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120,
                          check=False)


def test_the_drill_restores_what_verifies_and_a_shredded_person_stays_erased(
        pg, client, database_url, log_stream, tmp_path):
    app = pg
    code, seeded, output = cli(app, "seed", "demo", "--out", str(tmp_path / "demo.json"))
    assert code == 0, output
    practice = small_practice(app, client, people=3)
    fill_records(client, practice)
    shredded, kept = practice.people[0], practice.people[1]
    code, _, output = cli(app, "vault", "shred", "--citizen", str(shredded), "--yes")
    assert code == 0, output

    # What the source verifies to: the restored copy must verify to the same.
    code, source_vault, output = cli(app, "vault", "verify")
    assert code == 0, output
    assert source_vault["erased"] > 0  # the shredded person's fields
    code, source_audit, output = cli(app, "audit", "verify")
    assert code == 0, output
    assert source_audit["ok"] is True
    source_tables, source_rows = count_rows(database_url)

    code, report, output = cli(app, "vault", "restore-drill", "--keep")
    assert code == 0, output
    print(json.dumps(report))  # the figures README's "Reliability" table quotes (pytest -s)
    with kept_copy(database_url, report) as copy:
        assert report["ok"] is True
        assert report["dump_bytes"] > 0
        assert (report["tables"], report["rows"]) == (source_tables, source_rows)
        assert set(report["seconds"]) == {"dump", "restore", "vault_verify", "audit_verify"}
        assert {k: report["vault"][k] for k in ("checked", "failed", "erased")} == {
            k: source_vault[k] for k in ("checked", "failed", "erased")}
        assert report["audit"]["events"] == source_audit["events"] > 0
        assert report["audit"]["ok"] is True

        # The restored copy, opened as a restored service would: the shredded person's fields
        # are erased for good, their blind index is gone, the others read as before.
        from tests.conftest import make_app

        restored = make_app(copy, log_stream)
        with restored.app_context():
            assert db.session.get(Citizen, shredded).full_name is ERASED
            assert db.session.get(Citizen, shredded).phone_bidx is None
            assert db.session.get(Citizen, kept).full_name == practice.names[kept]
            keys = db.session.scalars(select(DataKey).where(DataKey.citizen_id == shredded)).all()
            assert keys
            assert all(k.status == KEY_DESTROYED and k.wrapped_key is None for k in keys)
            db.session.remove()
            # The audit log is append-only in the copy too: the trigger came back with it.
            with db.engine.connect() as connection, pytest.raises(DBAPIError) as refused:
                connection.execute(text("UPDATE audit_events SET rule = 'rewritten'"))
            assert "append-only" in str(refused.value)
            db.engine.dispose()
    assert not database_exists(database_url, report["scratch"])


def test_a_restore_without_its_key_file_stops_with_one_clear_error(pg, client, database_url,
                                                                    tmp_path):
    app = pg
    practice = small_practice(app, client, people=2)
    fill_records(client, practice)
    stranger_keys = tmp_path / "other-kek.json"
    LocalKeyFileKekProvider.generate(stranger_keys)

    # The drill with another service's key file: it fails, says why, drops its copy.
    code, report, output = cli(app, "vault", "restore-drill", "--kek-file", str(stranger_keys),
                               "--keep")
    assert code == 1, output
    assert report["ok"] is False
    assert report["audit"]["ok"] is True
    assert "does not hold" in report["vault"]["error"]
    assert "Traceback" not in output
    with kept_copy(database_url, report) as copy:
        # A key file with the right KEK id but other key material.
        own = json.loads(Path(os.environ["VAULT_KEK_FILE"]).read_text())
        forged = tmp_path / "forged-kek.json"
        forged.write_text(json.dumps({"active": own["active"], "keys": {
            own["active"]: base64.b64encode(secrets.token_bytes(32)).decode()}}))
        forged.chmod(0o600)
        wrong = flask_verify(copy, VAULT_KEK_FILE=str(forged))
        # No key file at all, in production: the configuration names what is missing.
        missing = flask_verify(copy, APP_ENV="production", VAULT_KEK_FILE=None,
                               VAULT_KEK_JSON=None)
        # And with the right one, the same copy verifies.
        right = flask_verify(copy)
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines()[-1] == (
        f"Error: the configured key file ({forged}) holds KEK {own['active']} but it does not "
        "open this database's data keys: the key file is not the one that belongs with this "
        "database")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: VAULT_KEK_FILE must be set when APP_ENV=production"
    for result in (wrong, missing):
        assert "Traceback" not in result.stdout + result.stderr
    assert right.returncode == 0, right.stderr
    assert json.loads(right.stdout)["failed"] == 0
