"""Bench-only baseline routes: one plain row read by primary key, one plain row inserted.

bench/api.py prints every record route beside these two, served by the same app in the same
run: they cost what Flask, the request hooks, the pool and one PostgreSQL round trip cost,
without a token, a consent decision, encryption or an audit row. They are registered only when
the bench starts the app with BENCH_ROUTES (never in production, see core/config.py) and their
table is not a model: it sits on its own MetaData, created by the bench, never migrated, so the
schema of a normal run knows nothing of it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, jsonify
from sqlalchemy import Column, MetaData, String, Table, Text, Uuid, insert, select

from core.db import UTCDateTime, db
from core.errors import Message, NotFound, ValidationFailed
from core.http import json_body

URL_PREFIX = "/_bench"

bench_metadata = MetaData()

baseline_table = Table(
    "bench_baseline",
    bench_metadata,
    Column("id", Uuid, primary_key=True),
    Column("citizen_id", Uuid, nullable=False),
    Column("section", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # JSON in clear: the point of the baseline
    Column("created_at", UTCDateTime, nullable=False),
)

bp = Blueprint("bench", __name__, url_prefix=URL_PREFIX)


def _view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "citizen_id": str(row["citizen_id"]),
        "section": row["section"],
        "data": json.loads(row["payload"]),
        "created_at": row["created_at"].isoformat(),
    }


@bp.get("/baseline/<uuid:row_id>")
def read_baseline(row_id: uuid.UUID) -> Response:
    """One unencrypted row by primary key."""
    row = db.session.execute(
        select(baseline_table).where(baseline_table.c.id == row_id)
    ).one_or_none()
    if row is None:
        raise NotFound()
    return jsonify(_view(row._mapping))


@bp.post("/baseline")
def insert_baseline() -> Response:
    """One unencrypted row inserted and committed; body `{"citizen_id", "section", "data"}`."""
    body = json_body()
    errors: dict[str, list[Message | str]] = {}
    invalid = [Message("problem.validation-error.title")]
    citizen_id = None
    try:
        citizen_id = uuid.UUID(str(body.get("citizen_id")))
    except ValueError:
        errors["citizen_id"] = invalid
    section = body.get("section")
    if not isinstance(section, str) or not 1 <= len(section) <= 32:
        errors["section"] = invalid
    if not isinstance(body.get("data"), dict):
        errors["data"] = invalid
    if errors:
        raise ValidationFailed(errors=errors)
    row = {
        "id": uuid.uuid4(),
        "citizen_id": citizen_id,
        "section": section,
        "payload": json.dumps(body["data"], ensure_ascii=False, separators=(",", ":")),
        "created_at": dt.datetime.now(dt.UTC),
    }
    db.session.execute(insert(baseline_table).values(**row))
    db.session.commit()
    response = jsonify(_view(row))
    response.status_code = 201
    return response


def register_bench_routes(app: Flask) -> None:
    """Add the baseline routes (bench runs only: the caller checks BENCH_ROUTES)."""
    app.register_blueprint(bp)
