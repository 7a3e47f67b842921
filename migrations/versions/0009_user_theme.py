"""users.theme: the colour theme a person chose (system, light or dark)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:10:00

Dark mode follows the system's prefers-color-scheme unless the person picks light or dark with
the toggle in the page footer; a signed-in person's choice is kept here (docs/design.md).
"""
import sqlalchemy as sa
from alembic import op

NEVER_REUSE = {'sqlite_autoincrement': True}  # a rebuilt SQLite table keeps it (0006)

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None, table_kwargs=NEVER_REUSE) as batch_op:
        batch_op.add_column(
            sa.Column('theme', sa.String(length=8), nullable=False, server_default='system')
        )
        batch_op.create_check_constraint(
            op.f('ck_users_theme_known'), "theme IN ('system', 'light', 'dark')"
        )


def downgrade():
    with op.batch_alter_table('users', schema=None, table_kwargs=NEVER_REUSE) as batch_op:
        batch_op.drop_constraint(op.f('ck_users_theme_known'), type_='check')
        batch_op.drop_column('theme')
