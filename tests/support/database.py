"""Creating, emptying and inspecting the test database."""

from __future__ import annotations

from sqlalchemy import MetaData, create_engine, inspect, text
from sqlalchemy.engine import Engine

from tests.support.append_only import audit_triggers_off

KEEP = {"alembic_version"}


def reset_schema(url: str) -> None:
    """Start the run from an empty database."""
    if url.startswith("sqlite"):
        from pathlib import Path

        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            candidate = path.with_name(path.name + suffix)
            if candidate.exists():
                candidate.unlink()
        return
    from core.config import normalize_database_url

    engine = create_engine(normalize_database_url(url))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _tables(engine: Engine) -> list[str]:
    return [t for t in inspect(engine).get_table_names() if t not in KEEP]


def rows_left(engine: Engine) -> dict[str, int]:
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # One round trip for every table (each test runs this twice).
            union = " UNION ALL ".join(
                f"SELECT '{t}', COUNT(*) FROM \"{t}\"" for t in _tables(engine))
            return {table: count for table, count in connection.execute(text(union)) if count}
        for table in _tables(engine):
            count = connection.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one()
            if count:
                counts[table] = count
    return counts


def empty_all_tables(engine: Engine) -> None:
    tables = _tables(engine)
    if not tables:
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Only the relations holding rows (a test leaves rows in a few partitions), deleted
            # with triggers off (foreign keys, audit append-only): TRUNCATE gives every truncated
            # relation new files and cascades through the foreign keys into whole partitioned
            # tables (migration 0013), about a second after every test. No sequences to restart.
            union = " UNION ALL ".join(
                f'SELECT DISTINCT tableoid::regclass::text FROM "{t}"' for t in tables)
            holding = sorted(set(connection.execute(text(union)).scalars()))
            if not holding:
                return
            if connection.execute(text(
                    "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar_one():
                connection.execute(text("SET LOCAL session_replication_role = replica"))
                for relation in holding:
                    connection.execute(text(f"DELETE FROM {relation}"))
            else:
                connection.execute(
                    text(f"TRUNCATE {', '.join(holding)} RESTART IDENTITY CASCADE"))
        else:
            metadata = MetaData()
            metadata.reflect(bind=connection)
            # Audit rows are append-only here too (migration 0014): deleted with the triggers
            # off, as on PostgreSQL above.
            with audit_triggers_off(connection):
                for table in reversed(metadata.sorted_tables):
                    if table.name not in KEEP:
                        connection.execute(table.delete())
