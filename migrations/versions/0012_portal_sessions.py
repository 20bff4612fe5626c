"""portal sessions: the citizen portal's server-side sessions (backend-for-frontend)

Revision ID: 0012_portal_sessions
Revises: 0011_external_identities
Create Date: 2026-12-06 16:00:00

A row is found by the SHA-256 of the browser's cookie and its tokens are sealed under a key
derived from that cookie: the table alone opens no session.
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = '0012_portal_sessions'
down_revision = '0011_external_identities'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('portal_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('digest', sa.LargeBinary(length=32), nullable=False),
    sa.Column('phase', sa.String(length=16), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=True),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_sessions')),
    sa.UniqueConstraint('digest', name=op.f('uq_portal_sessions_digest'))
    )
    with op.batch_alter_table('portal_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_portal_sessions_expires_at', ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('portal_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_portal_sessions_expires_at')
    op.drop_table('portal_sessions')
