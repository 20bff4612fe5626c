"""Portal page time against the JSON it shows (not a test): the issue's budget is "the home page
answers in at most twice the time of GET /api/v1/citizens/{id}/summary, in the same run".

    .venv/bin/python bench/portal.py                                   # PostgreSQL phr_bench_portal
    .venv/bin/python bench/portal.py --database-url sqlite:////tmp/phr-bench-portal.sqlite3
    .venv/bin/python bench/portal.py --requests 500 --json portal-bench.json

One database, seeded with the demo world (`flask seed demo`; a database whose name holds
"bench" is emptied first, any other is refused). One gunicorn worker with one thread (the
repo's gunicorn.conf.py otherwise) serves both routes, so both are answered by the same
process, one request at a time. The same person (the demo adult with hypertension and diabetes,
the richest home) asks for both: the portal page with the session cookie of a real login
through the login form, the summary with a bearer token of the phone app's client
(authorization code + PKCE). The requests are interleaved (page, summary, page, summary...)
on two keep-alive connections after a warm-up, so a slower or faster moment of a shared
machine falls on both alike. Prints p50/p95/mean of each and the ratios; the budget is p50
ratio <= 2. The home page's chart (trend.svg, a separate <img> request) is timed too, apart.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/phr_bench_portal"
KEY_FILES = {
    "VAULT_KEK_FILE": "kek.json",
    "BLIND_INDEX_KEY_FILE": "blind-index.key",
    "SECRET_KEY_FILE": "secret.key",
    "OAUTH_SIGNING_KEY_FILE": "oauth-signing.pem",
}
ROLE = "adult-chronic"
BUDGET_RATIO = 2.0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--requests", type=int, default=200, help="measured requests per route")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per route")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


# --- the database and the app ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def empty_database(url: str) -> None:
    """Start from an empty database: only a bench's own (name holding "bench")."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return
    import psycopg2
    from psycopg2 import sql

    name = urlsplit(url).path.lstrip("/")
    if "bench" not in name:
        sys.exit("the bench empties its database: use one whose name holds 'bench'")
    admin = psycopg2.connect(urlsplit(url)._replace(path="/postgres").geturl())
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    connection.close()


def prepare_environment(*, database_url: str, port: int, workdir: Path) -> None:
    """Development keys generated for this run, and the settings the app starts with."""
    from core.config import load_config

    load_config(root=workdir, environ={"APP_ENV": "development"})
    keys = workdir / "instance" / "keys"
    os.environ.pop("VAULT_KEK_JSON", None)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.update({name: str(keys / file) for name, file in KEY_FILES.items()})
    os.environ.update({
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "OAUTH_ISSUER": f"http://127.0.0.1:{port}",
        "NOTIFICATIONS_WORKER": "none",
        "LOG_LEVEL": "WARNING",
    })


def seed(workdir: Path) -> dict[str, Any]:
    """Migrate and seed the demo world (the portal's client follows the issuer's port)."""
    from flask_migrate import upgrade

    from app import create_app
    from core.db import db

    app = create_app()
    out = workdir / "demo.json"
    with app.app_context():
        upgrade()
        result = app.test_cli_runner().invoke(args=["seed", "demo", "--out", str(out)])
        if result.exit_code != 0:
            sys.exit(f"seed demo failed: {result.output}")
        db.engine.dispose()
    return json.loads(out.read_text(encoding="utf-8"))


class Server:
    """One gunicorn worker, one thread: both routes served by the same process."""

    def __init__(self, port: int, log: Path) -> None:
        import requests

        env = {**os.environ, "WEB_CONCURRENCY": "1", "WEB_THREADS": "1"}
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        handle = log.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and app
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}", "app:create_app()"],
            cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn exited; see {log}")
            try:
                if requests.get(self.base + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        sys.exit(f"gunicorn did not become ready; see {log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- logging in, as a browser and as the phone app ----------------------------------------------


def _submit_login(http: Any, authorize_url: str, who: dict[str, Any]) -> Any:
    form = http.get(authorize_url, headers={"Accept": "text/html"}, timeout=30)
    found = CSRF.search(form.text)
    if form.status_code != 200 or found is None:
        sys.exit(f"no login form ({form.status_code})")
    return http.post(authorize_url, headers={"Accept": "text/html"}, timeout=30,
                     allow_redirects=False, data={
                         "csrf_token": found.group(1), "action": "login",
                         "username": who["username"], "password": who["password"]})


def portal_session(base: str, who: dict[str, Any]) -> Any:
    """A browser-like session logged in to the portal through the real login form."""
    import requests

    http = requests.Session()
    started = http.get(base + "/login", allow_redirects=False, timeout=30)
    posted = _submit_login(http, base + started.headers["Location"], who)
    if posted.status_code != 302:
        sys.exit(f"portal login refused ({posted.status_code})")
    done = http.get(posted.headers["Location"], allow_redirects=False, timeout=30)
    if done.status_code != 303:
        sys.exit(f"portal callback refused ({done.status_code})")
    return http


def app_token(base: str, demo: dict[str, Any], who: dict[str, Any]) -> str:
    """The phone app's token for the same person (authorization code + PKCE S256)."""
    import requests

    client = demo["clients"]["mobile"]
    http = requests.Session()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    url = base + "/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client["client_id"],
        "redirect_uri": client["redirect_uri"], "scope": "openid patient/*.cruds",
        "state": "bench", "code_challenge": challenge, "code_challenge_method": "S256"})
    posted = _submit_login(http, url, who)
    code = parse_qs(urlsplit(posted.headers.get("Location", "")).query).get("code")
    if posted.status_code != 302 or not code:
        sys.exit(f"app login refused ({posted.status_code})")
    answer = http.post(base + "/oauth/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code[0], "client_id": client["client_id"],
        "redirect_uri": client["redirect_uri"], "code_verifier": verifier})
    if answer.status_code != 200:
        sys.exit(f"token refused ({answer.status_code})")
    return str(answer.json()["access_token"])


# --- measuring -----------------------------------------------------------------------------------


def timed(http: Any, url: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    answer = http.get(url, headers=headers or {}, allow_redirects=False, timeout=60)
    _ = answer.content
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        sys.exit(f"{url} answered {answer.status_code}")
    return elapsed


def figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
        "n": len(ordered),
    }


def measure(base: str, demo: dict[str, Any], *, count: int, warmup: int) -> dict[str, Any]:
    import requests

    who = next(c for c in demo["citizens"] if c["demo_role"] == ROLE)
    browser = portal_session(base, who)
    phone = requests.Session()
    bearer = {"Authorization": "Bearer " + app_token(base, demo, who),
              "Accept": "application/json"}
    page_url = base + "/"
    summary_url = f"{base}/api/v1/citizens/{who['id']}/summary"
    home = browser.get(page_url, timeout=60)
    if home.status_code != 200 or 'action="/logout"' not in home.text:
        sys.exit("the portal home did not open")
    chart = re.search(r'<img[^>]+src="(/people/[^"]+\.svg[^"]*)"', home.text)
    chart_url = base + chart.group(1).replace("&amp;", "&") if chart else None
    page_headers = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for _ in range(warmup):
        timed(browser, page_url, page_headers)
        timed(phone, summary_url, bearer)
    samples: dict[str, list[float]] = {"page": [], "summary": [], "chart": []}
    for _ in range(count):
        samples["page"].append(timed(browser, page_url, page_headers))
        samples["summary"].append(timed(phone, summary_url, bearer))
        if chart_url:
            samples["chart"].append(timed(browser, chart_url, {"Accept": "image/*"}))
    results = {name: figures(values) for name, values in samples.items() if values}
    results["ratio_p50"] = round(results["page"]["p50_ms"] / results["summary"]["p50_ms"], 2)
    results["ratio_p95"] = round(results["page"]["p95_ms"] / results["summary"]["p95_ms"], 2)
    results["page_bytes"] = len(home.content)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="phr-bench-portal-") as tmp:
        workdir = Path(tmp)
        prepare_environment(database_url=args.database_url, port=port, workdir=workdir)
        empty_database(args.database_url)
        demo = seed(workdir)
        server = Server(port, workdir / "gunicorn.log")
        try:
            results = measure(server.base, demo, count=args.requests, warmup=args.warmup)
        finally:
            server.stop()
    database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    print(f"portal bench: {database}, one gunicorn worker × 1 thread, {args.requests} "
          f"interleaved requests per route after {args.warmup} warm-up, person: demo {ROLE}")
    for name, label in (("page", "GET / (portal home, HTML)"),
                        ("summary", "GET /api/v1/citizens/{id}/summary (JSON)"),
                        ("chart", "GET trend.svg (the home's chart <img>, apart)")):
        if name in results:
            row = results[name]
            print(f"  {label:<46} p50 {row['p50_ms']:>7.2f} ms   p95 {row['p95_ms']:>7.2f} ms"
                  f"   mean {row['mean_ms']:>7.2f} ms")
    verdict = "within" if results["ratio_p50"] <= BUDGET_RATIO else "OVER"
    print(f"  page / summary: p50 ×{results['ratio_p50']}, p95 ×{results['ratio_p95']} "
          f"({verdict} the ×{BUDGET_RATIO:g} budget)")
    if args.json:
        args.json.write_text(json.dumps({"database": database, **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
