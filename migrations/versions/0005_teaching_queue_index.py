"""grading queue: a partial index of the work waiting for a grade, per block, oldest first

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00

The grading queue of a course merges one ordered list per gradable block: for each block, the
first waiting submission after a given (updated_at, id) is one probe of this index, whatever the
number of completions. student_id is in the index so the enrolment check needs no table read.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

WAITING = 'grade IS NULL OR graded_at IS NULL OR updated_at > graded_at'


def upgrade():
    op.create_index(
        'ix_completed_content_blocks_waiting',
        'completed_content_blocks',
        ['content_block_id', 'updated_at', 'id', 'student_id'],
        unique=False,
        postgresql_where=sa.text(WAITING),
        sqlite_where=sa.text(WAITING),
    )


def downgrade():
    op.drop_index('ix_completed_content_blocks_waiting', table_name='completed_content_blocks')
