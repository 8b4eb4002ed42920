"""The dispatch index holds only ready tasks.

`ix_tasks_dispatch` indexed every task by (state, priority, job, id). Each state change of a task
(ready -> running -> succeeded) wrote a new entry into it, and the dispatcher, reading the front of
the ready range, stepped over the entries of tasks claimed moments before. A partial index on
`state = 'ready'` gets an entry only when a task becomes ready, stays as small as the queue, and is
what the candidate query (`queries.CANDIDATES`, which spells the state as a literal so that the
planner can match the predicate) reads in dispatch order.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

READY = sa.text("state = 'ready'")


def upgrade() -> None:
    op.create_index("ix_tasks_ready", "tasks", [sa.literal_column("priority DESC"), "job_id", "id"], unique=False,
                    postgresql_where=READY, sqlite_where=READY)
    op.drop_index("ix_tasks_dispatch", table_name="tasks")


def downgrade() -> None:
    op.create_index("ix_tasks_dispatch", "tasks", ["state", sa.literal_column("priority DESC"), "job_id", "id"],
                    unique=False)
    op.drop_index("ix_tasks_ready", table_name="tasks")
