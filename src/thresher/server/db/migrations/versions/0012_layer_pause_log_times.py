"""A layer's own pause, and when each stored piece of a log arrived.

`layers.paused`: a person paused this layer (one by one, not its job); until then a layer was paused
only while it held paused tasks, so a layer whose tasks all still waited could not be paused, and a job's
resume resumed its layers too (`server/layer_pause.py`). `log_chunks.arrived_at`: when the agent's piece
that a stored row holds reached the server; the dashboard's log view shows it per line (rows written
before this revision have none).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("layers", sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.text("false")))
    op.add_column("log_chunks", sa.Column("arrived_at", sa.DateTime(timezone=True)))
    # layers paused the old way (they hold paused tasks in a job that is not paused) keep their pause
    op.execute("UPDATE layers SET paused = true WHERE EXISTS (SELECT 1 FROM tasks JOIN jobs ON jobs.id = tasks.job_id "
               "WHERE tasks.layer_id = layers.id AND tasks.state = 'paused' AND jobs.paused = false)")


def downgrade() -> None:
    op.drop_column("log_chunks", "arrived_at")
    op.drop_column("layers", "paused")
