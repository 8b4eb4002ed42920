"""The database tables, as SQLAlchemy Core metadata (the schema is created by Alembic migrations).

Tasks carry copies of what the dispatcher filters and orders on (priority, resources, tag set), so the
dispatch query reads one indexed table. Those copies are written with the job and changed only by the
calls that change them (priority), never by triggers.
"""

from __future__ import annotations

from sqlalchemy import (
                        JSON,
                        BigInteger,
                        Boolean,
                        Column,
                        DateTime,
                        Float,
                        ForeignKey,
                        Index,
                        Integer,
                        MetaData,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
                        text,
)

metadata = MetaData()

# People (`server/users.py`, the rule of what each role may do in `model/permissions.py`). A user is
# never deleted, only disabled: jobs name their owner by user name. The `sessions` table (dashboard
# logins kept server-side) and LDAP users (`source`) fit beside it without a change here.
users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(16), nullable=False),             # admin | wrangler | artist | viewer
    Column("password_hash", Text),                          # argon2id; none: logs in with tokens only
    Column("source", String(16), nullable=False, server_default="local"),  # local | ldap
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

tokens = Table(
    "tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),  # sha256 of the secret
    Column("kind", String(16), nullable=False),                 # admin | user | enroll | node
    Column("name", String(100), nullable=False),
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("user_id", Integer),             # users.id of a person's token; none for node and enroll tokens
    Column("expires_at", DateTime(timezone=True)),  # none: until revoked
    Column("read_only", Boolean, nullable=False, server_default=text("false")),  # acts as a viewer
    Column("revoked_at", DateTime(timezone=True)),  # kept (listed as revoked), never accepted again
    # enrollment (migration 0011): registrations an enroll token may make (1: one-time; none: reusable),
    # made so far and the last one's time; the pool its nodes join (on a node token: the pool it was
    # enrolled into, which the agent's --pool does not change)
    Column("max_uses", Integer),
    Column("used_count", Integer, nullable=False, server_default="0"),
    Column("last_used_at", DateTime(timezone=True)),
    Column("pool", String(100)),
    Index("ix_tokens_user_id", "user_id"),
)

# Dashboard logins kept server-side (`server/dashboard/session.py`, `server/user_sessions.py`): the
# cookie names a row, so logging out (everywhere), disabling a user or changing their role ends it
# at once in every server process. A login with a token names it: revoking the token ends the session.
sessions = Table(
    "sessions", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_id", Integer, ForeignKey("tokens.id", ondelete="CASCADE")),  # none: logged in with a password
    Column("key", String(64), nullable=False),      # random, signed into the cookie: a reused id is no session
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),  # stamped when the cookie is refreshed
    Column("address", String(64)),
    Column("user_agent", String(300)),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", String(32)),               # logout | everywhere | disabled | role | password
    Index("ix_sessions_user_id", "user_id"),
)

# Failed password logins, by the name tried (a user's or not) and the address (`server/logins.py`; the
# lockout rule is `model/lockout.py`). Rows older than the window and the lockout are deleted.
login_failures = Table(
    "login_failures", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_name", String(100), nullable=False),
    Column("address", String(64), nullable=False),
    Index("ix_login_failures_user", "user_name", "at"),
    Index("ix_login_failures_address", "address", "at"),
    Index("ix_login_failures_at", "at"),
)

nodes = Table(
    "nodes", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("hostname", String(255), nullable=False),
    Column("os", String(32), nullable=False),
    Column("instance_id", String(64), nullable=False),
    Column("cores", Integer, nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("gpus", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("admin_state", String(16), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("cpu_percent", Float),
    Column("memory_used_mb", Integer),
    Column("load", Float),
    Column("apps", JSON),                   # application name -> executable path declared by the agent
    Column("mac", String(17)),              # hardware address of its first network interface (inventory)
    Column("pool", String(100), nullable=False, server_default="default"),  # the pool (cluster) it serves
    Column("removed_at", DateTime(timezone=True)),  # removed from the farm; the row stays for its attempts
)

jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("owner", String(100), nullable=False),
    Column("project", String(100), nullable=False),
    Column("sequence", String(100)),
    Column("shot", String(100)),
    Column("priority", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("killed", Boolean, nullable=False, default=False),
    Column("depends_on", JSON, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("total_tasks", Integer, nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("path_mapping", JSON),           # the spec's path rules, applied per node OS at dispatch
    Column("project_id", Integer, nullable=False, server_default="1"),  # projects.id (`project` is its name)
    Column("folder_id", Integer),           # folders.id, or none: the project's own jobs
    Column("urgent", Boolean, nullable=False, server_default=text("false")),  # ahead of fair share
    Column("urgent_by", String(100)),       # who marked it urgent, and when (shown with the job)
    Column("urgent_at", DateTime(timezone=True)),
    Column("max_failures", Integer),        # failed attempts after which it starts nothing new
    Column("failures", Integer, nullable=False, server_default="0"),  # failed attempts so far
    Column("stop_reason", Text),            # why it starts nothing new (failure limit), until retried
    Column("archived_at", DateTime(timezone=True)),  # out of the lists; its tasks gone, `summary` kept
    Column("summary", JSON),                # an archived job's statistics (`server/retention.py`)
    Column("submitted_by", String(100)),    # the user who submitted it on behalf of `owner` (none: the owner)
    Index("ix_jobs_state", "state"),
    Index("ix_jobs_finished_at", "finished_at"),
    Index("ix_jobs_project", "project"),
    Index("ix_jobs_owner", "owner"),
)

layers = Table(
    "layers", metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("name", String(100), nullable=False),
    Column("template", String(100), nullable=False),
    Column("args", JSON, nullable=False),
    Column("frames", Text, nullable=False),
    Column("chunk", Integer, nullable=False),
    Column("cores", Integer, nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("gpus", Integer, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("retries", Integer, nullable=False),
    Column("timeout", Float),
    Column("depends_on", JSON, nullable=False),
    Column("env", JSON, nullable=False),
    Column("cwd", Text),
    Column("total_tasks", Integer, nullable=False),
    Column("pools", JSON, nullable=False, server_default="[]"),    # pools its tasks may run in; [] any
    Column("limits", JSON, nullable=False, server_default="{}"),   # licence limit name -> units per task
    Column("service", String(64)),          # the service whose defaults it took
    Column("blocklist_after", Integer),     # failed attempts of the job on one node that blocklist it
    Column("scout", JSON),                  # scout frames: {frames, release, released} (model/scouts.py)
    Column("chunk_decision", JSON),         # what `chunk: auto` decided, from which measurements
    Column("paused", Boolean, nullable=False, server_default=text("false")),  # paused by itself (`layer_pause`)
    UniqueConstraint("job_id", "name", name="uq_layers_job_name"),
)

# The distinct tag sets that layers ask for; the dispatcher matches a node's tags against these few
# sets instead of against every task.
tag_sets = Table(
    "tag_sets", metadata,
    Column("key", String(1000), primary_key=True),  # sorted tags joined by ","; "" for none
)

tasks = Table(
    "tasks", metadata,
    Column("id", Integer, primary_key=True),
    # no foreign keys on job and layer: both checked once per layer by the only writer of task rows
    # (`db/bulk.insert_tasks`, migrations 0013 and 0014 say why); retention deletes a job's tasks with it
    Column("job_id", Integer, nullable=False),
    Column("layer_id", Integer, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("frames", Text, nullable=False),
    Column("frame_start", BigInteger, nullable=False),
    Column("frame_end", BigInteger, nullable=False),
    Column("frame_step", Integer, nullable=False),
    Column("frame_count", Integer, nullable=False),
    Column("part", JSON),                   # tile or wedge value of this task (see model.frames.Chunk)
    Column("state", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("cores", Integer, nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("gpus", Integer, nullable=False),
    Column("tag_key", String(1000), nullable=False),  # placement: tags and pools (`model.fit.placement`)
    Column("project_id", Integer, nullable=False, server_default="1"),
    Column("folder_id", Integer),
    Column("folder_priority", Integer, nullable=False, server_default="0"),
    Column("urgent", Boolean, nullable=False, server_default=text("false")),
    Column("limit_key", String(1000), nullable=False, server_default=""),  # "name=units,..." ("" none)
    Column("tries", Integer, nullable=False, default=0),
    Column("lost", Integer, nullable=False, default=0),
    Column("attempt_id", Integer),          # the live or latest attempt
    Column("node_id", Integer),             # where the live or latest attempt ran
    Column("progress", Float),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("scout", Boolean, nullable=False, server_default=text("false")),  # holds a scout frame
    Index("ix_tasks_job_state", "job_id", "state"),
    Index("ix_tasks_layer_state", "layer_id", "state", "frame_count"),  # a layer's counts off the index (0015)
)

attempts = Table(
    "attempts", metadata,
    Column("id", Integer, primary_key=True),
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("job_id", Integer, nullable=False),
    Column("number", Integer, nullable=False),
    Column("node_id", Integer, ForeignKey("nodes.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("cores", Integer, nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("gpu_ids", JSON, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("exit_code", Integer),
    Column("cpu_s", Float),
    Column("peak_rss_mb", Float),
    Column("reason", Text),
    Column("log_size", BigInteger, nullable=False, default=0),
    Column("booked", JSON),                 # usage counters it holds: [[key, cores, gpus, units], ...]
    Column("out_of_memory", Boolean),       # ended by the OOM killer or the agent's memory guard
    UniqueConstraint("task_id", "number", name="uq_attempts_task_number"),
    Index("ix_attempts_node_state", "node_id", "state"),
)

log_chunks = Table(
    "log_chunks", metadata,
    Column("attempt_id", Integer, ForeignKey("attempts.id", ondelete="CASCADE"), primary_key=True),
    Column("offset", BigInteger, primary_key=True),
    Column("data", Text, nullable=False),
    Column("arrived_at", DateTime(timezone=True)),  # when the agent's piece reached the server (none before 0012)
)

# Studio scheduling (`model.dispatch_rule`): shows, their folders, pools of nodes, what each show
# is guaranteed and may burst to in each pool, licence limits and services.
projects = Table(
    "projects", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("weight", Float, nullable=False, server_default="1"),   # fair-share weight
    Column("max_cores", Integer),           # farm-wide caps, none when null
    Column("max_gpus", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# A project's members: when a project has any, only they (and wranglers and admins) may submit to it.
project_members = Table(
    "project_members", metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)

folders = Table(
    "folders", metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),  # orders folders within the project
    Column("min_cores", Integer),           # guaranteed cores within the project
    Column("max_cores", Integer),
    UniqueConstraint("project_id", "name", name="uq_folders_project_name"),
)

pools = Table(
    "pools", metadata,
    Column("name", String(100), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# A project's stake in a pool (OpenCue's subscription): guaranteed size and burst cap.
project_pools = Table(
    "project_pools", metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("pool", String(100), ForeignKey("pools.name", ondelete="CASCADE"), primary_key=True),
    Column("guaranteed_cores", Integer, nullable=False, server_default="0"),
    Column("max_cores", Integer),
    Column("guaranteed_gpus", Integer, nullable=False, server_default="0"),
    Column("max_gpus", Integer),
)

limits = Table(
    "limits", metadata,
    Column("name", String(64), primary_key=True),
    Column("max_total", Integer, nullable=False),  # units in use farm-wide at most
    Column("max_per_node", Integer),        # units in use on one node at most, none when null
)

services = Table(
    "services", metadata,
    Column("name", String(64), primary_key=True),
    Column("defaults", JSON, nullable=False),  # layer fields: resources, tags, pools, limits, timeout, retries
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# What runs now, per project, project in pool, folder and limit ("project:3", "project:3/pool:gpu",
# "folder:7", "limit:nuke"): booked by the claim of an attempt, released when it ends, in the same
# transactions, so a cap is checked against exact figures (`server/usage.py`).
usage = Table(
    "usage", metadata,
    Column("key", String(200), primary_key=True),
    Column("cores", Integer, nullable=False, server_default="0"),
    Column("gpus", Integer, nullable=False, server_default="0"),
    Column("units", Integer, nullable=False, server_default="0"),
)

# The usage counters sampled over time (the projects page's chart of the last hour; pruned by age).
usage_history = Table(
    "usage_history", metadata,
    Column("at", DateTime(timezone=True), nullable=False),
    Column("key", String(200), nullable=False),
    Column("cores", Integer, nullable=False),
    Column("gpus", Integer, nullable=False),
    Column("units", Integer, nullable=False),
    Index("ix_usage_history_key_at", "key", "at"),
)

# A node that failed a job's attempts too often gets no more of its tasks (the job's blocklist).
node_failures = Table(
    "node_failures", metadata,
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("blocked", Boolean, nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
)

# Every state-changing call, after its answer, refusals included (`server/audit.py`); append-only,
# pruned by age (`audit_keep_days`). The agents' hot-path calls are here only when refused.
audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("who", String(100)),                     # the user or token name; none: no credential
    Column("kind", String(16), nullable=False),     # user | node | enroll | anonymous
    Column("role", String(16)),                     # a person's role
    Column("address", String(64)),                  # the client's address
    Column("method", String(8), nullable=False),
    Column("operation", String(100), nullable=False),  # the route's operation_id
    Column("target", JSON, nullable=False),         # the path parameters ({"job_id": "12"})
    Column("status", Integer, nullable=False),      # the HTTP status answered
    Column("allowed", Boolean, nullable=False),
    Column("reason", Text),                         # a refusal's detail
    Index("ix_audit_at", "at"),
    Index("ix_audit_who", "who"),
)

# What waits for what (`server/dependencies.py`, the rule in `model/dependencies.py`): a job, layer or
# task (the waiter) waits for a job, layer or task (the target), until it succeeded (mode `success`)
# or ended in any way (`finished`). Frame-by-frame dependencies are stored expanded, one row per pair
# of overlapping tasks; releasing reads them by target, hence the indexes on the target columns.
dependencies = Table(
    "dependencies", metadata,
    Column("id", Integer, primary_key=True),
    Column("waiter_job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("waiter_layer_id", Integer, ForeignKey("layers.id", ondelete="CASCADE")),  # none: the whole job
    Column("waiter_task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE")),    # none: the whole layer
    Column("target_job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("target_layer_id", Integer, ForeignKey("layers.id", ondelete="CASCADE")),
    Column("target_task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE")),
    Column("kind", String(8), nullable=False),   # job | layer | frame | task
    Column("mode", String(8), nullable=False),   # success | finished
    Index("ix_dependencies_waiter", "waiter_job_id", "waiter_task_id"),  # a job's edges, its coarse ones first
    Index("ix_dependencies_waiter_task", "waiter_task_id"),
    Index("ix_dependencies_target_job", "target_job_id"),
    Index("ix_dependencies_target_layer", "target_layer_id"),
    Index("ix_dependencies_target_task", "target_task_id"),
)

# The dispatch order within a project (urgent jobs, folder priority, job priority, oldest job, task
# order) read straight off an index that holds the ready tasks only (migration 0002 says why).
READY_TASK = text("state = 'ready'")
Index("ix_tasks_ready", tasks.c.project_id, tasks.c.urgent.desc(), tasks.c.folder_priority.desc(),
      tasks.c.priority.desc(), tasks.c.job_id, tasks.c.id, postgresql_where=READY_TASK, sqlite_where=READY_TASK)
