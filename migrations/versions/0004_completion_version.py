"""completion version: an integer every UPDATE of a completion bumps (the grader's lock)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 10:00:00

A grader's form carries the version it showed; the grade is saved only if the row still has it
(UPDATE ... WHERE version = :v), so a grade never overwrites another grader's or lands on work
the student changed meanwhile. Existing rows start at 1. On SQLite the table is rebuilt with
AUTOINCREMENT so the id of an undone completion is never given to a new one (PostgreSQL's
sequences never reuse ids).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _batch(autoincrement: bool):
    if op.get_bind().dialect.name != 'sqlite':
        return op.batch_alter_table('completed_content_blocks', schema=None)
    return op.batch_alter_table(
        'completed_content_blocks', schema=None, recreate='always',
        table_kwargs={'sqlite_autoincrement': autoincrement},
    )


def upgrade():
    with _batch(autoincrement=True) as batch_op:
        batch_op.add_column(
            sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False)
        )


def downgrade():
    with _batch(autoincrement=False) as batch_op:
        batch_op.drop_column('version')
