"""relationships: pending guardian claims, why and by whom a guardianship ended, flag reviews

Revision ID: 0007_relationships
Revises: 0006_records
Create Date: 2026-12-06 09:56:19.543124

A claim of a child by health ID and birth date waits in `guardian_claims` until a guardian in
force or the child's commune station answers it. A guardianship's end reason and a facility's
answer to a flag are encrypted (`*_ct`). New tables get the `phr_app` grants through the
default privileges set in 0004.
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = '0007_relationships'
down_revision = '0006_records'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('guardian_claims',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('dependant_citizen_id', sa.Uuid(), nullable=False),
    sa.Column('claimant_citizen_id', sa.Uuid(), nullable=False),
    sa.Column('relationship', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claimant_account_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_by_account_id', sa.Uuid(), nullable=True),
    sa.Column('answered_by_citizen_id', sa.Uuid(), nullable=True),
    sa.Column('answered_by_facility_id', sa.Uuid(), nullable=True),
    sa.Column('guardianship_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['claimant_citizen_id'], ['citizens.id'], name=op.f('fk_guardian_claims_claimant_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['dependant_citizen_id'], ['citizens.id'], name=op.f('fk_guardian_claims_dependant_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['guardianship_id'], ['guardianships.id'], name=op.f('fk_guardian_claims_guardianship_id_guardianships')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guardian_claims'))
    )
    with op.batch_alter_table('guardian_claims', schema=None) as batch_op:
        batch_op.create_index('ix_guardian_claims_claimant_created', ['claimant_citizen_id', 'created_at'], unique=False)
        batch_op.create_index('ix_guardian_claims_dependant_created', ['dependant_citizen_id', 'created_at'], unique=False)
        batch_op.create_index('uq_guardian_claims_pending_pair', ['claimant_citizen_id', 'dependant_citizen_id'], unique=True, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))

    with op.batch_alter_table('access_log_flags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('facility_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('outcome_note_ct', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by_account_id', sa.Uuid(), nullable=True))
        batch_op.create_index('ix_access_log_flags_facility_created', ['facility_id', 'created_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_access_log_flags_facility_id_facilities'), 'facilities', ['facility_id'], ['id'])

    with op.batch_alter_table('guardianships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_by_citizen_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('revoked_by_facility_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('end_reason_ct', sa.LargeBinary(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('guardianships', schema=None) as batch_op:
        batch_op.drop_column('end_reason_ct')
        batch_op.drop_column('revoked_by_facility_id')
        batch_op.drop_column('revoked_by_citizen_id')

    with op.batch_alter_table('access_log_flags', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_access_log_flags_facility_id_facilities'), type_='foreignkey')
        batch_op.drop_index('ix_access_log_flags_facility_created')
        batch_op.drop_column('reviewed_by_account_id')
        batch_op.drop_column('outcome_note_ct')
        batch_op.drop_column('outcome')
        batch_op.drop_column('facility_id')

    with op.batch_alter_table('guardian_claims', schema=None) as batch_op:
        batch_op.drop_index('uq_guardian_claims_pending_pair', sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_index('ix_guardian_claims_dependant_created')
        batch_op.drop_index('ix_guardian_claims_claimant_created')

    op.drop_table('guardian_claims')
