"""admin search: trigram indexes on users.email and users.name, sort indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 23:30:00

On PostgreSQL the email and name indexes are GIN trigram indexes (pg_trgm), which serve the
admin's substring search (LIKE/ILIKE '%term%') at 100,000 users; elsewhere they are plain indexes.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(
            'ix_users_email_trgm', ['email'], unique=False,
            postgresql_using='gin', postgresql_ops={'email': 'gin_trgm_ops'},
        )
        batch_op.create_index(
            'ix_users_name_trgm', ['name'], unique=False,
            postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'},
        )
        batch_op.create_index('ix_users_name', ['name'], unique=False)
        batch_op.create_index('ix_users_created', ['created_at'], unique=False)
        batch_op.create_index('ix_users_last_login', ['last_login_at'], unique=False)


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_last_login')
        batch_op.drop_index('ix_users_created')
        batch_op.drop_index('ix_users_name')
        batch_op.drop_index('ix_users_name_trgm')
        batch_op.drop_index('ix_users_email_trgm')
    # pg_trgm stays: other objects may use it, and dropping an extension needs more rights.
