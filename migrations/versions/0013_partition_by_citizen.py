"""partition by citizen: the per-person tables hash-partitioned by their citizen column (PostgreSQL)

Revision ID: 0013_partition_by_citizen
Revises: 0012_portal_sessions
Create Date: 2026-12-06 16:30:00

Both databases: notification_deliveries gets the citizen of its notification (its partition
column, so a delivery lives with its notification).

PostgreSQL only: record entries and versions, audit events and chain heads, consents,
guardianships (by the dependant), notifications (by the subject) and deliveries, idempotency
records become `PARTITION BY HASH` tables of 16 partitions. Each table is rebuilt: a
partitioned copy, the rows copied, the old table dropped, the copy renamed, then its keys,
indexes, foreign keys, triggers (the audit append-only trigger) and grants (the `phr_app`
role's, read from the old table) put back. Primary keys and unique constraints get the
partition column appended (PostgreSQL requires it); foreign keys into these tables become
composite (key, citizen), which also makes a version's, delivery's, flag's, request's or
claim's citizen provably its parent's. The partitions live in their own schema
(`<schema>_partitions`): the application role has no usage on it, so it reaches the rows only
through the parent tables and their grants (an audit partition cannot be updated directly), and
tools that list the application schema see the tables the models declare.

The rebuild copies every row under an exclusive lock and the migrating role needs CREATE on the
database (for the schema): on a large database run it in a maintenance window (or partition
ahead of the data with a copy-and-switch tool); the downgrade rebuilds the plain tables alike.

The table and constraint lists are frozen here (core/partitioning.py describes the current
schema; a migration must not follow later edits of it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013_partition_by_citizen'
down_revision = '0012_portal_sessions'
branch_labels = None
depends_on = None

_PARTITIONS = 16

# Order matters only for readability: inbound foreign keys are dropped before and re-added after.
_TABLES: dict[str, str] = {
    'record_entries': 'citizen_id',
    'record_entry_versions': 'citizen_id',
    'audit_events': 'citizen_id',
    'audit_chain_heads': 'citizen_id',
    'consents': 'citizen_id',
    'guardianships': 'dependant_citizen_id',
    'notifications': 'subject_citizen_id',
    'notification_deliveries': 'citizen_id',
    'idempotency_records': 'citizen_id',
}

# The keys that get the partition column appended (checked against the catalog on upgrade;
# the downgrade takes it off these again).
_WIDENED = {
    'pk_record_entries', 'pk_record_entry_versions', 'uq_record_entry_versions_entry_id',
    'pk_audit_events', 'pk_consents', 'pk_guardianships',
    'pk_notifications', 'uq_notifications_dedup_key',
    'pk_notification_deliveries', 'uq_notification_deliveries_dedup_key',
    'pk_idempotency_records', 'uq_idempotency_records_scope',
}

# Foreign keys into the partitioned tables: name -> (table, columns, referred table, referred
# columns, ON DELETE) in their composite form; the single-column form is the first of each.
_INBOUND = {
    'fk_record_entry_versions_entry_id_record_entries':
        ('record_entry_versions', ('entry_id', 'citizen_id'),
         'record_entries', ('id', 'citizen_id'), None),
    'fk_notification_deliveries_notification_id_notifications':
        ('notification_deliveries', ('notification_id', 'citizen_id'),
         'notifications', ('id', 'subject_citizen_id'), 'CASCADE'),
    'fk_access_log_flags_audit_event_id_audit_events':
        ('access_log_flags', ('audit_event_id', 'citizen_id'),
         'audit_events', ('id', 'citizen_id'), None),
    'fk_access_requests_consent_id_consents':
        ('access_requests', ('consent_id', 'citizen_id'), 'consents', ('id', 'citizen_id'), None),
    'fk_guardian_claims_guardianship_id_guardianships':
        ('guardian_claims', ('guardianship_id', 'dependant_citizen_id'),
         'guardianships', ('id', 'dependant_citizen_id'), None),
}


def upgrade() -> None:
    _add_delivery_citizen()
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    parts = _partition_schema(bind)
    op.execute(f'CREATE SCHEMA IF NOT EXISTS "{parts}"')
    op.execute(f'REVOKE ALL ON SCHEMA "{parts}" FROM PUBLIC')
    for name, (table, _, _, _, _) in _INBOUND.items():
        op.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    widened: set[str] = set()
    for table, column in _TABLES.items():
        widened |= _rebuild(bind, table, column, parts, partitioned=True)
    if widened != _WIDENED:
        raise RuntimeError(f'unexpected keys widened by partitioning: {sorted(widened ^ _WIDENED)}')
    for name, (table, columns, referred, referred_columns, on_delete) in _INBOUND.items():
        _add_foreign_key(name, table, columns, referred, referred_columns, on_delete)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        parts = _partition_schema(bind)
        for name, (table, _, _, _, _) in _INBOUND.items():
            op.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        for table, column in _TABLES.items():
            _rebuild(bind, table, column, parts, partitioned=False)
        for name, (table, columns, referred, referred_columns, on_delete) in _INBOUND.items():
            _add_foreign_key(name, table, columns[:1], referred, referred_columns[:1], on_delete)
        op.execute(f'DROP SCHEMA IF EXISTS "{parts}"')  # refuses if anything else lives there
    with op.batch_alter_table('notification_deliveries', schema=None) as batch_op:
        batch_op.drop_column('citizen_id')


def _add_delivery_citizen() -> None:
    with op.batch_alter_table('notification_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('citizen_id', sa.Uuid(), nullable=True))
    op.execute('UPDATE notification_deliveries SET citizen_id = '
               '(SELECT n.subject_citizen_id FROM notifications n '
               'WHERE n.id = notification_deliveries.notification_id)')
    with op.batch_alter_table('notification_deliveries', schema=None) as batch_op:
        batch_op.alter_column('citizen_id', existing_type=sa.Uuid(), nullable=False)


def _partition_schema(bind: sa.engine.Connection) -> str:
    return f"{bind.execute(sa.text('SELECT current_schema()')).scalar_one()}_partitions"


def _add_foreign_key(name: str, table: str, columns: tuple[str, ...], referred: str,
                     referred_columns: tuple[str, ...], on_delete: str | None) -> None:
    cols = ', '.join(f'"{c}"' for c in columns)
    refs = ', '.join(f'"{c}"' for c in referred_columns)
    tail = f' ON DELETE {on_delete}' if on_delete else ''
    op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" FOREIGN KEY ({cols}) '
               f'REFERENCES "{referred}" ({refs}){tail}')


def _rows(bind: sa.engine.Connection, sql: str, **params: object) -> list[sa.Row]:
    return list(bind.execute(sa.text(sql), params))


def _rebuild(bind: sa.engine.Connection, table: str, column: str, parts: str, *,
             partitioned: bool) -> set[str]:
    """Rebuild `table` as a hash-partitioned table (or back as a plain one), keeping its rows,
    keys, indexes, foreign keys, triggers and grants. Returns the keys that were widened."""
    oid = bind.execute(sa.text('SELECT to_regclass(:t)::oid'), {'t': f'"{table}"'}).scalar_one()
    owner_grants = _rows(bind, """
        SELECT a.grantee::regrole::text AS grantee, a.privilege_type
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = :oid AND a.grantee <> 0 AND a.grantee <> c.relowner""", oid=oid)
    public_grants = _rows(bind, """
        SELECT a.privilege_type FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = :oid AND a.grantee = 0""", oid=oid)
    keys = _rows(bind, """
        SELECT c.conname, c.contype,
               array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
                     ORDER BY k.n)::text[] AS columns
        FROM pg_constraint c WHERE c.conrelid = :oid AND c.contype IN ('p', 'u')
        ORDER BY c.contype, c.conname""", oid=oid)
    others = _rows(bind, """
        SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint
        WHERE conrelid = :oid AND contype NOT IN ('p', 'u') AND conparentid = 0
        ORDER BY conname""", oid=oid)
    indexes = _rows(bind, """
        SELECT pg_get_indexdef(i.indexrelid) AS definition, i.indisunique,
               array(SELECT a.attname FROM pg_attribute a
                     WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey))::text[]
                   AS columns
        FROM pg_index i
        WHERE i.indrelid = :oid
          AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid
                                                        AND c.conrelid = :oid)
        ORDER BY 1""", oid=oid)
    triggers = _rows(bind, """
        SELECT pg_get_triggerdef(oid) AS definition FROM pg_trigger
        WHERE tgrelid = :oid AND NOT tgisinternal AND tgparentid = 0 ORDER BY tgname""",
                     oid=oid)

    staged = f'{table}__rebuilt'
    like = (f'(LIKE "{table}" INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMMENTS '
            f'INCLUDING COMPRESSION)')
    if partitioned:
        op.execute(f'CREATE TABLE "{staged}" {like} PARTITION BY HASH ("{column}")')
        for remainder in range(_PARTITIONS):
            op.execute(f'CREATE TABLE "{parts}"."{table}_p{remainder:02d}" PARTITION OF '
                       f'"{staged}" FOR VALUES WITH (MODULUS {_PARTITIONS}, '
                       f'REMAINDER {remainder})')
    else:
        op.execute(f'CREATE TABLE "{staged}" {like}')
    op.execute(f'INSERT INTO "{staged}" SELECT * FROM "{table}"')  # noqa: S608 - fixed names
    op.execute(f'DROP TABLE "{table}"')  # dropping a partitioned table drops its partitions
    op.execute(f'ALTER TABLE "{staged}" RENAME TO "{table}"')

    widened: set[str] = set()
    for name, contype, columns in keys:
        columns = list(columns)
        if partitioned and column not in columns:
            columns.append(column)
            widened.add(name)
        elif not partitioned and name in _WIDENED and columns[-1] == column:
            columns.pop()
        kind = 'PRIMARY KEY' if contype == 'p' else 'UNIQUE'
        cols = ', '.join(f'"{c}"' for c in columns)
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {kind} ({cols})')
    for name, definition in others:
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    for definition, unique, columns in indexes:
        if partitioned and unique and column not in columns:
            raise RuntimeError(f'unique index on {table} lacks {column}: {definition}')
        op.execute(definition.replace(' ON ONLY ', ' ON '))
    for (definition,) in triggers:
        op.execute(definition)
    # The new table got the schema's default privileges; give it the old table's instead.
    op.execute(f'REVOKE ALL ON "{table}" FROM PUBLIC')
    for (grantee,) in _rows(bind, """
            SELECT DISTINCT a.grantee::regrole::text FROM pg_class c, aclexplode(c.relacl) a
            WHERE c.oid = to_regclass(:t) AND a.grantee <> 0 AND a.grantee <> c.relowner""",
                            t=f'"{table}"'):
        op.execute(f'REVOKE ALL ON "{table}" FROM {grantee}')
    for grantee, privilege in owner_grants:
        op.execute(f'GRANT {privilege} ON "{table}" TO {grantee}')
    for (privilege,) in public_grants:
        op.execute(f'GRANT {privilege} ON "{table}" TO PUBLIC')
    op.execute(f'ANALYZE "{table}"')
    return widened
