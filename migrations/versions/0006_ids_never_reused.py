"""ids never reused: AUTOINCREMENT on SQLite for every table with an integer id

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 18:00:00

Without AUTOINCREMENT SQLite gives a new row the highest id in the table plus one, so deleting
the newest course (user, block, ...) gives its id to the next one and an old link opens another
course. 0004 rebuilt completed_content_blocks; this rebuilds the others. PostgreSQL's sequences
never go back: nothing to do there.

Rebuilding a table that others reference (users, courses, ...) drops it, and with foreign keys
on, SQLite's DROP TABLE deletes its rows first, cascading to the children. So foreign keys are
turned off for the rebuild (the pragma only works outside a transaction: this is the first
statement of the run when upgrading an existing database) and checked afterwards; if they could
not be turned off and any table has rows, the upgrade stops before changing anything.
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
    bind.exec_driver_sql('PRAGMA foreign_keys=OFF')
    if bind.exec_driver_sql('PRAGMA foreign_keys').scalar():
        filled = [t for t in TABLES if bind.execute(sa.text(f'SELECT 1 FROM {t} LIMIT 1')).first()]
        if filled:
            raise RuntimeError(
                'Cannot turn SQLite foreign keys off inside this transaction; run this '
                'migration on its own (flask db upgrade 0006).'
            )
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate='always', table_kwargs={'sqlite_autoincrement': autoincrement}
        ):
            pass
    broken = bind.exec_driver_sql('PRAGMA foreign_key_check').fetchall()
    if broken:
        raise RuntimeError(f'foreign keys broken by the rebuild: {broken[:5]}')
    # migrations/env.py turns foreign keys on again once the transaction is committed.


def upgrade():
    _rebuild(autoincrement=True)


def downgrade():
    _rebuild(autoincrement=False)
