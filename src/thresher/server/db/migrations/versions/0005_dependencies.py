"""Dependencies become rows of their own (`dependencies`): job on job, layer on layer (also across
jobs), frame by frame (stored as task-on-task rows) and task on task, each waiting for success or for
any end. The dependencies jobs and layers already had (`jobs.depends_on`, `layers.depends_on`) are
copied into it; those columns stay, as the spec said them.

Revision ID: 0005
Revises: 0004
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TARGETS = ("waiter_task_id", "target_job_id", "target_layer_id", "target_task_id")


def upgrade() -> None:
    op.create_table(
        "dependencies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("waiter_job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("waiter_layer_id", sa.Integer, sa.ForeignKey("layers.id", ondelete="CASCADE")),
        sa.Column("waiter_task_id", sa.Integer, sa.ForeignKey("tasks.id", ondelete="CASCADE")),
        sa.Column("target_job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target_layer_id", sa.Integer, sa.ForeignKey("layers.id", ondelete="CASCADE")),
        sa.Column("target_task_id", sa.Integer, sa.ForeignKey("tasks.id", ondelete="CASCADE")),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False))
    op.create_index("ix_dependencies_waiter", "dependencies", ["waiter_job_id", "waiter_task_id"])
    for column in _TARGETS:
        op.create_index(f"ix_dependencies_{column.removesuffix('_id')}", "dependencies", [column])
    _copy_old_dependencies()


def _copy_old_dependencies() -> None:
    """The dependencies of jobs made before: each job id in `jobs.depends_on`, each layer name in
    `layers.depends_on` (of the same job), waiting for success, as they always did."""
    conn = op.get_bind()
    table = sa.table("dependencies", *(sa.column(c) for c in (
        "waiter_job_id", "waiter_layer_id", "target_job_id", "target_layer_id", "kind", "mode")))
    rows = []
    known = {r.id for r in conn.execute(sa.text("SELECT id FROM jobs"))}
    for job in conn.execute(sa.text("SELECT id, depends_on FROM jobs")):
        for target in _json_list(job.depends_on):
            if isinstance(target, int) and target in known:
                rows.append({"waiter_job_id": job.id, "waiter_layer_id": None, "target_job_id": target,
                             "target_layer_id": None, "kind": "job", "mode": "success"})
    layers = conn.execute(sa.text("SELECT id, job_id, name, depends_on FROM layers")).all()
    by_name = {(layer.job_id, layer.name): layer.id for layer in layers}
    for layer in layers:
        for name in _json_list(layer.depends_on):
            target = by_name.get((layer.job_id, name))
            if target is not None:
                rows.append({"waiter_job_id": layer.job_id, "waiter_layer_id": layer.id,
                             "target_job_id": layer.job_id, "target_layer_id": target, "kind": "layer",
                             "mode": "success"})
    if rows:
        op.bulk_insert(table, rows)


def _json_list(value: object) -> list[object]:
    if isinstance(value, str):
        value = json.loads(value)
    return list(value) if isinstance(value, list) else []


def downgrade() -> None:
    op.drop_table("dependencies")
