"""share links: SMART Health Links to a citizen's summary, and who opened them

Revision ID: 0009_share_links
Revises: 0008_care_teams
Create Date: 2026-12-06 14:00:00

A link keeps the hash of its manifest id, the file key and label encrypted under the citizen's
data key (`*_ct`, wiped when the link ends) and an argon2 hash of its passcode. An opening
keeps the recipient's stated name encrypted; its id is the audit event's. New tables get the
`phr_app` grants through the default privileges set in 0004.
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = '0009_share_links'
down_revision = '0008_care_teams'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('share_links',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('citizen_id', sa.Uuid(), nullable=False),
    sa.Column('manifest_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_by_citizen_id', sa.Uuid(), nullable=False),
    sa.Column('created_by_account_id', sa.Uuid(), nullable=True),
    sa.Column('created_by_client_id', sa.String(length=128), nullable=True),
    sa.Column('single_use', sa.Boolean(), nullable=False),
    sa.Column('has_passcode', sa.Boolean(), nullable=False),
    sa.Column('passcode_hash', sa.String(length=255), nullable=True),
    sa.Column('passcode_failures', sa.Integer(), nullable=False),
    sa.Column('key_ct', sa.LargeBinary(), nullable=True),
    sa.Column('label_ct', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('spent_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('locked_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('opened_count', sa.Integer(), nullable=False),
    sa.Column('last_opened_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_share_links_citizen_id_citizens')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_links')),
    sa.UniqueConstraint('manifest_hash', name=op.f('uq_share_links_manifest_hash'))
    )
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.create_index('ix_share_links_citizen_created', ['citizen_id', 'created_at'], unique=False)
        batch_op.create_index('ix_share_links_live_expiry', ['expires_at'], unique=False, sqlite_where=sa.text('key_ct IS NOT NULL'), postgresql_where=sa.text('key_ct IS NOT NULL'))

    op.create_table('share_link_openings',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('link_id', sa.Uuid(), nullable=False),
    sa.Column('citizen_id', sa.Uuid(), nullable=False),
    sa.Column('recipient_ct', sa.LargeBinary(), nullable=False),
    sa.Column('opened_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_share_link_openings_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['link_id'], ['share_links.id'], name=op.f('fk_share_link_openings_link_id_share_links')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_link_openings'))
    )
    with op.batch_alter_table('share_link_openings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_share_link_openings_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index('ix_share_link_openings_link', ['link_id', 'opened_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('share_link_openings', schema=None) as batch_op:
        batch_op.drop_index('ix_share_link_openings_link')
        batch_op.drop_index(batch_op.f('ix_share_link_openings_citizen_id'))
    op.drop_table('share_link_openings')
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.drop_index('ix_share_links_live_expiry', sqlite_where=sa.text('key_ct IS NOT NULL'), postgresql_where=sa.text('key_ct IS NOT NULL'))
        batch_op.drop_index('ix_share_links_citizen_created')
    op.drop_table('share_links')
