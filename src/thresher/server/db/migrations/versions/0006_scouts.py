"""Scout frames and chunks sized from measured frame times: a layer's scout (its frames, how the rest
is released, whether it was), which tasks are scout tasks, and what an automatic chunk size decided.
The `held` task state needs no schema (states are strings).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("layers", sa.Column("scout", sa.JSON))
    op.add_column("layers", sa.Column("chunk_decision", sa.JSON))
    op.add_column("tasks", sa.Column("scout", sa.Boolean, nullable=False, server_default=sa.text("false")))


def downgrade() -> None:
    # a plain DROP COLUMN (SQLite 3.35 and later has one): no index names these columns, and
    # rebuilding the tasks table would cost a large farm minutes
    op.drop_column("tasks", "scout")
    op.drop_column("layers", "chunk_decision")
    op.drop_column("layers", "scout")
