"""consent and audit: consents, access requests, break-glass, guardians, hash-chained audit

Revision ID: 0004_consent_audit
Revises: 0002_auth
Create Date: 2026-11-23 16:23:23.333259

On PostgreSQL also: the chain function the audit upsert calls, a trigger that refuses UPDATE
and DELETE of audit rows for every role (TRUNCATE, an owner's act, is not a row event), and the
`phr_app` role the application connects as (through a login role that is a member of it): it
may read and write every table but only INSERT and SELECT audit rows.
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = '0004_consent_audit'
down_revision = '0002_auth'
branch_labels = None
depends_on = None

_CHAIN_FUNCTION = """
CREATE OR REPLACE FUNCTION phr_audit_chain(previous bytea, digest bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT sha256(previous || digest) $$
"""

_APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION phr_audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

_APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_events_append_only
BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION phr_audit_events_append_only()
"""

# The role is cluster-wide: create it when missing (tolerating a concurrent creator), and skip
# the grants with a notice when this migration may not create roles (a DBA creates it first).
_GRANTS = """
DO $$
DECLARE
    schema_name text := current_schema();
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'phr_app') THEN
        BEGIN
            CREATE ROLE phr_app NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'role phr_app is missing and cannot be created: grants skipped';
                RETURN;
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO phr_app', schema_name);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO phr_app',
                   schema_name);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO phr_app', schema_name);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                   'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO phr_app', schema_name);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                   'GRANT USAGE, SELECT ON SEQUENCES TO phr_app', schema_name);
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM phr_app;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM phr_app;
END
$$
"""

_REVOKE = """
DO $$
DECLARE
    schema_name text := current_schema();
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'phr_app') THEN
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                       'REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM phr_app',
                       schema_name);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                       'REVOKE USAGE, SELECT ON SEQUENCES FROM phr_app', schema_name);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM phr_app', schema_name);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM phr_app', schema_name);
        EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM phr_app', schema_name);
    END IF;
END
$$
"""


def upgrade() -> None:
    op.create_table('access_digests',
    sa.Column('citizen_id', sa.Uuid(), nullable=False),
    sa.Column('reader', sa.String(length=64), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('citizen_id', 'reader', name=op.f('pk_access_digests'))
    )
    op.create_table('guardian_claim_failures',
    sa.Column('citizen_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('citizen_id', 'day', name=op.f('pk_guardian_claim_failures'))
    )
    op.create_table('audit_chain_heads',
    sa.Column('citizen_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('last_hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('citizen_id', name=op.f('pk_audit_chain_heads'))
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('citizen_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('occurred_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_role', sa.String(length=16), nullable=False),
    sa.Column('actor_account_id', sa.Uuid(), nullable=True),
    sa.Column('actor_citizen_id', sa.Uuid(), nullable=True),
    sa.Column('actor_practitioner_id', sa.Uuid(), nullable=True),
    sa.Column('actor_facility_id', sa.Uuid(), nullable=True),
    sa.Column('on_behalf_of', sa.Uuid(), nullable=True),
    sa.Column('section', sa.String(length=32), nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=True),
    sa.Column('sensitivity', sa.String(length=20), nullable=True),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('purpose', sa.String(length=24), nullable=True),
    sa.Column('decision', sa.String(length=8), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('consent_id', sa.Uuid(), nullable=True),
    sa.Column('break_glass_id', sa.Uuid(), nullable=True),
    sa.Column('client_id', sa.String(length=128), nullable=True),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('actor_label', sa.String(length=128), nullable=True),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('citizen_id', 'seq', name='uq_audit_events_citizen_seq')
    )
    op.create_table('access_log_flags',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('citizen_id', sa.Uuid(), nullable=False),
    sa.Column('audit_event_id', sa.Uuid(), nullable=False),
    sa.Column('flagged_by_citizen_id', sa.Uuid(), nullable=True),
    sa.Column('note_ct', sa.LargeBinary(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reviewed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['audit_event_id'], ['audit_events.id'], name=op.f('fk_access_log_flags_audit_event_id_audit_events')),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_access_log_flags_citizen_id_citizens')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_log_flags')),
    sa.UniqueConstraint('audit_event_id', name=op.f('uq_access_log_flags_audit_event_id'))
    )
    with op.batch_alter_table('access_log_flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_log_flags_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_log_flags_status'), ['status'], unique=False)

    op.create_table('break_glass_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('citizen_id', sa.Uuid(), nullable=False),
    sa.Column('practitioner_id', sa.Uuid(), nullable=False),
    sa.Column('facility_id', sa.Uuid(), nullable=False),
    sa.Column('reason_ct', sa.LargeBinary(), nullable=False),
    sa.Column('opened_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reviewed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by_account_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_break_glass_sessions_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['facility_id'], ['facilities.id'], name=op.f('fk_break_glass_sessions_facility_id_facilities')),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioners.id'], name=op.f('fk_break_glass_sessions_practitioner_id_practitioners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_break_glass_sessions'))
    )
    with op.batch_alter_table('break_glass_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_break_glass_sessions_citizen_expires', ['citizen_id', 'expires_at'], unique=False)
        batch_op.create_index('ix_break_glass_sessions_facility_opened', ['facility_id', 'opened_at'], unique=False)

    op.create_table('consents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('citizen_id', sa.Uuid(), nullable=False),
    sa.Column('grantee_type', sa.String(length=16), nullable=False),
    sa.Column('grantee_id', sa.Uuid(), nullable=False),
    sa.Column('sections', sa.JSON(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('access', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=24), nullable=False),
    sa.Column('data_from', sa.Date(), nullable=True),
    sa.Column('data_until', sa.Date(), nullable=True),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('access_request_id', sa.Uuid(), nullable=True),
    sa.Column('granted_by_citizen_id', sa.Uuid(), nullable=True),
    sa.Column('revoked_by_citizen_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_consents_citizen_id_citizens')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consents_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index('ix_consents_grantee', ['grantee_type', 'grantee_id'], unique=False)

    op.create_table('guardianships',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('guardian_citizen_id', sa.Uuid(), nullable=False),
    sa.Column('dependant_citizen_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('relationship', sa.String(length=32), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('valid_from', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('valid_until', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_via', sa.String(length=16), nullable=False),
    sa.Column('created_by_account_id', sa.Uuid(), nullable=True),
    sa.Column('created_by_facility_id', sa.Uuid(), nullable=True),
    sa.Column('revoked_by_account_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dependant_citizen_id'], ['citizens.id'], name=op.f('fk_guardianships_dependant_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['guardian_citizen_id'], ['citizens.id'], name=op.f('fk_guardianships_guardian_citizen_id_citizens')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guardianships'))
    )
    with op.batch_alter_table('guardianships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guardianships_dependant_citizen_id'), ['dependant_citizen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_guardianships_guardian_citizen_id'), ['guardian_citizen_id'], unique=False)
        batch_op.create_index('uq_guardianships_active_pair', ['guardian_citizen_id', 'dependant_citizen_id'], unique=True, sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))

    op.create_table('access_requests',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('citizen_id', sa.Uuid(), nullable=False),
    sa.Column('practitioner_id', sa.Uuid(), nullable=False),
    sa.Column('facility_id', sa.Uuid(), nullable=True),
    sa.Column('sections', sa.JSON(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('access', sa.String(length=16), nullable=False),
    sa.Column('reason_ct', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('answered_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_by_citizen_id', sa.Uuid(), nullable=True),
    sa.Column('consent_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_access_requests_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['consent_id'], ['consents.id'], name=op.f('fk_access_requests_consent_id_consents')),
    sa.ForeignKeyConstraint(['facility_id'], ['facilities.id'], name=op.f('fk_access_requests_facility_id_facilities')),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioners.id'], name=op.f('fk_access_requests_practitioner_id_practitioners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_requests'))
    )
    with op.batch_alter_table('access_requests', schema=None) as batch_op:
        batch_op.create_index('ix_access_requests_citizen_created', ['citizen_id', 'created_at'], unique=False)
        batch_op.create_index('ix_access_requests_practitioner_created', ['practitioner_id', 'created_at'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_CHAIN_FUNCTION)
        op.execute(_APPEND_ONLY_FUNCTION)
        op.execute(_APPEND_ONLY_TRIGGER)
        op.execute(_GRANTS)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_REVOKE)
        op.execute('DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events')
        op.execute('DROP FUNCTION IF EXISTS phr_audit_events_append_only()')

    with op.batch_alter_table('access_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_access_requests_practitioner_created')
        batch_op.drop_index('ix_access_requests_citizen_created')

    op.drop_table('access_requests')
    with op.batch_alter_table('guardianships', schema=None) as batch_op:
        batch_op.drop_index('uq_guardianships_active_pair', sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_guardianships_guardian_citizen_id'))
        batch_op.drop_index(batch_op.f('ix_guardianships_dependant_citizen_id'))

    op.drop_table('guardianships')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_grantee')
        batch_op.drop_index(batch_op.f('ix_consents_citizen_id'))

    op.drop_table('consents')
    with op.batch_alter_table('break_glass_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_break_glass_sessions_facility_opened')
        batch_op.drop_index('ix_break_glass_sessions_citizen_expires')

    op.drop_table('break_glass_sessions')
    with op.batch_alter_table('access_log_flags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_log_flags_status'))
        batch_op.drop_index(batch_op.f('ix_access_log_flags_citizen_id'))

    op.drop_table('access_log_flags')
    op.drop_table('audit_events')
    op.drop_table('audit_chain_heads')
    op.drop_table('guardian_claim_failures')
    op.drop_table('access_digests')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION IF EXISTS phr_audit_chain(bytea, bytea)')
