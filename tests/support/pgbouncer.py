"""A PgBouncer of the run's own in transaction pooling mode, as production puts one in front of
PostgreSQL (Debian's pgbouncer 1.18: nothing session-level, prepared statements included,
survives from one transaction to the next, which may land on another server connection).

Used by tests/core/test_pgbouncer.py, bench/api.py --pgbouncer, and .ci/run's smoke subset:

    .venv/bin/python -m tests.support.pgbouncer postgresql://postgres@127.0.0.1:5432/db \\
        -- .venv/bin/python -m pytest tests/e2e

runs the command with TEST_DATABASE_URL pointing at the pooler and TEST_DATABASE_ADMIN_URL at
PostgreSQL itself (the suite resets its schema there), and stops the pooler afterwards.

A process of its own (never the system service), listening on a free 127.0.0.1 port, with a
generated ini in a temporary directory: auth_type trust with the target URL's user in the
auth_file (the password, if the URL has one, goes to the server side only).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

_SEARCH_PATH = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")


def pgbouncer_binary() -> str | None:
    """The pgbouncer executable (Debian installs it in /usr/sbin, often not on PATH), or None."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    for directory in _SEARCH_PATH:
        candidate = Path(directory) / "pgbouncer"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _quote(value: str) -> str:
    # libpq-style value in the [databases] line
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# Runs beside pgbouncer: when the process that started it dies without stopping it (a killed
# test run), pgbouncer is stopped too instead of lingering. (A parent-death signal would not do:
# `-u postgres` changes pgbouncer's user, which clears it.)
_WATCHDOG = """
import os, shutil, signal, sys, time
parent, child = os.getppid(), int(sys.argv[1])
while os.getppid() == parent:
    time.sleep(1)
try:
    os.kill(child, signal.SIGTERM)
except ProcessLookupError:
    pass
time.sleep(1)
shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


@dataclass
class PgBouncer:
    """A running pgbouncer; `url` is the target URL with the pooler's host and port."""

    process: subprocess.Popen[bytes]
    directory: Path
    url: str
    port: int
    watchdog: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.watchdog is not None and self.watchdog.poll() is None:
            self.watchdog.kill()
            self.watchdog.wait()
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: immediate shutdown, clients disconnected
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_pgbouncer(target_url: str, *, pool_size: int = 4, pool_mode: str = "transaction",
                    max_client_conn: int = 400, round_robin: bool = False) -> PgBouncer:
    """Start pgbouncer in front of `target_url`'s database; raises RuntimeError when there is
    no pgbouncer binary or it does not come up.

    `round_robin` hands each transaction the next idle server connection instead of the most
    recently used one (pgbouncer's default, which keeps a sequential client on one server
    connection and hides what breaks when a later transaction lands elsewhere)."""
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError("pgbouncer is not installed (apt-get install -y pgbouncer)")
    parts = urlsplit(target_url.replace("postgresql+psycopg2://", "postgresql://", 1))
    database = unquote(parts.path.lstrip("/"))
    user = unquote(parts.username or "postgres")
    if not database:
        raise ValueError("the target URL names no database")
    server = [f"host={parts.hostname or '127.0.0.1'}", f"port={parts.port or 5432}",
              f"dbname={_quote(database)}", f"user={_quote(user)}"]
    if parts.password:
        server.append(f"password={_quote(unquote(parts.password))}")

    directory = Path(tempfile.mkdtemp(prefix="phr-pgbouncer-"))
    port = _free_port()
    (directory / "userlist.txt").write_text(f'"{user}" ""\n')
    (directory / "pgbouncer.ini").write_text("\n".join([
        "[databases]",
        f"{database} = {' '.join(server)}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {directory / 'userlist.txt'}",
        f"pool_mode = {pool_mode}",
        f"default_pool_size = {pool_size}",
        "min_pool_size = 0",
        "reserve_pool_size = 0",
        f"max_client_conn = {max_client_conn}",
        "max_db_connections = 0",
        f"server_round_robin = {int(round_robin)}",
        "ignore_startup_parameters = extra_float_digits",
        "admin_users =",
        "",
    ]))
    command = [binary]
    if os.geteuid() == 0:
        # pgbouncer refuses to run as root: switch to the postgres account, which must then
        # read the ini and auth file.
        command += ["-u", "postgres"]
        directory.chmod(0o755)
        for path in directory.iterdir():
            path.chmod(0o644)
    command.append(str(directory / "pgbouncer.ini"))
    log = (directory / "pgbouncer.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                               start_new_session=True)
    log.close()
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(process.pid),
                                 str(directory)],  # noqa: S603
                                start_new_session=True)
    url = parts._replace(netloc=_netloc(parts.netloc, port)).geturl()
    bouncer = PgBouncer(process=process, directory=directory, url=url, port=port,
                        watchdog=watchdog)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = bouncer.log
            bouncer.stop()
            raise RuntimeError(f"pgbouncer exited ({process.returncode}): {text[-1500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return bouncer
        except OSError:
            time.sleep(0.1)
    text = bouncer.log
    bouncer.stop()
    raise RuntimeError(f"pgbouncer did not listen on {port}: {text[-1500:]}")


def _netloc(netloc: str, port: int) -> str:
    credentials, _, _ = netloc.rpartition("@")
    return f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a command with TEST_DATABASE_URL behind a transaction-mode pgbouncer.")
    parser.add_argument("target", help="postgresql:// URL of the database behind the pooler")
    parser.add_argument("--pool-size", type=int, default=4)
    parser.add_argument("--round-robin", action="store_true",
                        help="spread transactions over the server connections")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (after --)")
    with start_pgbouncer(args.target, pool_size=args.pool_size,
                         round_robin=args.round_robin) as bouncer:
        print(f"pgbouncer (transaction pooling, pool {args.pool_size}) on port {bouncer.port}",
              file=sys.stderr, flush=True)
        env = {**os.environ, "TEST_DATABASE_URL": bouncer.url,
               "TEST_DATABASE_ADMIN_URL": args.target}
        done = subprocess.run(command, env=env, check=False)  # noqa: S603
        if done.returncode:
            print("pgbouncer log tail:\n" + bouncer.log[-2000:], file=sys.stderr)
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
