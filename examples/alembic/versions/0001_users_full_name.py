"""Add users.full_name through safe_migrate.

migrate_apply commits its own transactions (and refuses to run inside one),
so the call runs in Alembic's autocommit block.
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCRIPT = """
-- migrate:up
CREATE TABLE alembic_users (id bigint PRIMARY KEY, first_name text, last_name text);
ALTER TABLE alembic_users ADD COLUMN full_name text;
CREATE INDEX CONCURRENTLY alembic_users_full_name ON alembic_users (full_name);
-- migrate:down
DROP INDEX CONCURRENTLY alembic_users_full_name;
-- safe_migrate:allow ban-drop-table the down script drops what the up script created
DROP TABLE alembic_users;
"""


def upgrade():
    with op.get_context().autocommit_block():
        op.execute(sa.text("SELECT * FROM migrate_apply(:script, :version, :description)")
                   .bindparams(script=SCRIPT, version="alembic-0001",
                               description="users with full_name"))


def downgrade():
    with op.get_context().autocommit_block():
        op.execute(sa.text("SELECT * FROM migrate_rollback(:to_version)")
                   .bindparams(to_version=None))
