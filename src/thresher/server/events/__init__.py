"""The server's own event stream: one broadcaster per server process, fed from memory.

Route handlers call `ServerContext.publish(...)` after they change something (a job was submitted or
steered, an agent took work, finished an attempt, sent log bytes, heartbeated). Those calls only add
ids to a few sets (`changes`). Once per `tick_s` a single background task (`hub`) turns the pending
ids into one event and hands it to every open dashboard tab (`subscribers`, server-sent events), so a
hundred open tabs cost the same as one: the database is read by the broadcaster, never per tab per
second.

An event carries enough that a tab rarely has to ask the server anything:

- `jobs`, `nodes`, `logs`, `new_jobs`: what changed (ids).
- `job_info`: for each changed job, its state, pause, priority, task counts by state and total, read once
  per tick for all tabs. The jobs list repaints its progress bars from it and reloads only when a
  job it shows changed state (or a new job arrived).
- `grid`: for each job whose page is open (`/events?job=ID`), the task cells that changed since the
  last event (`grids`: one shared snapshot per watched job, which also answers the job page's first
  grid request from memory, diffed against the database once per tick while the job changes).
- `task_info`: for each task whose page is open (`/events?task=ID`), its state, live or latest
  attempt and tries, sent when they change (`watched_tasks`); the task page reloads its attempts only then.
- `summary`: the version of the farm summary (`farm_summary`: node and job counts, cores and GPUs in
  use, plus every node's CPU and memory history), refreshed at most every `summary_s` while somebody
  watches; overview and node pages render from it.

The overview's frames-per-minute chart is read incrementally (`frames_per_minute`). Nothing here is
the source of truth: a restart loses only the sparkline history.

The modules, one job each: `changes` (ids noted by API calls), `subscribers` (open tabs and the
broadcast), `grids`, `watched_tasks`, `farm_summary`, `frames_per_minute`, `reads` (what they read
from, counted), `hub` (the tick that ties them together).
"""

from thresher.server.events.farm_summary import build_summary
from thresher.server.events.hub import EventHub

__all__ = ["EventHub", "build_summary"]
