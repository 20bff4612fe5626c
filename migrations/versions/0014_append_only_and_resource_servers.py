"""append-only audit on SQLite too; OAuth clients registered as resource servers

Revision ID: 0014_append_only_resource_srv
Revises: 0013_partition_by_citizen
Create Date: 2026-12-06 18:20:00

SQLite: BEFORE UPDATE and BEFORE DELETE triggers on `audit_events` that abort the statement,
as PostgreSQL's `audit_events_append_only` trigger (migration 0004, cloned onto every
partition by 0013) has done there. `audit_events` is the only table either database protects
so: a chain head advances by an update, flags and digests are updated by design. SQLite has no
roles, so the triggers stand in for `phr_app`'s missing UPDATE and DELETE as well; whoever holds
the file can still drop them (the hash chain is what catches that). A table rebuild (a batch
migration) of `audit_events` on SQLite drops its triggers: such a migration must create them
again. PostgreSQL: the upgrade only checks that its trigger is in place.

Both databases: `oauth_clients.resource_server`, a confidential client that may introspect
any client's access tokens (RFC 7662 §2.1), not only its own. A CHECK keeps it off public
clients. Added with plain ALTER TABLE on SQLite (a batch rebuild of `oauth_clients` would trip
the foreign keys of existing tokens).
"""

import sqlalchemy as sa
from alembic import op

revision = '0014_append_only_resource_srv'
down_revision = '0013_partition_by_citizen'
branch_labels = None
depends_on = None

# Same words as PostgreSQL's trigger, so logs and tests read alike in both databases.
_SQLITE_TRIGGERS = {
    'audit_events_append_only_update': (
        "CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END"),
    'audit_events_append_only_delete': (
        "CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END"),
}

_CHECK_NAME = 'ck_oauth_clients_resource_server'
_CHECK = "client_type = 'confidential' OR NOT resource_server"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for create in _SQLITE_TRIGGERS.values():
            op.execute(create)
        op.execute('ALTER TABLE oauth_clients ADD COLUMN resource_server BOOLEAN DEFAULT 0 '
                   f'NOT NULL CONSTRAINT {_CHECK_NAME} CHECK ({_CHECK})')
        return
    if dialect == 'postgresql':
        _check_postgresql_trigger()
    op.add_column('oauth_clients', sa.Column('resource_server', sa.Boolean(),
                                             server_default=sa.false(), nullable=False))
    op.create_check_constraint(op.f(_CHECK_NAME), 'oauth_clients', _CHECK)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite (3.35+) drops a column whose only constraint is its own CHECK in place.
        op.execute('ALTER TABLE oauth_clients DROP COLUMN resource_server')
        for name in reversed(_SQLITE_TRIGGERS):
            op.execute(f'DROP TRIGGER IF EXISTS {name}')
        return
    op.drop_constraint(op.f(_CHECK_NAME), 'oauth_clients', type_='check')
    op.drop_column('oauth_clients', 'resource_server')


def _check_postgresql_trigger() -> None:
    found = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_events_append_only' "
        "AND tgrelid = to_regclass('audit_events') AND NOT tgisinternal")).scalar_one()
    if found != 1:
        raise RuntimeError('audit_events lacks its append-only trigger (migration 0004)')
