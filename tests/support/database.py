"""Creating, emptying and inspecting the test database."""

from __future__ import annotations

from sqlalchemy import MetaData, create_engine, inspect, text
from sqlalchemy.engine import Engine

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
            quoted = ", ".join(f'"{t}"' for t in tables)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            metadata = MetaData()
            metadata.reflect(bind=connection)
            for table in reversed(metadata.sorted_tables):
                if table.name not in KEEP:
                    connection.execute(table.delete())
