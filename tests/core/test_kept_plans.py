"""Plans the server keeps for the hot reads' facts statement (core.kept_plans, PostgreSQL): a
warm read runs it through a function of the same text, with the same answer and the same
rules (a revoked token is 401 on the next read); whatever goes wrong runs the text instead."""

# ruff: noqa: F811  (the tests take the imported `world` fixture as an argument)
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest
from sqlalchemy import bindparam, func, select, text

from core import kept_plans
from core.db import db
from tests.ehr.conftest import world  # noqa: F401  (the record world fixture)
from tests.support.auth import revoke_access_token
from tests.support.sql_log import statements

DOSE = {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": "2024-03-01",
        "lot_number": "KEPT-LOT-19"}
FUNCTIONS = "SELECT count(*) FROM pg_proc WHERE proname LIKE 'phr_plan_%'"


@pytest.fixture(autouse=True)
def _postgresql_only(app) -> None:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("kept plans are PostgreSQL's")


def sent_by_driver(app) -> AbstractContextManager[list[str]]:
    """What psycopg2 actually sent (after the do_execute hooks), one line each."""
    return statements(app, sent=True)


def _entry_path(client, world) -> str:
    answer = client.post(f"/api/v1/citizens/{world.patient}/immunizations", json=DOSE,
                         headers=world.headers("doctor"))
    assert answer.status_code == 201, answer.get_json()
    return f"/api/v1/citizens/{world.patient}/immunizations/{answer.get_json()['id']}"


def _warm(client, path: str, headers: dict[str, str]) -> None:
    """Reads until this worker calls the statements' functions: the day's first read has
    statements of its own; a function another test dropped fails once (the text answers), is
    made by the next read and called by the one after."""
    for _ in range(3):
        assert client.get(path, headers=headers).status_code == 200


def _events(app) -> int:
    from consent.models import AuditEvent

    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(AuditEvent))
        db.session.rollback()
        return count


def _read_audited_once(app, client, world, path: str, headers: dict[str, str]) -> list[str]:
    """Read `path` (the dose's lot in the answer): audited once, the patient's chain
    verifies; what the driver sent."""
    from consent.audit import verify_chains

    before = _events(app)
    with sent_by_driver(app) as seen:
        answer = client.get(path, headers=headers)
    assert answer.status_code == 200
    assert b"KEPT-LOT-19" in answer.get_data()
    assert _events(app) == before + 1
    with app.app_context():
        assert verify_chains(db.session, citizen_id=world.patient).ok
        db.session.rollback()
    return seen


def _scalar(app, sql: str) -> object:
    with app.app_context():
        value = db.session.scalar(text(sql))
        db.session.rollback()
        return value


def test_a_warm_read_runs_its_facts_through_a_kept_plan(app, client, world):
    path = _entry_path(client, world)
    headers = world.headers("doctor")
    _warm(client, path, headers)
    with sent_by_driver(app) as seen:
        answer = client.get(path, headers=headers)
    assert answer.status_code == 200
    assert b"KEPT-LOT-19" in answer.get_data()
    calls = [s for s in seen if s.startswith("SELECT * FROM phr_plan_")]
    assert len(calls) == 1, seen
    assert not [s for s in seen if s.startswith("SELECT citizens.id")], seen
    function = calls[0].split()[3].split("(")[0]
    with app.app_context():
        source, config = db.session.execute(text(
            "SELECT prosrc, proconfig FROM pg_proc WHERE proname = :name"),
            {"name": function}).one()
        db.session.rollback()
    assert "FROM citizens LEFT OUTER JOIN vault_data_keys" in source
    assert "access_token_hash = $" in source  # the token's liveness rides inside it
    assert config == ["plan_cache_mode=force_generic_plan"]


def test_a_token_revoked_is_401_on_the_next_read_through_a_kept_plan(app, client, world):
    path = _entry_path(client, world)
    headers = world.headers("doctor")
    for _ in range(3):
        assert client.get(path, headers=headers).status_code == 200
    revoke_access_token(app, world.doctor_token)
    with sent_by_driver(app) as seen:
        answer = client.get(path, headers=headers)
    assert answer.status_code == 401
    assert b"KEPT-LOT-19" not in answer.get_data()
    assert any(s.startswith("SELECT * FROM phr_plan_") for s in seen), seen


def test_a_dropped_function_is_answered_by_the_text_then_made_again(app, client, world):
    path = _entry_path(client, world)
    headers = world.headers("doctor")
    assert client.get(path, headers=headers).status_code == 200
    assert _scalar(app, FUNCTIONS) > 0
    with app.app_context():
        for (name,) in db.session.execute(text(
                "SELECT oid::regprocedure::text FROM pg_proc WHERE proname LIKE 'phr_plan_%'")):
            db.session.execute(text(f"DROP ROUTINE {name}"))
        db.session.commit()
    with sent_by_driver(app) as seen:
        answer = client.get(path, headers=headers)
    assert answer.status_code == 200
    assert b"KEPT-LOT-19" in answer.get_data()
    # The text answered (the read's facts statement, or the one carrying a standing
    # decision's audit append: consent.standing).
    assert any(s.startswith(("SELECT citizens.id", "WITH phr_facts")) for s in seen), seen
    # Made again, then called: each of the two statements an entry read may take is made by
    # its first read after the drop and called by the next.
    called = []
    for _ in range(4):
        with sent_by_driver(app) as seen:
            assert client.get(path, headers=headers).status_code == 200
        called.append(any(s.startswith("SELECT * FROM phr_plan_") for s in seen))
    assert called[-1], called


@pytest.fixture
def table(app) -> Iterator[str]:
    """A small table of its own, and a role that may read it but create nothing."""
    suffix = uuid.uuid4().hex[:12]
    name, role = f"phr_kept_{suffix}", f"phr_kept_role_{suffix}"
    with app.app_context():
        db.session.execute(text(f"CREATE TABLE {name} (id integer PRIMARY KEY, label text)"))
        db.session.execute(text(f"INSERT INTO {name} VALUES (1, 'one'), (2, 'two')"))
        db.session.execute(text(f"CREATE ROLE {role} NOLOGIN"))
        db.session.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
        db.session.execute(text(f"GRANT SELECT ON {name} TO {role}"))
        db.session.commit()
    try:
        yield name
    finally:
        with app.app_context():
            db.session.rollback()
            db.session.execute(text(f"DROP TABLE {name}"))
            db.session.execute(text(f"DROP OWNED BY {role}"))
            db.session.execute(text(f"DROP ROLE {role}"))
            db.session.commit()


def _select(table: str) -> object:
    return text(f"SELECT label FROM {table} WHERE id = :id").bindparams(
        bindparam("id")).execution_options(**{kept_plans.KEEP_PLAN: True})


def _labels(app, statement, *, params: dict | None = None, autocommit: bool = True,
            role: str | None = None, times: int = 3) -> tuple[list[str], list[str]]:
    labels: list[str] = []
    with app.app_context(), sent_by_driver(app) as seen:
        with db.engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            raw.autocommit = autocommit
            if role:
                connection.exec_driver_sql(f"SET ROLE {role}")
            try:
                for _ in range(times):
                    labels.append(connection.execute(
                        statement, {"id": 2} if params is None else params).scalar_one())
            finally:
                if role:
                    connection.exec_driver_sql("RESET ROLE")
                if not autocommit:
                    connection.rollback()
                raw.autocommit = False
    return labels, seen


def test_a_role_that_may_not_create_functions_reads_as_before(app, table):
    role = table.replace("phr_kept_", "phr_kept_role_")
    labels, seen = _labels(app, _select(table), role=role)
    try:
        assert labels == ["two", "two", "two"]
        assert not [s for s in seen if "phr_plan_" in s], seen
        assert _scalar(app, f"{FUNCTIONS} AND prosrc LIKE '%{table}%'") == 0
    finally:
        kept_plans._refused.clear()  # the refusal was this role's, not the test database's


def test_a_statement_in_autocommit_is_kept_and_answers_the_same(app, table):
    labels, seen = _labels(app, _select(table))
    assert labels == ["two", "two", "two"]
    assert [s.startswith("SELECT * FROM phr_plan_") for s in seen] == [False, True, True]


def test_inside_a_transaction_the_text_runs(app, table):
    labels, seen = _labels(app, _select(table), autocommit=False)
    assert labels == ["two", "two", "two"]
    assert not [s for s in seen if "phr_plan_" in s], seen


def test_a_statement_that_cannot_be_a_function_stays_plain(app, table):
    # A list parameter has no argument type here: the statement runs as text, every time.
    statement = text(f"SELECT label FROM {table} WHERE id = ANY(:id)").execution_options(
        **{kept_plans.KEEP_PLAN: True})
    labels, seen = _labels(app, statement, params={"id": [2]})
    assert labels == ["two", "two", "two"]
    assert not [s for s in seen if "phr_plan_" in s], seen


def test_a_statement_of_more_parameters_than_a_function_may_have_is_not_tried(
        app, table, caplog):
    # PostgreSQL refuses a routine of more than 100 arguments (a batch's long IN list): the
    # text runs every time, without a CREATE the server would refuse first.
    names = [f"p{number}" for number in range(101)]
    statement = text(f"SELECT label FROM {table} WHERE id IN "
                     f"({', '.join(':' + name for name in names)})").execution_options(
        **{kept_plans.KEEP_PLAN: True})
    params = dict.fromkeys(names, 2)
    labels, seen = _labels(app, statement, params=params)
    assert labels == ["two", "two", "two"]
    assert not [s for s in seen if "phr_plan_" in s], seen
    assert not [r for r in caplog.records if "stays plain" in r.getMessage()]


def test_statements_without_the_option_are_untouched(app, table):
    statement = select(text("label")).select_from(text(table)).where(text("id = 2"))
    labels, seen = _labels(app, statement, params={})
    assert labels == ["two", "two", "two"]
    assert not [s for s in seen if "phr_plan_" in s], seen


def test_a_list_sends_its_content_and_audit_through_a_kept_plan(app, client, world):
    """The list's content statement carries its audit append (data-modifying CTEs): through
    the function, the read is audited once and its chain verifies. (Without standing
    decisions, which fold the facts into it: tests/consent/test_standing_lists.py.)"""
    app.config["STANDING_DECISION_SECONDS"] = 0
    _entry_path(client, world)
    path = f"/api/v1/citizens/{world.patient}/immunizations"
    headers = world.headers("doctor")
    _warm(client, path, headers)

    seen = _read_audited_once(app, client, world, path, headers)
    assert len([s for s in seen if s.startswith("SELECT * FROM phr_plan_")]) == 2, seen


def test_a_function_that_no_longer_fits_its_tables_is_not_tried_again(app, table):
    """After a migration changed a column's type the function's declared answer no longer
    matches: the text answers, and the worker stops calling the function."""
    labels, seen = _labels(app, _select(table), times=2)
    assert [s.startswith("SELECT * FROM phr_plan_") for s in seen] == [False, True]
    with app.app_context():
        db.session.execute(text(f"ALTER TABLE {table} ALTER COLUMN label TYPE varchar(10)"))
        db.session.commit()
    labels, seen = _labels(app, _select(table), times=3)
    assert labels == ["two", "two", "two"]
    # The first call failed and its text answered (what the driver sent last); no call since.
    assert not [s for s in seen if "phr_plan_" in s], seen
    assert [kept for (_, statement), kept in kept_plans._kept.items()
            if table in statement] == [kept_plans._PLAIN]


def test_a_create_reads_its_facts_through_a_kept_plan_and_writes_in_one_transaction(
        app, client, world):
    """A write reads before it writes: its facts statement runs outside the transaction
    (READ COMMITTED gives each statement its own snapshot either way), through the function;
    the entry, the create's audit event and its Idempotency-Key's answer commit together."""
    from consent.models import AuditEvent
    from core.idempotency import IdempotencyRecord
    from ehr.record_models import RecordEntry

    path = f"/api/v1/citizens/{world.patient}/immunizations"
    headers = world.headers("doctor")

    def create(lot: str) -> dict:
        answer = client.post(path, json={**DOSE, "lot_number": lot},
                             headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()

    for n in range(3):
        create(f"KEPT-WARM-{n}")
    with sent_by_driver(app) as seen:
        created = create("KEPT-CREATE")
    assert seen[0].startswith("SELECT * FROM phr_plan_"), seen
    assert not [s for s in seen if s.startswith("SELECT citizens.id, citizens.date_of_birth")]
    entry_id = uuid.UUID(created["id"])
    with app.app_context():
        entry = db.session.scalar(select(text("xmin::text")).select_from(RecordEntry)
                                  .where(RecordEntry.id == entry_id))
        # The create is decided before its entry has an id: its event is the person's last.
        audit = db.session.scalars(select(text("xmin::text")).select_from(AuditEvent).where(
            AuditEvent.citizen_id == world.patient, AuditEvent.action == "create",
        ).order_by(AuditEvent.occurred_at.desc()).limit(1)).all()
        key = db.session.scalars(select(text("xmin::text")).select_from(IdempotencyRecord)
                                 .where(IdempotencyRecord.resource_id == str(entry_id))).all()
        db.session.rollback()
    assert entry is not None
    # One transaction wrote all three.
    assert audit == [entry]
    assert key == [entry]


def test_a_statement_without_rows_is_kept_as_a_procedure(app, table):
    statement = text(f"INSERT INTO {table} (id, label) VALUES (:id, :label)").execution_options(
        **{kept_plans.KEEP_PLAN: True})
    with app.app_context(), sent_by_driver(app) as seen:
        with db.engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            raw.autocommit = True
            try:
                for n in (10, 11, 12):
                    connection.execute(statement, {"id": n, "label": f"row {n}"})
            finally:
                raw.autocommit = False
    assert seen[0].startswith(f"INSERT INTO {table} "), seen  # the text, then the procedure
    assert [s.startswith("CALL phr_plan_") for s in seen] == [False, True, True], seen
    assert _scalar(app, f"SELECT string_agg(label, ',' ORDER BY id) FROM {table} "
                        "WHERE id >= 10") == "row 10,row 11,row 12"


def test_an_entry_reads_audit_append_runs_through_a_kept_procedure(app, client, world):
    """The read's second statement returns no rows: a procedure keeps its plan. It commits
    as it returns, and when it fails the read answers 5xx and no data, as the text did.
    (Without standing decisions, which fold it into the first: tests/consent/
    test_standing_decisions.py.)"""
    from tests.ehr.test_read_rules import audit_refused

    app.config["STANDING_DECISION_SECONDS"] = 0
    path = _entry_path(client, world)
    headers = world.headers("doctor")
    _warm(client, path, headers)

    seen = _read_audited_once(app, client, world, path, headers)
    assert [s.split("(")[0][:14] for s in seen] == ["SELECT * FROM ", "CALL phr_plan_"], seen
    before = _events(app)
    # The worker calls the procedure for this statement now (a failed call is not recorded
    # by the driver's hook; the read after it shows the worker still calls it).
    with audit_refused(app):
        refused = client.get(path, headers=headers)
    assert 500 <= refused.status_code < 600
    assert b"KEPT-LOT-19" not in refused.get_data()
    assert _events(app) == before
    with sent_by_driver(app) as seen:
        assert client.get(path, headers=headers).status_code == 200
    assert [s.split("(")[0][:14] for s in seen] == ["SELECT * FROM ", "CALL phr_plan_"], seen


@pytest.mark.parametrize("view", ["immunizations", "summary"])
def test_a_standing_list_or_summary_runs_through_a_kept_plan(app, client, world, view):
    """A standing view's one statement (consent.standing: the facts, the audit append and the
    content) is kept too: its columns' types are the same in the function as in the text
    (a bound constant among them once made every call fail back to the text)."""
    _entry_path(client, world)
    path = f"/api/v1/citizens/{world.patient}/{view}"
    headers = world.headers("doctor")
    for _ in range(2):
        _warm(client, path, headers)
    with sent_by_driver(app) as seen:
        answer = client.get(path, headers=headers)
    assert answer.status_code == 200
    assert len(seen) == 1, seen
    assert seen[0].startswith("SELECT * FROM phr_plan_"), seen
