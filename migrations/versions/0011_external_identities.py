"""external identities: accounts linked to a subject at an external OpenID provider (VNeID)

Revision ID: 0011_external_identities
Revises: 0010_account_codes
Create Date: 2026-12-20 10:00:00

The provider's subject is kept only as a keyed digest (`subject_digest`); one subject per
(issuer, account). New tables get the `phr_app` grants through the default privileges set in
0004.
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = '0011_external_identities'
down_revision = '0010_account_codes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('external_identities',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('issuer', sa.String(length=255), nullable=False),
    sa.Column('subject_digest', sa.LargeBinary(length=32), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_external_identities_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_identities')),
    sa.UniqueConstraint('issuer', 'account_id', name='uq_external_identities_account'),
    sa.UniqueConstraint('issuer', 'subject_digest', name='uq_external_identities_subject')
    )
    with op.batch_alter_table('external_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_external_identities_account_id'), ['account_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('external_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_external_identities_account_id'))
    op.drop_table('external_identities')
