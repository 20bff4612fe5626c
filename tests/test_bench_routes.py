"""The bench's baseline routes exist only when the bench asks for them (BENCH_ROUTES)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core.bench_routes import URL_PREFIX, baseline_table
from core.config import load_config
from tests.conftest import make_app

BODY = {"citizen_id": str(uuid.uuid4()), "section": "immunizations",
        "data": {"vaccine_code": "TD", "dose_number": 1, "lot_number": "TD-2611-01"}}


def test_baseline_routes_answer_404_by_default(app, client):
    assert not [r.rule for r in app.url_map.iter_rules() if r.rule.startswith(URL_PREFIX)]
    read = client.get(f"{URL_PREFIX}/baseline/{uuid.uuid4()}")
    assert read.status_code == 404
    assert read.mimetype == "application/problem+json"
    assert client.post(f"{URL_PREFIX}/baseline", json=BODY).status_code == 404


def test_setting_comes_from_the_environment_and_never_in_production(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k != "BENCH_ROUTES"}
    assert load_config(root=tmp_path, environ=environ)["BENCH_ROUTES"] is False
    assert load_config(root=tmp_path, environ={**environ, "BENCH_ROUTES": "1"})["BENCH_ROUTES"]
    production = {**environ, "APP_ENV": "production", "DATABASE_URL": "postgresql://x/y",
                  "BENCH_ROUTES": "1"}
    assert load_config(root=tmp_path, environ=production)["BENCH_ROUTES"] is False


@pytest.fixture
def bench_app(database_url: str, log_stream: Any) -> Iterator[Any]:
    """An app started as bench/api.py starts it, with the baseline table it creates."""
    from core.db import db

    application = make_app(database_url, log_stream, BENCH_ROUTES=True)
    with application.app_context():
        baseline_table.create(db.engine)
    try:
        yield application
    finally:
        with application.app_context():
            db.session.remove()
            baseline_table.drop(db.engine)
            db.engine.dispose()


def test_baseline_routes_insert_and_read_one_plain_row(bench_app):
    client = bench_app.test_client()
    created = client.post(f"{URL_PREFIX}/baseline", json=BODY)
    assert created.status_code == 201, created.get_json()
    row = created.get_json()
    assert row["citizen_id"] == BODY["citizen_id"]
    assert row["data"] == BODY["data"]

    read = client.get(f"{URL_PREFIX}/baseline/{row['id']}")  # no token: plain by design
    assert read.status_code == 200
    assert read.get_json() == row
    assert client.get(f"{URL_PREFIX}/baseline/{uuid.uuid4()}").status_code == 404
    bad = client.post(f"{URL_PREFIX}/baseline", json={"citizen_id": "x", "section": "", "data": 1})
    assert bad.status_code == 422
    assert sorted(bad.get_json()["errors"]) == ["citizen_id", "data", "section"]
