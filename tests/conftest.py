"""Test fixtures: a migrated database (SQLite, or TEST_DATABASE_URL), an app and a client per test.

Each test starts on an empty database and leaves one behind: the app fixture empties every table
after the test and fails the test if any row survives (a stuck transaction, a background writer).
Key material is generated once per run into a temporary directory, never into instance/.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_RUN_DIR = Path(tempfile.mkdtemp(prefix="phr-tests-"))
LOG_FILE = _RUN_DIR / "run.log"


def _prepare_environment() -> None:
    # Generated the way development generates them, but into the run's temporary directory.
    from core.config import load_config

    load_config(root=_RUN_DIR, environ={"APP_ENV": "development"})
    keys = _RUN_DIR / "instance" / "keys"
    os.environ["APP_ENV"] = "test"
    os.environ["VAULT_KEK_FILE"] = str(keys / "kek.json")
    os.environ["BLIND_INDEX_KEY_FILE"] = str(keys / "blind-index.key")
    os.environ["SECRET_KEY_FILE"] = str(keys / "secret.key")
    os.environ["OAUTH_SIGNING_KEY_FILE"] = str(keys / "oauth-signing.pem")
    os.environ["NOTIFICATIONS_WORKER"] = "none"
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("VAULT_KEK_JSON", None)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


_prepare_environment()


def test_database_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_RUN_DIR / 'test.sqlite3'}"


test_database_url.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def log_stream() -> Iterator[Any]:
    """Every log line the app writes during the run (the canary test reads it back)."""
    with LOG_FILE.open("a", encoding="utf-8") as handle:
        yield handle


@pytest.fixture(scope="session")
def database_url(log_stream: Any) -> str:
    """An empty database upgraded to the head migration, once per run."""
    from flask_migrate import upgrade

    from app import create_app
    from tests.support.database import reset_schema

    url = test_database_url()
    # Behind a pooler (.ci/run's smoke run through PgBouncer) the schema is reset and migrated
    # on PostgreSQL itself; the tests then go through TEST_DATABASE_URL.
    admin = os.environ.get("TEST_DATABASE_ADMIN_URL") or url
    reset_schema(admin)
    app = create_app({"SQLALCHEMY_DATABASE_URI": admin, "LOG_STREAM": log_stream,
                      "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(admin)})
    with app.app_context():
        upgrade()
        from core.db import db

        db.engine.dispose()
    return url


def _engine_options(url: str) -> dict[str, Any]:
    from core.config import engine_options

    return engine_options(url)


def make_app(database_url: str, log_stream: Any, **overrides: Any) -> Any:
    from app import create_app

    config = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
        "TESTING": True,
        "LOG_STREAM": log_stream,
    }
    config.update(overrides)
    application = create_app(config)
    from tests.support.contract import ContractClient

    # Every request and response of the suite is checked against openapi.yaml.
    application.test_client_class = ContractClient
    return application


@pytest.fixture
def app(database_url: str, log_stream: Any) -> Iterator[Any]:
    from core.db import db
    from tests.support.database import empty_all_tables, rows_left

    application = make_app(database_url, log_stream)
    with application.app_context():
        leftovers = rows_left(db.engine)
        assert not leftovers, f"database not empty before the test: {leftovers}"
    yield application
    with application.app_context():
        db.session.remove()
        empty_all_tables(db.engine)
        leftovers = rows_left(db.engine)
        db.engine.dispose()
    assert not leftovers, f"test left rows behind: {leftovers}"


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def app_context(app: Any) -> Iterator[Any]:
    with app.app_context():
        yield app
