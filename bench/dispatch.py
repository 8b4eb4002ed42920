"""Dispatch throughput and idle-farm latency against a real Thresher server.

    .venv/bin/python bench/dispatch.py                      # both databases, 1,000 agents, 100,000 tasks
    .venv/bin/python bench/dispatch.py --db sqlite --agents 200 --tasks 20000 --seconds 10
    .venv/bin/python bench/dispatch.py --scenario studio   # the studio policy in play (see `studio_setup`)

What it does, per database (SQLite file, then a private PostgreSQL server started with initdb):

1. Throughput. Starts a real server (`python -m thresher.server`, as the e2e tests do), registers
   `--agents` simulated agents (asyncio and a tiny keep-alive HTTP client, bench/rawhttp.py, in `--procs` worker processes, `--cores` cores each),
   submits one job of `--tasks` one-frame `true` tasks and waits until they are all ready. Then every
   agent loops `POST /agent/work` -> `POST /agent/finish` (succeeded, log_size 0) -> again. Assignments
   are counted per second; the figure is the mean over the `--seconds` window after `--warmup`.
   `--scenario studio` puts the studio policy in play before submitting: 20 projects of weights 1-5,
   each with a guarantee and a burst cap in each of two pools (the agents split between them), 5
   licence limits, the tasks spread over one job per project whose tenth layer uses a limit, and the
   blocklists of 5% of the nodes naming a job.
2. Latency. On a fresh database, `--idle-agents` agents long-poll an empty farm; a one-task job is
   submitted and the time until an agent holds the assignment is measured, `--samples` times.

The simulator shares the machine with the server, so the figures are a floor for the server alone;
server and simulator CPU use are printed alongside. Nothing here is asserted: the figures are printed.
Loopback only; every loop is bounded by a deadline; all processes are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from tests.support.farm import Farm  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

from bench.rawhttp import RawConnection  # noqa: E402

API = "/api/v1"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def job_spec(name: str, frames: str) -> dict[str, Any]:
    return {"name": name, "priority": 50,
            "layers": [{"name": "l", "template": "command", "args": {"command": ["true"]},
                        "frames": frames, "chunk": 1, "resources": {"cores": 1, "memory_mb": 256}}]}


STUDIO_PROJECTS, STUDIO_POOLS, STUDIO_LIMITS, STUDIO_LAYERS = 20, ("farm", "gpu"), 5, 10


def studio_setup(db_url: str, agents: int) -> None:
    """The studio policy, written straight into the farm's database (what the admin API writes)."""
    from sqlalchemy import insert

    from thresher.model.dispatch_rule import limit_usage_key
    from thresher.server import studio, usage
    from thresher.server.db.engine import Database
    from thresher.server.db.tables import limits, project_pools

    db = Database(db_url)
    try:
        with db.write() as conn:
            for pool in STUDIO_POOLS:
                studio.ensure_pool(conn, pool)
            for i in range(STUDIO_PROJECTS):
                project = studio.add_project(conn, f"show{i:02d}", weight=1 + i % 5,
                                             max_cores=agents * 8 // 4 if i % 4 == 0 else None)
                for pool in STUDIO_POOLS:
                    conn.execute(insert(project_pools).values(project_id=project, pool=pool, guaranteed_cores=20,
                                                              max_cores=agents * 8 // 3))
            for i in range(STUDIO_LIMITS):
                conn.execute(insert(limits).values(name=f"licence{i}", max_total=agents // 2, max_per_node=4))
                usage.ensure(conn, [limit_usage_key(f"licence{i}")])
    finally:
        db.dispose()


def studio_jobs(tasks: int) -> list[dict[str, Any]]:
    """One job per project, `STUDIO_LAYERS` layers each, the last of them holding a licence."""
    per_layer = max(1, tasks // (STUDIO_PROJECTS * STUDIO_LAYERS))
    return [{"name": f"show{p:02d} work", "project": f"show{p:02d}", "priority": 50, "layers": [
        {"name": f"l{i}", "template": "command", "args": {"command": ["true"]}, "frames": f"1-{per_layer}",
         "chunk": 1, "resources": {"cores": 1, "memory_mb": 256},
         **({"limits": {f"licence{p % STUDIO_LIMITS}": 1}} if i == STUDIO_LAYERS - 1 else {})}
        for i in range(STUDIO_LAYERS)]} for p in range(STUDIO_PROJECTS)]


def studio_blocklists(db_url: str, job_ids: list[int]) -> None:
    """5% of the nodes are on one job's blocklist each."""
    from sqlalchemy import insert, select

    from thresher.server.clock import utcnow
    from thresher.server.db.engine import Database
    from thresher.server.db.tables import node_failures, nodes

    db = Database(db_url)
    try:
        with db.write() as conn:
            node_ids = list(conn.execute(select(nodes.c.id).order_by(nodes.c.id)).scalars())
            conn.execute(insert(node_failures), [
                {"job_id": job_ids[i % len(job_ids)], "node_id": node, "failures": 3, "blocked": True,
                 "last_failed_at": utcnow()} for i, node in enumerate(node_ids[::20])])
    finally:
        db.dispose()


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# ---------------------------------------------------------------------------------------- agents
async def register(http: httpx.AsyncClient, enroll: str, name: str, cores: int, pool: str | None = None,
                   base: str = "") -> str:
    body = {"name": name, "hostname": name, "os": "linux", "cores": cores, "memory_mb": 65536,
            "gpus": [], "tags": [], "instance_id": uuid.uuid4().hex, **({"pool": pool} if pool else {})}
    for attempt in range(5):
        r = await http.post(f"{base}{API}/agent/register", json=body, headers={"Authorization": f"Bearer {enroll}"})
        if r.status_code < 500:
            r.raise_for_status()
            return r.json()["token"]
        await asyncio.sleep(0.2 * (attempt + 1))
    r.raise_for_status()
    raise RuntimeError("unreachable")


def finish_body(assignments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"reports": [{"attempt_id": a["attempt_id"], "status": "succeeded", "exit_code": 0, "cpu_s": 0.0,
                         "peak_rss_mb": 0.0, "reason": None, "log_size": 0, "ended_at": now_iso()}
                        for a in assignments]}


@dataclass
class WorkerResult:
    per_second: dict[int, int] = field(default_factory=dict)
    work_calls: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0


async def agent_loop(url: str, token: str, t0: float, deadline: float, wait: float,
                     heartbeat: float, result: WorkerResult) -> None:
    conn = RawConnection(url, token)
    next_beat = time.time() + heartbeat * (0.5 + (hash(token) % 1000) / 1000) if heartbeat > 0 else float("inf")
    try:
        while time.time() < deadline:
            try:
                if time.time() >= next_beat:
                    await conn.post(f"{API}/agent/heartbeat", {"cpu_percent": 0.0, "memory_used_mb": 0, "load": 0.0,
                                                               "running": [], "pending_reports": []})
                    next_beat = time.time() + heartbeat
                remaining = max(0.0, deadline - time.time())
                status, answer = await conn.post(f"{API}/agent/work?wait={min(wait, max(remaining, 0.1)):.2f}", {},
                                                 timeout=wait + 30)
                result.work_calls += 1
                if status >= 400:
                    key = f"work {status}"
                    result.errors[key] = result.errors.get(key, 0) + 1
                    await asyncio.sleep(0.2)
                    continue
                assignments = (answer or {}).get("assignments", [])
                if assignments:
                    second = int(time.time() - t0)
                    result.per_second[second] = result.per_second.get(second, 0) + len(assignments)
                    status, _ = await conn.post(f"{API}/agent/finish", finish_body(assignments))
                    if status >= 400:
                        key = f"finish {status}"
                        result.errors[key] = result.errors.get(key, 0) + 1
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                key = type(exc).__name__
                result.errors[key] = result.errors.get(key, 0) + 1
                await asyncio.sleep(0.2)
    finally:
        conn.close()


async def worker_main(url: str, enroll: str, names: list[str], cores: int, ready_q: Any, go: Any,
                      start_at: Any, duration: float, wait: float, heartbeat: float) -> WorkerResult:
    limits = httpx.Limits(max_connections=len(names) * 2 + 10, max_keepalive_connections=len(names) * 2 + 10)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60, trust_env=False) as http:
        sem = asyncio.Semaphore(32)

        async def reg(name: str) -> str:
            async with sem:  # a studio scenario's agent names its pool: ssim-POOL-NNNNN
                return await register(http, enroll, name, cores,
                                      name.split("-")[1] if name.startswith("ssim-") else None)

        tokens = await asyncio.gather(*(reg(n) for n in names))
        ready_q.put(len(tokens))
        while not go.is_set():
            await asyncio.sleep(0.05)
        t0 = start_at.value
        result = WorkerResult()
        deadline = t0 + duration
        await asyncio.gather(*(agent_loop(url, tok, t0, deadline, wait, heartbeat, result) for tok in tokens))
        result.cpu_s = sum(psutil.Process().cpu_times()[:2])
        return result


def worker_entry(url: str, enroll: str, names: list[str], cores: int, ready_q: Any, go: Any, start_at: Any,
                 duration: float, wait: float, heartbeat: float, out_q: Any) -> None:
    raise_fd_limit()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    try:
        result = asyncio.run(worker_main(url, enroll, names, cores, ready_q, go, start_at, duration, wait,
                                         heartbeat))
    except BaseException as exc:  # report, never hang the parent
        ready_q.put(-1)
        out_q.put(("error", repr(exc)))
        return
    out_q.put(("ok", asdict(result)))


# ---------------------------------------------------------------------------------------- phases
def wait_ready(farm: Farm, job_id: int, want: int, timeout: float) -> float:
    t = time.perf_counter()
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job_id}")["counts"]["ready"] >= want, timeout=timeout,
                  interval=0.25, message=f"{want} ready tasks in job {job_id}")
    return time.perf_counter() - t


def await_registered(n_procs: int, ready_q: Any, out_q: Any, timeout: float) -> int:
    """Wait until every simulator process has registered its agents; how many there are in all."""
    registered = 0
    for _ in range(n_procs):
        n = ready_q.get(timeout=timeout)
        if n < 0:
            raise RuntimeError(f"a simulator process failed: {out_q.get(timeout=10)[1]}")
        registered += n
    return registered


class PgSampler:
    """`--sample-pg`: what the server's PostgreSQL backends are doing, sampled every `interval` seconds
    during the measured window (`pg_stat_activity`: state, wait event, the statement's first words), and
    how many sampled backends waited on a lock (`pg_locks` not granted). Printed as counts per kind, most
    first: where a round waits rather than computes."""

    def __init__(self, db_url: str, interval: float = 0.05) -> None:
        import threading
        self.db_url, self.interval = db_url, interval
        self.counts: dict[tuple[str, str, str], int] = {}
        self.timeline: list[tuple[float, int, list[tuple[str, str, str]]]] = []  # (time, lock waits, busy backends)
        self.samples = 0
        self.lock_waits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "PgSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT state, coalesce(wait_event_type || ':' || wait_event, 'cpu'), left(regexp_replace("
                    "query, '\\s+', ' ', 'g'), 60) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchall()
                waits = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
                self.lock_waits += waits[0] if waits else 0
                self.samples += 1
                busy = []
                for state, wait, query in rows:
                    if state == "idle":
                        continue
                    key = (state or "", wait or "", query or "")
                    self.counts[key] = self.counts.get(key, 0) + 1
                    busy.append(key)
                self.timeline.append((time.time(), waits[0] if waits else 0, busy))
                self._stop.wait(self.interval)

    def report(self, top: int = 25) -> str:
        lines = [f"  pg_stat_activity: {self.samples} samples, non-idle backends per sample by (state, wait, "
                 f"statement); lock waits per sample {self.lock_waits / max(1, self.samples):.2f}"]
        for (state, wait, query), n in sorted(self.counts.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"    {n / max(1, self.samples):6.2f}  {state:<20} {wait:<28} {query}")
        return "\n".join(lines)


    def slow_seconds(self, t0: float, lo: int, window: list[int], top: int = 6) -> str:
        """What the backends did in the window's slow seconds (under half its median): the stalls."""
        if not window:
            return ""
        median = statistics.median(window)
        lines = []
        for i, n in enumerate(window):
            if n >= median / 2:
                continue
            second = lo + i
            inside = [(w, busy) for t, w, busy in self.timeline if second <= t - t0 < second + 1]
            counts: dict[tuple[str, str, str], int] = {}
            for _, busy in inside:
                for key in busy:
                    counts[key] = counts.get(key, 0) + 1
            waits = sum(w for w, _ in inside) / max(1, len(inside))
            lines.append(f"  slow second {second} ({n} assignments, median {median:.0f}): {len(inside)} samples, "
                         f"lock waits per sample {waits:.2f}")
            for (state, wait, query), k in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
                lines.append(f"    {k / max(1, len(inside)):6.2f}  {state:<20} {wait:<28} {query}")
        return "\n".join(lines)


def cpu_of(processes: list[psutil.Process]) -> float:
    """User + system CPU seconds of these processes (those that have gone count nothing)."""
    total = 0.0
    for p in processes:
        try:
            total += sum(p.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def throughput(farm: Farm, args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready_q, out_q = ctx.Queue(), ctx.Queue()
    go, start_at = ctx.Event(), ctx.Value("d", 0.0)
    studio = args.scenario == "studio"
    names = [f"ssim-{STUDIO_POOLS[i % 2]}-{i:05d}" if studio else f"sim-{i:05d}" for i in range(args.agents)]
    if studio:
        studio_setup(farm.db_url, args.agents)
    slices = [names[i::args.procs] for i in range(args.procs)]
    duration = args.warmup + args.seconds
    procs = [ctx.Process(target=worker_entry, daemon=True,
                         args=(farm.server_url, farm.enroll_token, s, args.cores, ready_q, go, start_at, duration,
                               args.wait, args.heartbeat, out_q)) for s in slices if s]
    for p in procs:
        p.start()
    try:
        registered = await_registered(len(procs), ready_q, out_q, timeout=600)
        print(f"  registered {registered} agents", flush=True)

        t = time.perf_counter()
        specs = studio_jobs(args.tasks) if studio else [job_spec("bench", f"1-{args.tasks}")]
        jobs = [farm.api.request("POST", "/jobs", json=spec, timeout=600) for spec in specs]
        submit_s = time.perf_counter() - t
        ready_s = sum(wait_ready(farm, job["id"], job["total_tasks"], timeout=600) for job in jobs)
        if studio:
            studio_blocklists(farm.db_url, [job["id"] for job in jobs])
        print(f"  submitted {sum(j['total_tasks'] for j in jobs)} tasks in {submit_s:.2f}s "
              f"(+{ready_s:.2f}s until all ready)", flush=True)

        server_ps = psutil.Process(farm.server.pid) if farm.server and farm.server.pid else None
        server_tree = [server_ps, *server_ps.children(recursive=True)] if server_ps else []

        def cpu() -> float:
            return cpu_of(server_tree)

        start_at.value = time.time() + 0.2
        go.set()
        print(f"  agents start at {datetime.fromtimestamp(start_at.value, timezone.utc):%H:%M:%S.%f} UTC "
              f"(second 0 of the per-second counts)", flush=True)
        time.sleep(max(0.0, start_at.value + args.warmup - time.time()))
        cpu_start = cpu()
        sampler = PgSampler(farm.db_url).start() if args.sample_pg and farm.db_url.startswith("postgres") else None
        time.sleep(max(0.0, start_at.value + duration - time.time()))
        cpu_end = cpu()
        if sampler is not None:
            sampler.stop()
            print(sampler.report(), flush=True)

        results: list[WorkerResult] = []
        for _ in procs:
            kind, value = out_q.get(timeout=args.wait + 120)
            if kind != "ok":
                raise RuntimeError(f"a simulator process failed: {value}")
            results.append(WorkerResult(**value))
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    per_second: dict[int, int] = {}
    errors: dict[str, int] = {}
    for r in results:
        for s, n in r.per_second.items():
            per_second[s] = per_second.get(s, 0) + n
        for k, n in r.errors.items():
            errors[k] = errors.get(k, 0) + n
    lo, hi = int(args.warmup), int(args.warmup + args.seconds)
    window = [per_second.get(s, 0) for s in range(lo, hi)]
    if sampler is not None and (slow := sampler.slow_seconds(start_at.value, lo, window)):
        print(slow, flush=True)
    rate = sum(window) / max(1, len(window))
    total = sum(per_second.values())
    work_calls = sum(r.work_calls for r in results)
    return {"rate": rate, "total": total, "work_calls_per_s": work_calls / duration, "submit_s": submit_s, "ready_s": ready_s, "errors": errors,
            "server_cpu": (cpu_end - cpu_start) / args.seconds,
            "sim_cpu": sum(r.cpu_s for r in results), "per_second": window}


async def latency_async(farm: Farm, args: argparse.Namespace, agents_at: Farm | None = None) -> list[float]:
    """Submit-to-start on an idle farm: one-task jobs submitted through `farm`, taken by agents that wait on
    `agents_at` (another server process on the same database: bench/peers.py), or on `farm` itself."""
    limits = httpx.Limits(max_connections=args.idle_agents * 2 + 10)
    base = (agents_at or farm).server_url
    async with httpx.AsyncClient(base_url=farm.server_url, limits=limits, timeout=60, trust_env=False) as http:
        tokens = [await register(http, farm.enroll_token, f"idle-{i}", args.cores, base=base)
                  for i in range(args.idle_agents)]
        received: asyncio.Queue[float] = asyncio.Queue()
        stop = time.time() + args.samples * 5 + 60

        async def idle_agent(token: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            while time.time() < stop:
                try:
                    r = await http.post(f"{base}{API}/agent/work", params={"wait": 10}, json={}, headers=headers,
                                        timeout=40)
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
                    continue
                if r.status_code >= 400:
                    await asyncio.sleep(0.2)
                    continue
                assignments = r.json().get("assignments", [])
                if assignments:
                    received.put_nowait(time.perf_counter())
                    await http.post(f"{base}{API}/agent/finish", json=finish_body(assignments), headers=headers)

        agents = [asyncio.create_task(idle_agent(t)) for t in tokens]
        admin = {"Authorization": f"Bearer {farm.admin_token}"}
        samples: list[float] = []
        await asyncio.sleep(1.0)  # every agent is in its long poll
        for i in range(args.samples):
            t = time.perf_counter()
            r = await http.post(f"{API}/jobs", json=job_spec(f"lat-{i}", "1"), headers=admin)
            r.raise_for_status()
            try:
                got = await asyncio.wait_for(received.get(), timeout=10)
                samples.append(got - t)
            except asyncio.TimeoutError:
                samples.append(float("inf"))
            await asyncio.sleep(0.1)  # the agent is back in its long poll: the farm is idle again
        for a in agents:
            a.cancel()
        await asyncio.gather(*agents, return_exceptions=True)
        return samples


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


# ---------------------------------------------------------------------------------------- main
def run_db(kind: str, args: argparse.Namespace, tmp: Path, pg: PostgresServer | None) -> dict[str, Any]:
    out: dict[str, Any] = {"db": kind, "scenario": args.scenario}

    def url(tag: str) -> str:
        tag = f"{args.scenario}_{tag}"
        if kind == "sqlite":
            return f"sqlite:///{tmp / f'{kind}-{tag}.db'}"
        assert pg is not None
        return pg.create_database(f"bench_{tag}")

    node_timeout = max(60.0, args.heartbeat * 6)
    if not args.skip_throughput:
        print(f"[{kind}, {args.scenario}] throughput: {args.agents} agents x {args.cores} cores, {args.tasks} tasks", flush=True)
        farm = Farm(url("tput"), tmp / f"{kind}-{args.scenario}-tput", node_timeout=node_timeout).start(timeout=60)
        try:
            out.update(throughput(farm, args))
        except Exception:
            print(farm.logs_tail(30), file=sys.stderr)
            raise
        finally:
            farm.stop()
            if args.server_log:
                shutil.copyfile(farm.logs_dir / "server.log", args.server_log)
        print(f"  [{kind}, {args.scenario}] {out['rate']:.0f} assignments/s over {args.seconds:.0f}s (load average "
              f"{os.getloadavg()[0]:.2f}) "
              f"(per second: {out['per_second']}); errors: {out['errors'] or 'none'}", flush=True)
        print(f"  work calls {out['work_calls_per_s']:.0f}/s; CPU: server {out['server_cpu']:.2f} cores, "
              f"simulator {out['sim_cpu'] / (args.warmup + args.seconds):.2f} cores", flush=True)
    if not args.skip_latency:
        print(f"[{kind}] latency: {args.idle_agents} idle agents, {args.samples} one-task jobs", flush=True)
        farm = Farm(url("lat"), tmp / f"{kind}-{args.scenario}-lat", node_timeout=node_timeout).start(timeout=60)
        if args.scenario == "studio":
            studio_setup(farm.db_url, args.agents)
        try:
            samples = asyncio.run(latency_async(farm, args))
        except Exception:
            print(farm.logs_tail(30), file=sys.stderr)
            raise
        finally:
            farm.stop()
        finite = [s for s in samples if s != float("inf")]
        out["lat_median"] = statistics.median(samples) if samples else float("nan")
        out["lat_p99"] = percentile(samples, 99) if samples else float("nan")
        out["lat_lost"] = len(samples) - len(finite)
        print(f"  median {out['lat_median'] * 1000:.1f} ms, p99 {out['lat_p99'] * 1000:.1f} ms, "
              f"missed {out['lat_lost']}", flush=True)
    return out


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--scenario", choices=["plain", "studio", "both"], default="both",
                        help="plain: one job, one project; studio: projects, pools, limits, blocklists in play")
    parser.add_argument("--agents", type=int, default=1000, help="simulated agents (throughput phase)")
    parser.add_argument("--tasks", type=int, default=100_000, help="ready tasks submitted before measuring")
    parser.add_argument("--cores", type=int, default=8, help="cores per simulated agent")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the window opens")
    parser.add_argument("--procs", type=int, default=2, help="simulator processes")
    parser.add_argument("--wait", type=float, default=5.0, help="long-poll wait sent to /agent/work")
    parser.add_argument("--heartbeat", type=float, default=10.0, help="heartbeat interval per agent (0: none)")
    parser.add_argument("--samples", type=int, default=100, help="latency samples")
    parser.add_argument("--idle-agents", type=int, default=4, help="long-polling agents in the latency phase")
    parser.add_argument("--pg-fast", action="store_true", help="PostgreSQL without fsync (default: durable)")
    parser.add_argument("--sample-pg", action="store_true",
                        help="print what PostgreSQL's backends wait on during the throughput window")
    parser.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a postgresql.conf setting for the bench's server (e.g. auto_explain's)")
    parser.add_argument("--pg-log", help="keep PostgreSQL's log here")
    parser.add_argument("--server-log", help="keep the throughput phase's server log here")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args(argv)
    raise_fd_limit()

    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="thresher-bench-") as tmpdir:
        tmp = Path(tmpdir)
        pg = None
        try:
            if "postgresql" in kinds:
                pg = PostgresServer(fast=args.pg_fast, max_connections=500,
                                    extra_settings=dict(kv.split("=", 1) for kv in args.pg_setting)).start()
            scenarios = ["plain", "studio"] if args.scenario == "both" else [args.scenario]
            for kind in kinds:
                for scenario in scenarios:
                    rows.append(run_db(kind, argparse.Namespace(**{**vars(args), "scenario": scenario}), tmp, pg))
        finally:
            if pg is not None:
                if args.pg_log:
                    shutil.copyfile(pg.log_file, args.pg_log)
                pg.stop()

    print()
    print(f"load average at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1 / 5 / 15 min)")
    print("| database | scenario | agents | tasks | submit (s) | assignments/s | server CPU (cores) "
          "| latency median (ms) | latency p99 (ms) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        def f(key: str, fmt: str, scale: float = 1.0, r: dict[str, Any] = r) -> str:
            return format(r[key] * scale, fmt) if key in r else "-"
        print(f"| {r['db']} | {r['scenario']} | {args.agents} | {args.tasks} | {f('submit_s', '.2f')} | {f('rate', '.0f')} "
              f"| {f('server_cpu', '.2f')} | {f('lat_median', '.1f', 1000)} | {f('lat_p99', '.1f', 1000)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
