"""gunicorn.conf.py freezes what a worker holds once the app is loaded, so full garbage
collections stop walking it (README, Benchmarks: a fifth of a 500-item batch's CPU)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

from tests.support.crash_server import ROOT, free_port


def test_a_worker_has_frozen_its_loaded_objects(tmp_path) -> None:
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
         "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "tests.support.gc_report_app:app"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    frozen = int(answer.read())
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    # The worker's modules, functions and classes: thousands of objects even for this app.
    assert frozen > 1000, frozen
