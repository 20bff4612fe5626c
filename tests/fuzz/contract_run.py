"""Schemathesis against the app served on a local port, as an outside client would see it.

The app runs in a werkzeug server thread of the test process over the test database (seeded
with the demo world); the schemathesis CLI runs in a subprocess, once per identity, with that
identity's bearer token, and writes a JSON report the test reads back for its counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from tests.support.contract import SPEC_PATH

# Everything the contract promises about an answer; `not_a_server_error` is the 500 hunt.
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")
# One identity of each kind the API serves: `flask auth demo-token ROLE` names.
IDENTITIES = {
    "citizen": "parent",
    "practitioner": "family-doctor",
    "station-staff": "vaccinator",
    "station-system": "station",
}
# The fuzz app's configuration. Rate limits stay on (their code is fuzzed too) with every budget
# raised far out of reach: throttled answers (429, documented) would hide what the fuzzer is
# after, and one identity sends thousands of requests a minute. The same for login throttles.
_UNREACHABLE = "1000000/minute"


def fuzz_config() -> dict[str, Any]:
    from core.config import DEFAULTS

    budgets = {name: _UNREACHABLE for name in DEFAULTS
               if name.startswith("RATELIMIT_")
               and name not in ("RATELIMIT_STORAGE_URI", "RATELIMIT_KEY_PREFIX")}
    return {**budgets, "AUTH_LOGIN_MAX_FAILURES": 1_000_000,
            "AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS": 1_000_000}


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app on a free local port for the duration of the block: its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="fuzz-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def demo_token(app: Any, role: str, identities: Path) -> str:
    result = app.test_cli_runner().invoke(
        args=["auth", "demo-token", role, "--identities", str(identities)])
    assert result.exit_code == 0, result.output
    return result.output.strip()


@dataclass
class RunResult:
    identity: str
    cases: int = 0
    operations: int = 0
    failing_cases: int = 0
    stop_reason: str = ""
    phases: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output: str = ""

    def summary(self) -> str:
        return (f"{self.identity}: {self.cases} cases over {self.operations} operations in "
                f"{self.seconds:.0f} s, {self.failing_cases} failing, "
                f"{len(self.errors)} errors")

    def explain(self) -> str:
        """The report's failures and the CLI's own account of them (reproducing curl lines)."""
        lines = [self.summary(), *self.failures, *self.errors]
        start = self.output.find("FAILURES")
        tail = self.output[start:] if start >= 0 else self.output[-4000:]
        return "\n".join(lines) + "\n" + tail[:12000]


def run_schemathesis(base_url: str, token: str, *, identity: str, work_dir: Path,
                     max_examples: int, max_time: int | None = None, seed: int = 19,
                     phases: str = "examples,coverage,fuzzing",
                     extra: Sequence[str] = ()) -> RunResult:
    """One identity's run; the CLI works in `work_dir` (its crash cache lands there)."""
    report = work_dir / f"{identity}.json"
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", str(SPEC_PATH),
        "--url", base_url,
        "--header", f"Authorization: Bearer {token}",
        "--checks", ",".join(CHECKS),
        "--phases", phases,
        "--max-examples", str(max_examples),
        "--seed", str(seed),
        "--workers", "1",
        "--generation-database", "none",
        "--request-timeout", "30",
        "--max-redirects", "0",
        "--suppress-health-check", "all",
        "--warnings", "off",
        "--report", "json", "--report-json-path", str(report),
        "--no-color",
        *(("--max-time", str(max_time)) if max_time else ()),
        *extra,
    ]
    environ = {**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"}
    started = time.monotonic()
    completed = subprocess.run(command, capture_output=True, text=True, env=environ,  # noqa: S603
                               cwd=work_dir, check=False, timeout=3600)
    result = RunResult(identity=identity, output=completed.stdout + completed.stderr,
                       seconds=time.monotonic() - started)
    if not report.exists():
        result.errors.append(f"no report (exit {completed.returncode})")
        return result
    data = json.loads(report.read_text(encoding="utf-8"))
    result.cases = int(data["test_cases"]["generated"])
    result.failing_cases = int(data["test_cases"]["with_failures"])
    result.operations = int(data["operations"]["tested"])
    result.stop_reason = str(data.get("stop_reason"))
    result.phases = {name: str(phase.get("status"))
                     for name, phase in (data.get("phases") or {}).items()}
    for failure in data.get("failures", []):
        where = ", ".join(failure.get("operations", []))
        result.failures.append(f"{failure.get('code')} {failure.get('title')} "
                               f"x{failure.get('count')}: {where}")
    for error in data.get("errors", []):
        result.errors.append(json.dumps(error)[:500])
    return result
