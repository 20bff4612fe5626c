"""Prometheus metrics; multiprocess-aware so /metrics counts every gunicorn worker."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DECRYPTION_FAILURES = Counter(
    "vault_decryption_failures_total", "Field decryptions that failed", ["table", "column"]
)

# Single reads under a worker's standing decision (consent/standing.py): "appended" (one
# statement selected and audited the read), "not-run" (the statement carried the append and
# found other facts: the read took its two statements), "mismatch" (the tripwire: 500).
STANDING_READS = Counter(
    "phr_standing_reads_total", "Single reads that carried a standing decision", ["outcome"]
)


def observe_request(*, method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route, str(status)).observe(seconds)


def render_metrics() -> tuple[bytes, str]:
    """Prometheus text for this process, or for all workers when running multiprocess."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
