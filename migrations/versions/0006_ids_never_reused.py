"""ids never reused: AUTOINCREMENT on SQLite for every table with an integer id

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 18:00:00

Without AUTOINCREMENT SQLite gives a new row the highest id in the table plus one, so deleting
the newest course (user, block, ...) gives its id to the next one and an old link opens another
course. 0004 rebuilt completed_content_blocks; this rebuilds the others. PostgreSQL's sequences
never go back: nothing to do there.

Rebuilding a table that others reference (users, courses, ...) drops it, and with foreign keys
on, SQLite's DROP TABLE deletes its rows first, cascading to the children. migrations/env.py
turns foreign keys off for every run on SQLite and checks them before the commit; should they be
on anyway and any table have rows, this stops before changing anything.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TABLES = (
    'users', 'courses', 'sections', 'content_blocks', 'student_courses', 'outbox',
    'audit_events',
)


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    if bind.exec_driver_sql('PRAGMA foreign_keys').scalar():
        filled = [t for t in TABLES if bind.execute(sa.text(f'SELECT 1 FROM {t} LIMIT 1')).first()]
        if filled:
            raise RuntimeError('SQLite foreign keys are on: rebuilding would delete rows')
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate='always', table_kwargs={'sqlite_autoincrement': autoincrement}
        ):
            pass


def upgrade():
    _rebuild(autoincrement=True)


def downgrade():
    _rebuild(autoincrement=False)
