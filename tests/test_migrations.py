"""One Alembic chain; the migrated schema matches the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db import db
from core.ops import migration_heads
from core.partitioning import comparison_filter


def test_single_head():
    assert len(migration_heads()) == 1


def test_models_match_migrated_schema(app_context):
    with db.engine.connect() as connection:
        opts = {"compare_type": True, "render_as_batch": True}
        # The partitioning artefacts on PostgreSQL, exactly as migrations/env.py ignores them.
        include_object = comparison_filter(connection.dialect.name)
        if include_object is not None:
            opts["include_object"] = include_object
        context = MigrationContext.configure(connection, opts=opts)
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
