"""The restore drill: a backup comes back readable with its key file, and verifiably whole.

`flask --app app vault restore-drill` (PostgreSQL only) takes a backup of the configured
database with ``pg_dump -Fc`` (or restores a backup file given with ``--dump``), restores it with
``pg_restore --no-owner`` into a new scratch database on the same server, runs ``vault verify``
and ``audit verify`` against the restored copy in separate processes (the configured key file,
or ``--kek-file``), reports counts and timings as one JSON line, and drops the scratch database.

The checks run as ``flask`` subprocesses rather than in this process: they open the restored
copy exactly as a restored service would (its own configuration, its own key file), and core
imports no domain package (the audit log belongs to ``consent``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from core.config import normalize_database_url

ROOT = Path(__file__).resolve().parent.parent
_NAME_LIMIT = 63  # PostgreSQL identifiers


class DrillError(RuntimeError):
    """The drill could not run (not PostgreSQL, pg_dump or pg_restore failed)."""


@dataclass
class DrillReport:
    """What the drill did; `as_dict` is the JSON line the command prints (no personal data)."""

    source: str
    scratch: str
    dump_bytes: int = 0
    tables: int = 0
    rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    vault: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    dropped: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.vault.get("ok")) and bool(self.audit.get("ok"))

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "source": self.source, "scratch": self.scratch,
                "dump_bytes": self.dump_bytes, "tables": self.tables, "rows": self.rows,
                "seconds": self.seconds, "vault": self.vault, "audit": self.audit,
                "dropped": self.dropped}


def libpq_url(url: str | URL) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq (pg_dump, pg_restore) reads it."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "postgresql":
        raise DrillError("the restore drill needs PostgreSQL (DATABASE_URL=postgresql://…)")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def scratch_name(source: str) -> str:
    """A new database name beside the source's: <source>_drill_<UTC time>_<random>."""
    suffix = f"_drill_{datetime.now(UTC):%Y%m%d%H%M%S}_{secrets.token_hex(3)}"
    return source[: _NAME_LIMIT - len(suffix)] + suffix


def run_drill(
    database_url: str, *, dump: Path | None = None, kek_file: Path | None = None,
    keep: bool = False, environ: Mapping[str, str] | None = None,
) -> DrillReport:
    """Dump (unless given a dump), restore into a scratch database, verify, drop."""
    source = make_url(normalize_database_url(database_url))
    libpq_url(source)  # PostgreSQL only
    name = source.database or "phr"
    report = DrillReport(source=name, scratch=scratch_name(name))
    scratch = source.set(database=report.scratch)
    with tempfile.TemporaryDirectory(prefix="phr-restore-drill-") as workdir:
        if dump is None:
            dump = Path(workdir) / "backup.dump"
            with _timed(report, "dump"):
                _run(["pg_dump", "--format=custom", "--file", str(dump),
                     "--dbname", libpq_url(source)], "pg_dump")
        report.dump_bytes = dump.stat().st_size
        _create_database(source, report.scratch)
        try:
            with _timed(report, "restore"):
                _run(["pg_restore", "--no-owner", "--exit-on-error",
                     "--dbname", libpq_url(scratch), str(dump)], "pg_restore")
            report.tables, report.rows = count_rows(scratch)
            env = _check_environment(scratch, kek_file, environ)
            with _timed(report, "vault_verify"):
                report.vault = _flask_check(["vault", "verify"], env,
                                            ok=lambda doc: doc.get("failed") == 0)
            with _timed(report, "audit_verify"):
                report.audit = _flask_check(["audit", "verify"], env,
                                            ok=lambda doc: doc.get("ok") is True)
        finally:
            if not keep:
                _drop_database(source, report.scratch)
                report.dropped = True
    return report


@contextlib.contextmanager
def _timed(report: DrillReport, step: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        report.seconds[step] = round(time.monotonic() - started, 3)


def _run(command: list[str], name: str) -> None:
    # Fixed tools (pg_dump, pg_restore) with arguments this module built: no shell.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        # pg_dump and pg_restore name objects, never row contents; the URL is not repeated.
        detail = result.stderr.strip().splitlines()
        raise DrillError(f"{name} failed (exit {result.returncode}): "
                         + (detail[-1] if detail else "no message"))


def _admin_engine(source: URL) -> Any:
    # CREATE and DROP DATABASE cannot run in a transaction, nor connected to their target.
    return create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT",
                         poolclass=NullPool)


def _create_database(source: URL, name: str) -> None:
    _administer(source, f'CREATE DATABASE "{name}"')


def _drop_database(source: URL, name: str) -> None:
    _administer(source, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _administer(source: URL, statement: str) -> None:
    engine = _admin_engine(source)
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def count_rows(url: URL | str) -> tuple[int, int]:
    """Tables of the application schema (partitioned parents count their partitions) and rows."""
    engine = create_engine(normalize_database_url(str(url)) if isinstance(url, str) else url,
                           poolclass=NullPool)
    try:
        with engine.connect() as connection:
            tables = connection.execute(text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
                "AND NOT c.relispartition ORDER BY 1")).scalars().all()
            # Names from the catalogue, quoted.
            rows = sum(connection.execute(
                text(f'SELECT count(*) FROM "{table}"')).scalar_one()  # noqa: S608
                for table in tables)
    finally:
        engine.dispose()
    return len(tables), rows


def _check_environment(scratch: URL, kek_file: Path | None,
                       environ: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env["DATABASE_URL"] = scratch.render_as_string(hide_password=False)
    env["NOTIFICATIONS_WORKER"] = "none"  # nothing may be sent from a restored copy
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if kek_file is not None:
        env["VAULT_KEK_FILE"] = str(kek_file)
        env.pop("VAULT_KEK_JSON", None)  # it would win over the file
    return env


def _flask_check(args: list[str], env: Mapping[str, str], *, ok: Any) -> dict[str, Any]:
    """Run `flask --app app <args>`; its JSON line plus ok, or its error message."""
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args],  # noqa: S603
                            cwd=ROOT, env=dict(env), capture_output=True, text=True,
                            check=False)
    lines = result.stdout.strip().splitlines()
    document: dict[str, Any] = {}
    with contextlib.suppress(ValueError, IndexError):
        parsed = json.loads(lines[-1])
        if isinstance(parsed, dict):
            document = parsed
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    if errors:
        document["error"] = errors[-1].removeprefix("Error:").strip()
    elif not document:
        document["error"] = f"exit {result.returncode} without a report"
    document["ok"] = result.returncode == 0 and bool(ok(document))
    return document
