"""Enrollment tokens an admin manages (`server/enrollment.py`): how many registrations one may make
(`max_uses`: 1 for a one-time token, none for a reusable one), how many it made and when last, and
the pool the nodes it enrols join. A node's own credential carries the pool of the enrollment token
that made it (`tokens.pool`), so the agent's `--pool` does not move it out later.

Existing tokens come forward unchanged: reusable, no pool, never counted.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("max_uses", sa.Integer))
    op.add_column("tokens", sa.Column("used_count", sa.Integer, nullable=False, server_default="0"))
    op.add_column("tokens", sa.Column("last_used_at", sa.DateTime(timezone=True)))
    op.add_column("tokens", sa.Column("pool", sa.String(100)))


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35 and later): no index names these columns
    for column in ("pool", "last_used_at", "used_count", "max_uses"):
        op.drop_column("tokens", column)
