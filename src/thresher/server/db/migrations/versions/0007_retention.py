"""Jobs and data kept in check: an archived job keeps its row with a summary of its statistics (its
task, attempt and log rows go), and a node removed from the farm keeps its row for the history of
the attempts that ran on it (`server/retention.py`).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("archived_at", sa.DateTime(timezone=True)))
    op.add_column("jobs", sa.Column("summary", sa.JSON))
    op.add_column("nodes", sa.Column("removed_at", sa.DateTime(timezone=True)))
    op.create_index("ix_jobs_finished_at", "jobs", ["finished_at"])


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35 and later): only the new index names these columns
    op.drop_index("ix_jobs_finished_at", table_name="jobs")
    op.drop_column("nodes", "removed_at")
    op.drop_column("jobs", "summary")
    op.drop_column("jobs", "archived_at")
