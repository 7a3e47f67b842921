"""gradebook average rule: a teacher's choice per course, "graded" (the average of graded work)
or "zero" (missing work counts as 0)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 18:30:00

Existing courses keep what their gradebooks showed until now: the average of graded work. On
SQLite the batch rebuilds the table: it stays AUTOINCREMENT (0006).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

NEVER_REUSE = {'sqlite_autoincrement': True}  # a rebuilt SQLite table keeps it (0006)


def upgrade():
    with op.batch_alter_table('courses', schema=None, table_kwargs=NEVER_REUSE) as batch_op:
        batch_op.add_column(
            sa.Column('average_rule', sa.String(length=16), server_default='graded', nullable=False)
        )
        batch_op.create_check_constraint(
            op.f('ck_courses_average_rule_known'), "average_rule IN ('graded', 'zero')"
        )


def downgrade():
    with op.batch_alter_table('courses', schema=None, table_kwargs=NEVER_REUSE) as batch_op:
        batch_op.drop_constraint(op.f('ck_courses_average_rule_known'), type_='check')
        batch_op.drop_column('average_rule')
