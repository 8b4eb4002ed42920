"""The statements a submit runs: what the farm can tell about a spec, and the rows of a new job.

The tasks themselves are written in bulk by `thresher.server.db.bulk` (executemany / COPY).
"""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select

from thresher.server.db.queries.common import ids_in, per_dialect
from thresher.server.db.tables import jobs, layers, nodes, tag_sets

_JOB_IDS = ids_in(jobs.c.id, "job_ids")

# The state of each of these jobs (those a spec depends on); an id with no row names no job.
JOB_STATES = per_dialect(lambda d: select(jobs.c.id, jobs.c.state).where(_JOB_IDS[d]))
# What every registered node has, whatever it runs now: could any of them ever run a layer?
NODE_CAPACITIES = select(nodes.c.name, nodes.c.cores, nodes.c.memory_mb, nodes.c.gpus, nodes.c.tags, nodes.c.pool)
# A tag set first met in this submit.
INSERT_TAG_SET = insert(tag_sets)
# The job row of a submit (values bound per submit), giving back its new id.
INSERT_JOB = insert(jobs).returning(jobs.c.id)
# One layer row of a submit, giving back its new id (its tasks follow through `bulk.insert_tasks`).
INSERT_LAYER = insert(layers).returning(layers.c.id)
# The layer that new task rows name, if it is one of their job's; locked as a foreign-key check locks
# (PostgreSQL: FOR KEY SHARE, so it cannot go before the tasks are committed). Once per layer written,
# instead of a key checked on every task row (migration 0013).
LAYER_OF_JOB = (select(layers.c.id).where(layers.c.id == bindparam("layer_id"), layers.c.job_id == bindparam("job_id"))
                .with_for_update(read=True, key_share=True))
