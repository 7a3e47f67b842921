"""teacher requests: with TEACHER_SIGNUP=approval a teacher's sign-up starts as a student with
the time of the request, until an admin approves or refuses it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 19:00:00

A partial index holds the open requests only (the admin's "Teacher requests" filter).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

OPEN = 'teacher_requested_at IS NOT NULL'
NEVER_REUSE = {'sqlite_autoincrement': True}  # a rebuilt SQLite table keeps it (0006)


def upgrade():
    with op.batch_alter_table('users', schema=None, table_kwargs=NEVER_REUSE) as batch_op:
        batch_op.add_column(
            sa.Column('teacher_requested_at', sa.DateTime(timezone=True), nullable=True)
        )
    op.create_index(
        'ix_users_teacher_requests', 'users', ['teacher_requested_at'], unique=False,
        postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN),
    )


def downgrade():
    op.drop_index(
        'ix_users_teacher_requests', table_name='users',
        postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN),
    )
    with op.batch_alter_table('users', schema=None, table_kwargs=NEVER_REUSE) as batch_op:
        batch_op.drop_column('teacher_requested_at')
