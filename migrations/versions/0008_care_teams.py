"""care teams: directory search names, the commune/birth-year cohort index, dose verification

Revision ID: 0008_care_teams
Revises: 0007_relationships
Create Date: 2026-12-06 12:55:00

`search_name` holds a practitioner's or facility's public name folded for accent-insensitive
search. `citizens.cohort_bidx` is a blind index (HMAC) of the current commune and birth year, so
a station lists the children of its commune without decrypting everyone; it is filled when a
citizen is written (`flask registry reindex-cohorts` for rows written before). A citizen-reported
dose records who verified it, where and when.
"""

import sqlalchemy as sa
from alembic import op

import core.db
from registry.reference.text import fold

revision = '0008_care_teams'
down_revision = '0007_relationships'
branch_labels = None
depends_on = None

_VERIFICATION = ('verified_at', 'verified_by_practitioner_id', 'verified_facility_id')


def upgrade() -> None:
    for table in ('practitioners', 'facilities'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('search_name', sa.String(length=255), nullable=True))
            batch_op.create_index(batch_op.f(f'ix_{table}_search_name'), ['search_name'],
                                  unique=False)
    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cohort_bidx', sa.LargeBinary(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_citizens_cohort_bidx'), ['cohort_bidx'],
                              unique=False)
        # The worklist also lists the children a station registered (before any address).
        batch_op.create_index(batch_op.f('ix_citizens_registered_by_facility_id'),
                              ['registered_by_facility_id'], unique=False)
    with op.batch_alter_table('family_doctor_assignments', schema=None) as batch_op:
        batch_op.create_index('ix_family_doctor_assignments_panel',
                              ['practitioner_id', 'citizen_id'], unique=False,
                              sqlite_where=sa.text('ended_at IS NULL'),
                              postgresql_where=sa.text('ended_at IS NULL'))
    for table in ('record_entries', 'record_entry_versions'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('verified_at', core.db.UTCDateTime(timezone=True),
                                          nullable=True))
            batch_op.add_column(sa.Column('verified_by_practitioner_id', sa.Uuid(),
                                          nullable=True))
            batch_op.add_column(sa.Column('verified_facility_id', sa.Uuid(), nullable=True))

    # Public register names already present get their search form.
    connection = op.get_bind()
    for table, name_column in (('practitioners', 'full_name'), ('facilities', 'name')):
        register = sa.table(table, sa.column('id', sa.Uuid()), sa.column(name_column),
                            sa.column('search_name'))
        for row_id, name in connection.execute(
                sa.select(register.c.id, register.c[name_column])).all():
            connection.execute(register.update().where(register.c.id == row_id)
                               .values(search_name=fold(name or '')[:255]))


def downgrade() -> None:
    for table in ('record_entry_versions', 'record_entries'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(_VERIFICATION):
                batch_op.drop_column(column)
    with op.batch_alter_table('family_doctor_assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_family_doctor_assignments_panel',
                            sqlite_where=sa.text('ended_at IS NULL'),
                            postgresql_where=sa.text('ended_at IS NULL'))
    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_citizens_registered_by_facility_id'))
        batch_op.drop_index(batch_op.f('ix_citizens_cohort_bidx'))
        batch_op.drop_column('cohort_bidx')
    for table in ('facilities', 'practitioners'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_search_name'))
            batch_op.drop_column('search_name')
