"""Studio scheduling: projects become records (with folders, weights and caps), nodes join pools, a
project has a stake in each pool, layers may consume licence limits and take a service's defaults,
and a job keeps a blocklist of nodes that failed it.

Existing project labels become projects (`default` always exists), every node joins the `default`
pool, and the attempts running during the upgrade are booked in the new usage counters so that caps
set later count them.

Revision ID: 0004
Revises: 0003
"""

import json
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

READY = sa.text("state = 'ready'")
_FALSE = sa.text("false")


def upgrade() -> None:
    now = datetime.now(timezone.utc)
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("weight", sa.Float, nullable=False, server_default="1"),
        sa.Column("max_cores", sa.Integer),
        sa.Column("max_gpus", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table(
        "folders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("min_cores", sa.Integer),
        sa.Column("max_cores", sa.Integer),
        sa.UniqueConstraint("project_id", "name", name="uq_folders_project_name"))
    op.create_table(
        "pools",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table(
        "project_pools",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("pool", sa.String(100), sa.ForeignKey("pools.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("guaranteed_cores", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_cores", sa.Integer),
        sa.Column("guaranteed_gpus", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_gpus", sa.Integer))
    op.create_table(
        "limits",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("max_total", sa.Integer, nullable=False),
        sa.Column("max_per_node", sa.Integer))
    op.create_table(
        "services",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("defaults", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table(
        "usage",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("cores", sa.Integer, nullable=False, server_default="0"),
        sa.Column("gpus", sa.Integer, nullable=False, server_default="0"),
        sa.Column("units", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "usage_history",
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("cores", sa.Integer, nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("units", sa.Integer, nullable=False))
    op.create_index("ix_usage_history_key_at", "usage_history", ["key", "at"])
    op.create_table(
        "node_failures",
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False))

    op.add_column("nodes", sa.Column("pool", sa.String(100), nullable=False, server_default="default"))
    for column in (sa.Column("project_id", sa.Integer, nullable=False, server_default="1"),
                   sa.Column("folder_id", sa.Integer),
                   sa.Column("urgent", sa.Boolean, nullable=False, server_default=_FALSE),
                   sa.Column("urgent_by", sa.String(100)),
                   sa.Column("urgent_at", sa.DateTime(timezone=True)),
                   sa.Column("max_failures", sa.Integer),
                   sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
                   sa.Column("stop_reason", sa.Text)):
        op.add_column("jobs", column)
    for column in (sa.Column("pools", sa.JSON, nullable=False, server_default="[]"),
                   sa.Column("limits", sa.JSON, nullable=False, server_default="{}"),
                   sa.Column("service", sa.String(64)),
                   sa.Column("blocklist_after", sa.Integer)):
        op.add_column("layers", column)
    for column in (sa.Column("project_id", sa.Integer, nullable=False, server_default="1"),
                   sa.Column("folder_id", sa.Integer),
                   sa.Column("folder_priority", sa.Integer, nullable=False, server_default="0"),
                   sa.Column("urgent", sa.Boolean, nullable=False, server_default=_FALSE),
                   sa.Column("limit_key", sa.String(1000), nullable=False, server_default="")):
        op.add_column("tasks", column)
    op.add_column("attempts", sa.Column("booked", sa.JSON))
    op.add_column("attempts", sa.Column("out_of_memory", sa.Boolean))

    bind = op.get_bind()
    bind.execute(sa.text("INSERT INTO pools (name, created_at) VALUES ('default', :now)"), {"now": now})
    names = ["default"] + sorted({r[0] for r in bind.execute(sa.text("SELECT DISTINCT project FROM jobs"))} - {"default"})
    for number, name in enumerate(names, start=1):
        bind.execute(sa.text("INSERT INTO projects (id, name, weight, created_at) VALUES (:id, :name, 1, :now)"),
                     {"id": number, "name": name, "now": now})
        bind.execute(sa.text("UPDATE jobs SET project_id = :id WHERE project = :name"), {"id": number, "name": name})
        for key in (f"project:{number}", f"project:{number}/pool:default"):
            bind.execute(sa.text("INSERT INTO usage (key, cores, gpus, units) VALUES (:key, 0, 0, 0)"), {"key": key})
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("SELECT setval(pg_get_serial_sequence('projects', 'id'), :n)"), {"n": len(names)})
    bind.execute(sa.text("UPDATE tasks SET project_id = (SELECT jobs.project_id FROM jobs WHERE jobs.id = tasks.job_id)"))
    live = bind.execute(sa.text(
        "SELECT attempts.id, attempts.cores, attempts.gpu_ids, jobs.project_id FROM attempts "
        "JOIN jobs ON jobs.id = attempts.job_id WHERE attempts.state IN ('running', 'killing')")).all()
    for attempt in live:
        gpus = len(json.loads(attempt.gpu_ids) if isinstance(attempt.gpu_ids, str) else attempt.gpu_ids or [])
        keys = [f"project:{attempt.project_id}", f"project:{attempt.project_id}/pool:default"]
        bind.execute(sa.text("UPDATE attempts SET booked = :booked WHERE id = :id"),
                     {"id": attempt.id, "booked": json.dumps([[key, attempt.cores, gpus, 0] for key in keys])})
        for key in keys:
            bind.execute(sa.text("UPDATE usage SET cores = cores + :cores, gpus = gpus + :gpus WHERE key = :key"),
                         {"key": key, "cores": attempt.cores, "gpus": gpus})

    op.drop_index("ix_tasks_ready", table_name="tasks")
    op.create_index("ix_tasks_ready", "tasks", ["project_id", sa.literal_column("urgent DESC"),
                                                sa.literal_column("folder_priority DESC"),
                                                sa.literal_column("priority DESC"), "job_id", "id"],
                    unique=False, postgresql_where=READY, sqlite_where=READY)


def downgrade() -> None:
    op.drop_index("ix_tasks_ready", table_name="tasks")
    op.create_index("ix_tasks_ready", "tasks", [sa.literal_column("priority DESC"), "job_id", "id"], unique=False,
                    postgresql_where=READY, sqlite_where=READY)
    drops = {"attempts": ["booked", "out_of_memory"],
             "tasks": ["project_id", "folder_id", "folder_priority", "urgent", "limit_key"],
             "layers": ["pools", "limits", "service", "blocklist_after"],
             "jobs": ["project_id", "folder_id", "urgent", "urgent_by", "urgent_at", "max_failures", "failures",
                     "stop_reason"],
             "nodes": ["pool"]}
    for table, columns in drops.items():
        with op.batch_alter_table(table) as batch:  # SQLite drops a column by rebuilding the table
            for column in columns:
                batch.drop_column(column)
    for table in ("node_failures", "usage_history", "usage", "services", "limits", "project_pools", "pools", "folders", "projects"):
        op.drop_table(table)
