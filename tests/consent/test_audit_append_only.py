"""Audit rows are append-only in both databases (issue 19): a trigger refuses every UPDATE and
DELETE of `audit_events`, on SQLite (migration 0014) as on PostgreSQL (0004/0013), whoever
sends it through the application's own session; the suite's emptying between tests and the
tamper tests get through only by switching the triggers off for their transaction."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from consent.models import AuditEvent
from core.db import db
from tests.support.append_only import audit_triggers_off
from tests.support.auth import bearer, token_for
from tests.support.database import empty_all_tables, rows_left

SQLITE_TRIGGERS = ["audit_events_append_only_delete", "audit_events_append_only_update"]
BEFORE_0014 = "0013_partition_by_citizen"


def _audited_reads(client: Any, app: Any, reads: int = 2) -> uuid.UUID:
    """A citizen reads their summary through the API: each read appends an audit event."""
    tokens = token_for(client, app)
    citizen = tokens.login.citizen_id
    for _ in range(reads):
        response = client.get(f"/api/v1/citizens/{citizen}/summary", headers=bearer(tokens))
        assert response.status_code == 200, response.get_data(as_text=True)
    return citizen


def _snapshot(citizen: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = db.session.scalars(select(AuditEvent).where(AuditEvent.citizen_id == citizen)
                              .order_by(AuditEvent.seq)).all()
    snapshot = [(row.id, row.seq, bytes(row.hash), row.content()) for row in rows]
    db.session.rollback()
    return snapshot


def _refused(statement: Any) -> str:
    with pytest.raises(DBAPIError) as refused:
        db.session.execute(statement)
    db.session.rollback()
    return str(refused.value)


def _verify(app: Any) -> dict[str, Any]:
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def _append_only_triggers() -> list[str]:
    if db.engine.dialect.name == "postgresql":
        sql = ("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass('audit_events') "
               "AND NOT tgisinternal AND tgname LIKE 'audit_events_append_only%' ORDER BY 1")
    else:
        sql = ("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = "
               "'audit_events' AND name LIKE 'audit_events_append_only%' ORDER BY 1")
    names = list(db.session.scalars(text(sql)))
    db.session.rollback()
    return names


def test_the_apps_session_can_neither_update_nor_delete_an_audit_row(app, client):
    citizen = _audited_reads(client, app)
    with app.app_context():
        before = _snapshot(citizen)
        assert [seq for _, seq, _, _ in before] == [1, 2]
        first = before[0][0]
        events = AuditEvent.__table__
        statements = [
            update(events).where(events.c.id == first).values(rule="consent"),
            update(events).values(decision="deny"),
            delete(events).where(events.c.id == first),
            delete(events),
            text("DELETE FROM audit_events"),
        ]
        for statement in statements:
            assert "audit_events is append-only" in _refused(statement), statement
        # The unit of work too: an edited or deleted entity fails at flush.
        row = db.session.get(AuditEvent, first)
        row.rule = "forged"
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.commit()
        db.session.rollback()
        db.session.delete(db.session.get(AuditEvent, first))
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.commit()
        db.session.rollback()

        assert _snapshot(citizen) == before
    report = _verify(app)
    assert (report["ok"], report["events"]) == (True, 2)


def test_appending_still_works_and_verifies_after_refusals(app, client):
    tokens = token_for(client, app)
    citizen = tokens.login.citizen_id
    assert client.get(f"/api/v1/citizens/{citizen}/summary",
                      headers=bearer(tokens)).status_code == 200
    with app.app_context():
        _refused(text("UPDATE audit_events SET rule = 'x'"))
    assert client.get(f"/api/v1/citizens/{citizen}/summary",
                      headers=bearer(tokens)).status_code == 200
    with app.app_context():
        assert [seq for _, seq, _, _ in _snapshot(citizen)] == [1, 2]
    assert _verify(app)["events"] == 2


def test_the_triggers_are_in_the_migrated_schema(app_context):
    expected = (["audit_events_append_only"] if db.engine.dialect.name == "postgresql"
                else SQLITE_TRIGGERS)
    assert _append_only_triggers() == expected


def test_the_suites_emptying_removes_audit_rows_and_leaves_the_triggers(app, client):
    _audited_reads(client, app, reads=1)
    with app.app_context():
        assert rows_left(db.engine).get("audit_events") == 1
        db.session.remove()
        empty_all_tables(db.engine)
        assert rows_left(db.engine) == {}
        assert len(_append_only_triggers()) == (
            1 if db.engine.dialect.name == "postgresql" else 2)
    citizen = _audited_reads(app.test_client(), app, reads=1)  # no login cookie of before
    with app.app_context():
        assert "append-only" in _refused(
            text("DELETE FROM audit_events WHERE citizen_id = :c").bindparams(
                c=citizen.hex if db.engine.dialect.name == "sqlite" else citizen))


def test_triggers_switched_off_come_back_when_the_transaction_rolls_back(app, client):
    citizen = _audited_reads(client, app, reads=1)
    with app.app_context():
        connection = db.session.connection()
        with audit_triggers_off(connection):
            connection.execute(text("UPDATE audit_events SET rule = 'forged'"))
        db.session.rollback()  # the forgery and the DDL around it (SQLite) undone together
        assert len(_append_only_triggers()) >= 1
        assert _snapshot(citizen)[0][3]["rule"] == "self"
        assert "append-only" in _refused(text("UPDATE audit_events SET rule = 'forged'"))
    assert _verify(app)["ok"] is True


def test_the_sqlite_migration_goes_down_and_up_again(app_context, tmp_path: Path, log_stream):
    """From an empty SQLite file to head, down to 0013 (no triggers, no column), up again."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import create_engine, inspect

    from tests.conftest import make_app

    url = f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    other = make_app(url, log_stream)

    def state() -> tuple[list[str], bool]:
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                triggers = list(connection.scalars(text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                    "AND tbl_name = 'audit_events' ORDER BY 1")))
                columns = {c["name"] for c in inspect(connection).get_columns("oauth_clients")}
            return triggers, "resource_server" in columns
        finally:
            engine.dispose()

    with other.app_context():
        upgrade()
        assert state() == (SQLITE_TRIGGERS, True)
        downgrade(revision=BEFORE_0014)
        assert state() == ([], False)
        upgrade()
        assert state() == (SQLITE_TRIGGERS, True)
        db.engine.dispose()
