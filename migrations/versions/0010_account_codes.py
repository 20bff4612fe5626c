"""account codes: one-time codes that activate an account or reset its password

Revision ID: 0010_account_codes
Revises: 0009_share_links
Create Date: 2026-12-18 10:00:00

A code is kept only as an HMAC (`code_hash`) under a key derived from the secret key, bound to
the row, the person and the purpose; never its digits. New tables get the `phr_app` grants
through the default privileges set in 0004.
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = '0010_account_codes'
down_revision = '0009_share_links'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('citizen_id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=16), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('issued_by_account_id', sa.Uuid(), nullable=True),
    sa.Column('issued_by_facility_id', sa.Uuid(), nullable=True),
    sa.Column('issued_by_client_id', sa.String(length=64), nullable=True),
    sa.CheckConstraint("purpose IN ('activation', 'password-reset')", name=op.f('ck_account_codes_purpose')),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_account_codes_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['issued_by_account_id'], ['accounts.id'], name=op.f('fk_account_codes_issued_by_account_id_accounts')),
    sa.ForeignKeyConstraint(['issued_by_facility_id'], ['facilities.id'], name=op.f('fk_account_codes_issued_by_facility_id_facilities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_codes'))
    )
    with op.batch_alter_table('account_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_codes_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index('ix_account_codes_citizen_purpose', ['citizen_id', 'purpose', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('account_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_account_codes_citizen_purpose')
        batch_op.drop_index(batch_op.f('ix_account_codes_expires_at'))
    op.drop_table('account_codes')
