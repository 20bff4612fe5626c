"""Operational endpoints: liveness, readiness (database and migrations), Prometheus metrics."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core.db import database_waits_within, db
from core.errors import Message, ServiceUnavailable
from core.metrics import render_metrics

bp = Blueprint("ops", __name__)
log = logging.getLogger("phr.ops")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def migration_heads() -> set[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return set(ScriptDirectory.from_config(config).get_heads())


def _expected_heads() -> set[str]:
    heads = current_app.extensions.get("phr.migration_heads")
    if heads is None:
        heads = migration_heads()
        current_app.extensions["phr.migration_heads"] = heads
    return heads


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


# A load balancer asks often and must hear "no" fast: the check's two statements are trivial,
# so any wait past this (connecting included) means the database cannot serve (core/db.py).
READY_WITHIN = 1.0


@bp.get("/readyz")
def readyz() -> Response:
    try:
        with database_waits_within(READY_WITHIN), db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError as exc:
        log.warning("readiness: database check failed (%s)", type(exc).__name__)
        reason = "ready.database-unreachable"
        # The driver's own message (never the statement SQLAlchemy appends to str(exc): a
        # timeout on the version query is not a missing table).
        if "alembic_version" in str(getattr(exc, "orig", None) or ""):
            reason = "ready.migrations-behind"
        raise ServiceUnavailable(
            Message("problem.not-ready.detail", reason=_reason(reason)),
            headers={"Retry-After": "5"},
        ) from None
    current = {row[0] for row in rows}
    if current != _expected_heads():
        raise ServiceUnavailable(
            Message("problem.not-ready.detail", reason=_reason("ready.migrations-behind")),
            headers={"Retry-After": "5"},
        )
    return jsonify(status="ready", database="ok", migrations="head")


def _reason(key: str) -> str:
    from core.i18n import translate

    return translate(key)


@bp.get("/metrics")
def metrics() -> Response:
    payload, content_type = render_metrics()
    return Response(payload, content_type=content_type)
