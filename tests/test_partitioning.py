"""Per-person tables are partitioned by their citizen column on PostgreSQL (migration 0013), and
every key of theirs carries that column: one person's rows live in one partition (one shard
under Citus). On SQLite (unpartitioned) the list itself is checked: every table with a citizen
column is either partitioned on PostgreSQL or named as an exception with its reason."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from consent.audit import append_event
from core import idempotency
from core.db import db
from core.errors import ValidationFailed
from core.partitioning import (
    NOT_PARTITIONED,
    PARTITION_SCHEMA_SUFFIX,
    PARTITIONED,
    PARTITIONS,
    WIDER_FOREIGN_KEYS,
    WIDER_UNIQUES,
)
from tests.consent.world import citizen


def _citizen_tables() -> set[str]:
    """Tables that hold something of a person: a `citizen_id` column or a reference to
    citizens (an actor's id without a reference, such as `answered_by_citizen_id`, is not)."""
    found = set()
    for table in db.metadata.tables.values():
        for column in table.columns:
            refers = any(fk.column.table.name == "citizens" for fk in column.foreign_keys)
            if column.name == "citizen_id" or refers:
                found.add(table.name)
    return found


def test_every_table_with_a_citizen_column_is_partitioned_or_excepted(app_context):
    tables = _citizen_tables()
    assert not set(PARTITIONED) & set(NOT_PARTITIONED)
    unlisted = tables - set(PARTITIONED) - set(NOT_PARTITIONED)
    assert not unlisted, f"per-person tables neither partitioned nor excepted: {sorted(unlisted)}"
    stale = (set(PARTITIONED) | set(NOT_PARTITIONED)) - tables - {"citizens"}
    assert not stale, f"listed tables that hold no citizen column: {sorted(stale)}"
    assert all(reason.strip() for reason in NOT_PARTITIONED.values())


def test_the_partition_columns_and_wider_keys_name_real_columns(app_context):
    tables = db.metadata.tables
    for table, column in PARTITIONED.items():
        assert column in tables[table].columns, (table, column)
        assert not tables[table].columns[column].nullable, (table, column)
    unique_names = {c.name: t.name for t in tables.values() for c in t.constraints}
    for name, columns in WIDER_UNIQUES.items():
        table = tables[unique_names[name]]
        assert table.name in PARTITIONED
        assert set(columns) <= set(table.columns.keys())
        assert columns[-1] == PARTITIONED[table.name]
    for name, (columns, referred, referred_columns) in WIDER_FOREIGN_KEYS.items():
        table = tables[unique_names[name]]
        assert set(columns) <= set(table.columns.keys()), name
        assert referred in PARTITIONED, name
        assert referred_columns[-1] == PARTITIONED[referred], name


@pytest.fixture
def pg(app_context):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (set TEST_DATABASE_URL): SQLite tables are not partitioned")
    return app_context


def _rows(sql: str, **params):
    with db.engine.connect() as connection:
        return connection.execute(text(sql), params).all()


def test_every_per_person_table_is_hash_partitioned_by_its_citizen_column(pg):
    rows = _rows("""
        SELECT c.relname, p.partstrat, p.partnatts, a.attname,
               (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid)
        FROM pg_partitioned_table p
        JOIN pg_class c ON c.oid = p.partrelid
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]
        WHERE c.relnamespace = to_regnamespace(current_schema())""")
    found = {name: (strategy, columns, column, count)
             for name, strategy, columns, column, count in rows}
    assert found == {table: ("h", 1, column, PARTITIONS) for table, column in PARTITIONED.items()}


def test_every_key_of_a_partitioned_table_carries_its_partition_column(pg):
    rows = _rows("""
        SELECT t.relname, i.relname, x.indisprimary,
               array(SELECT a.attname FROM pg_attribute a
                     WHERE a.attrelid = t.oid AND a.attnum = ANY(x.indkey))::text[]
        FROM pg_index x
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indisunique AND t.relname = ANY(:tables)
          AND t.relnamespace = to_regnamespace(current_schema())""", tables=list(PARTITIONED))
    keys = {(table, index) for table, index, _, _ in rows}
    assert {table for table, _ in keys} == set(PARTITIONED)  # each has at least its primary key
    for table, index, _, columns in rows:
        assert PARTITIONED[table] in columns, f"{table}.{index} lacks {PARTITIONED[table]}"
    constraints = _rows("""
        SELECT t.relname, c.conname,
               array(SELECT a.attname FROM pg_attribute a
                     WHERE a.attrelid = t.oid AND a.attnum = ANY(c.conkey))::text[]
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        WHERE c.contype IN ('p', 'u') AND t.relname = ANY(:tables)
          AND t.relnamespace = to_regnamespace(current_schema())""", tables=list(PARTITIONED))
    assert constraints
    for table, name, columns in constraints:
        assert PARTITIONED[table] in columns, f"{table}.{name} lacks {PARTITIONED[table]}"


def test_foreign_keys_into_partitioned_tables_carry_the_citizen(pg):
    rows = _rows("""
        SELECT c.conname, t.relname, r.relname,
               array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                     ORDER BY k.o)::text[],
               array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
                     ORDER BY k.o)::text[]
        FROM pg_constraint c
        JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
        WHERE c.contype = 'f' AND c.conparentid = 0 AND r.relname = ANY(:tables)
          AND t.relnamespace = to_regnamespace(current_schema())""", tables=list(PARTITIONED))
    found = {name: (tuple(columns), referred, tuple(referred_columns))
             for name, _, referred, columns, referred_columns in rows}
    assert found == WIDER_FOREIGN_KEYS


def test_the_app_role_reaches_partitions_only_through_their_tables(pg):
    partition = "audit_events_p00"
    with db.engine.connect() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        connection.execute(text("SET ROLE phr_app"))
        # Through the parent: the grants of 0004 (insert and select audit rows) still hold.
        assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar_one() == 0
        with pytest.raises(ProgrammingError) as refused, connection.begin_nested():
            connection.execute(text(
                f'SELECT 1 FROM "{schema}{PARTITION_SCHEMA_SUFFIX}"."{partition}"'))
        assert "permission denied" in str(refused.value)
        connection.rollback()


def test_the_append_only_trigger_holds_on_every_audit_partition(pg):
    cloned = _rows("""
        SELECT count(*) FROM pg_trigger t
        JOIN pg_inherits i ON i.inhrelid = t.tgrelid
        WHERE i.inhparent = to_regclass('audit_events')
          AND t.tgparentid = (SELECT oid FROM pg_trigger WHERE tgname = 'audit_events_append_only'
                              AND tgrelid = to_regclass('audit_events'))""")
    assert cloned[0][0] == PARTITIONS
    citizen = uuid.uuid4()
    append_event(db.session, citizen_id=citizen, occurred_at=dt.datetime.now(dt.UTC),
                 actor_role="citizen", actor_citizen_id=citizen, section="allergies",
                 action="read", purpose="self", decision="permit", rule="self")
    db.session.commit()
    partition = db.session.execute(text(
        "SELECT tableoid::regclass::text FROM audit_events WHERE citizen_id = :c"),
        {"c": citizen}).scalar_one()
    assert PARTITION_SCHEMA_SUFFIX in partition
    for statement in (f"DELETE FROM {partition}", f"UPDATE {partition} SET rule = 'forged'"):
        # Even the owner, straight at the partition: refused by the cloned trigger.
        with pytest.raises(DBAPIError) as refused:
            db.session.execute(text(statement))
        assert "append-only" in str(refused.value)
        db.session.rollback()


def test_one_idempotency_key_for_two_persons_answers_each_and_refuses_another_body(pg):
    """On PostgreSQL the key is unique per (scope, person): two creates racing with one key
    for two persons both land; a replay gets its own answer, any other body the 422."""
    first, second = citizen(db.session), citizen(db.session)
    scope = idempotency.scope_of(client_id="station-app", account_id=uuid.uuid4(), key="k-0001")
    prints = [idempotency.fingerprint_of(method="POST", route=f"/r/{n}", body={"n": n})
              for n in (1, 2, 3)]
    for person, fingerprint, n in ((first, prints[0], 1), (second, prints[1], 2)):
        idempotency.remember(db.session, scope=scope, fingerprint=fingerprint,
                             citizen_id=person.id, status=201, body={"n": n})
    db.session.commit()  # no unique violation: the key is per person
    replay = idempotency.lookup(db.session, scope=scope, fingerprint=prints[1])
    assert replay is not None
    assert (replay.citizen_id, replay.body) == (second.id, {"n": 2})
    many = idempotency.lookup_many(db.session, [(scope, prints[0])])
    assert many[scope].citizen_id == first.id
    with pytest.raises(ValidationFailed):
        idempotency.lookup(db.session, scope=scope, fingerprint=prints[2])
    db.session.rollback()
