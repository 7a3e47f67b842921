"""outbox: partial indexes of the unsent messages, for the admin's outbox page

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 10:00:00

/admin/outbox pages the pending messages by (next_attempt_at, id) and the given-up ones
(next_attempt_at = 9999-01-01, mail.GAVE_UP) by id, counts both, and shows the age of the
oldest pending one. Sent rows stay in the table for good (without their bodies), so the indexes
hold unsent rows only: they stay small however much mail has gone out, and each page or count
is one short range of one of them (docs/operations.md).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

UNSENT = 'sent_at IS NULL'
WAITING = "sent_at IS NULL AND next_attempt_at < '9999-01-01 00:00:00+00'"  # not given up


def upgrade():
    op.create_index(
        'ix_outbox_unsent', 'outbox', ['next_attempt_at', 'id'], unique=False,
        postgresql_where=sa.text(UNSENT), sqlite_where=sa.text(UNSENT),
    )
    op.create_index(
        'ix_outbox_waiting_since', 'outbox', ['created_at'], unique=False,
        postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING),
    )


def downgrade():
    op.drop_index(
        'ix_outbox_waiting_since', table_name='outbox',
        postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING),
    )
    op.drop_index(
        'ix_outbox_unsent', table_name='outbox',
        postgresql_where=sa.text(UNSENT), sqlite_where=sa.text(UNSENT),
    )
