"""server-side defaults: account, course and enrolment flags and timestamps

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 05:10:00

The application always sets these columns; the database now sets them too, so a row written by
hand or by another tool starts as the model says: a pending student account, a draft course,
an enrolment not yet completed.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

DEFAULTS = {
    'users': [
        ('role', sa.String(16), sa.text("'student'")),
        ('is_active', sa.Boolean(), sa.false()),
        ('session_epoch', sa.Integer(), sa.text('0')),
        ('created_at', sa.DateTime(timezone=True), sa.func.now()),
    ],
    'courses': [
        ('is_published', sa.Boolean(), sa.false()),
        ('created_at', sa.DateTime(timezone=True), sa.func.now()),
        ('updated_at', sa.DateTime(timezone=True), sa.func.now()),
    ],
    'student_courses': [
        ('completed', sa.Boolean(), sa.false()),
        ('enrolled_at', sa.DateTime(timezone=True), sa.func.now()),
    ],
}


def _set(default_of):
    for table, columns in DEFAULTS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, type_, default in columns:
                batch_op.alter_column(
                    name, existing_type=type_, existing_nullable=False,
                    server_default=default_of(default),
                )


def upgrade():
    _set(lambda default: default)


def downgrade():
    _set(lambda default: None)
