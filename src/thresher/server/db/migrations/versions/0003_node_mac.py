"""Nodes keep the hardware address their agent registers (inventory; a later wake-on-LAN needs it).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("nodes", sa.Column("mac", sa.String(17), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("mac")
