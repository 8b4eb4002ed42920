"""The audit log: every state-changing call, who made it, and whether it was allowed (`server/audit.py`).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("who", sa.String(100)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16)),
        sa.Column("address", sa.String(64)),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("operation", sa.String(100), nullable=False),
        sa.Column("target", sa.JSON, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text))
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_who", "audit", ["who"])


def downgrade() -> None:
    op.drop_index("ix_audit_who", table_name="audit")
    op.drop_index("ix_audit_at", table_name="audit")
    op.drop_table("audit")
