"""What a big idle farm costs the server: many agents heartbeating and long-polling for work.

    .venv/bin/python bench/heartbeats.py                         # 5,000 agents, SQLite and PostgreSQL
    .venv/bin/python bench/heartbeats.py --db sqlite --agents 1000 --seconds 20

Per database a real server is started (`python -m thresher.server`, as the e2e tests do) and
`--agents` simulated agents register with it from `--procs` worker processes (asyncio over the
minimal keep-alive HTTP client of bench/rawhttp.py). Each then behaves as an idle real agent does:
one connection heartbeats every `--heartbeat` seconds (the agent's default is 5 s; starts spread over
the first interval), another long-polls `POST /agent/work?wait=--wait` (the agent's default is 20 s)
and asks again when the poll ends. No job is submitted. `--style poll` (the default) is today's agent:
its idle poll carries the heartbeat (`model/heartbeat_rule.py`: held at most a third of the node
timeout) and the separate heartbeat is sent only when due (none, while the polls come back in time);
`--style beat` is an agent of before (a heartbeat every period, empty polls); `--style both` runs
both, one after the other, on servers of the same build. After `--warmup` seconds the CPU time of the
server process and of PostgreSQL's processes is measured over `--seconds`, with the heartbeats answered
per second and their latency as the agents saw it, and the simulator's own CPU over the same window. The design's figure: 5,000 agents heartbeating keep
the server under one core. The simulator shares the machine (its CPU use is printed too). Nothing is
asserted; figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from tests.support.farm import Farm  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

from bench.dispatch import API, await_registered, cpu_of, machine, percentile, raise_fd_limit, register  # noqa: E402
from bench.rawhttp import RawConnection  # noqa: E402
from thresher.model.heartbeat_rule import heartbeat_due, poll_beat_wait  # noqa: E402

BEAT = {"cpu_percent": 3.0, "memory_used_mb": 2048, "load": 0.1, "running": [], "pending_reports": []}
NODE_TIMEOUT_S = 60.0  # the server's default; agents then beat (or poll with a beat) at least every 20 s


@dataclass
class Seen:
    beats: int = 0               # heartbeats answered inside the window
    beat_polls: int = 0          # polls carrying a heartbeat sent inside the window
    polls: int = 0               # long polls that ended inside the window
    beat_ms: list[float] = field(default_factory=list)
    poll_s: list[float] = field(default_factory=list)  # how long each poll that ended in the window was held
    errors: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0           # the simulator process's CPU seconds inside the window

    def error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1


async def idle_agent(url: str, token: str, heartbeat: float, wait: float, window: tuple[float, float],
                     seen: Seen, style: str) -> None:
    opens, closes = window
    polls_beat = style == "poll"
    if polls_beat:
        wait = poll_beat_wait(wait, NODE_TIMEOUT_S)
    last_beat = [-math.inf]  # when figures last went out (a heartbeat, or a poll carrying them)

    async def beats() -> None:
        conn = RawConnection(url, token)
        await asyncio.sleep(random.uniform(0, heartbeat))
        try:
            while time.time() < closes:
                started = time.time()
                if not heartbeat_due(idle=True, since_last_beat_s=started - last_beat[0], heartbeat_s=heartbeat,
                                     poll_beat_s=wait if polls_beat else None):
                    await asyncio.sleep(heartbeat)
                    continue
                last_beat[0] = started
                try:
                    status, _ = await conn.post(f"{API}/agent/heartbeat", BEAT, timeout=60)
                    if status >= 400:
                        seen.error(f"heartbeat {status}")
                    elif opens <= started < closes:
                        seen.beats += 1
                        seen.beat_ms.append((time.time() - started) * 1000)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                    seen.error(f"heartbeat {type(exc).__name__}")
                await asyncio.sleep(max(0.0, heartbeat - (time.time() - started)))
        finally:
            conn.close()

    async def polls() -> None:
        conn = RawConnection(url, token)
        await asyncio.sleep(random.uniform(0, wait))  # agents start at different moments, not in one wave
        try:
            while time.time() < closes:
                asked = min(wait, max(0.1, closes - time.time()))
                body: dict[str, Any] = {}
                if polls_beat:
                    body = {"heartbeat": BEAT}
                    last_beat[0] = time.time()
                    if opens <= last_beat[0] < closes:
                        seen.beat_polls += 1
                asked_at = time.time()
                try:
                    status, _ = await conn.post(f"{API}/agent/work?wait={asked:.2f}", body, timeout=asked + 60)
                    if status >= 400:
                        seen.error(f"work {status}")
                        await asyncio.sleep(1)
                    elif opens <= time.time() < closes:
                        seen.polls += 1
                        seen.poll_s.append(time.time() - asked_at)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                    seen.error(f"work {type(exc).__name__}")
                    await asyncio.sleep(1)
        finally:
            conn.close()

    await asyncio.gather(beats(), polls())


async def worker_main(url: str, enroll: str, names: list[str], ready_q: Any, go: Any, times: Any,
                      heartbeat: float, wait: float, style: str) -> Seen:
    async with httpx.AsyncClient(base_url=url, timeout=120, trust_env=False) as http:
        gate = asyncio.Semaphore(16)

        async def join(name: str) -> str:
            async with gate:
                return await register(http, enroll, name, 16)

        tokens = await asyncio.gather(*(join(n) for n in names))
    ready_q.put(len(tokens))
    while not go.is_set():
        await asyncio.sleep(0.05)
    seen = Seen()
    window = (times[0], times[1])

    async def cpu_in_window() -> None:
        await asyncio.sleep(max(0.0, window[0] - time.time()))
        opened = sum(psutil.Process().cpu_times()[:2])
        await asyncio.sleep(max(0.0, window[1] - time.time()))
        seen.cpu_s = sum(psutil.Process().cpu_times()[:2]) - opened

    await asyncio.gather(cpu_in_window(), *(idle_agent(url, t, heartbeat, wait, window, seen, style) for t in tokens))
    return seen


def worker_entry(url: str, enroll: str, names: list[str], ready_q: Any, go: Any, times: Any,
                 heartbeat: float, wait: float, style: str, out_q: Any) -> None:
    raise_fd_limit()
    try:
        out_q.put(("ok", asdict(asyncio.run(worker_main(url, enroll, names, ready_q, go, times, heartbeat, wait,
                                                        style)))))
    except BaseException as exc:  # report, never hang the parent
        ready_q.put(-1)
        out_q.put(("error", repr(exc)))


def postgres_processes(pg: PostgresServer | None) -> list[psutil.Process]:
    if pg is None:
        return []
    try:
        postmaster = psutil.Process(int((pg.data_dir / "postmaster.pid").read_text().split()[0]))
        return [postmaster] + postmaster.children(recursive=True)
    except (OSError, ValueError, psutil.Error):
        return []


def run(kind: str, url: str, args: argparse.Namespace, root: Path, pg: PostgresServer | None,
        style: str) -> dict[str, Any]:
    print(f"[{kind}, {style}] {args.agents:,} agents: heartbeat every {args.heartbeat:g} s, long polls of "
          f"{args.wait:g} s" + (" carrying the heartbeat (separate ones only when due)" if style == "poll" else ""),
          flush=True)
    farm = Farm(url, root / f"{kind}-{style}", node_timeout=NODE_TIMEOUT_S)
    farm.start_server()
    ctx = mp.get_context("spawn")
    ready_q, out_q, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    times = ctx.Array("d", [0.0, 0.0])
    names = [f"idle-{i:05d}" for i in range(args.agents)]
    procs = [ctx.Process(target=worker_entry, daemon=True,
                         args=(farm.server_url, farm.enroll_token, names[i::args.procs], ready_q, go, times,
                               args.heartbeat, args.wait, style, out_q)) for i in range(args.procs)]
    try:
        started = time.perf_counter()
        for p in procs:
            p.start()
        joined = await_registered(len(procs), ready_q, out_q, timeout=1800)
        print(f"  {joined:,} agents registered in {time.perf_counter() - started:.1f} s", flush=True)
        assert farm.server is not None and farm.server.pid is not None
        server = psutil.Process(farm.server.pid)
        opens = time.time() + args.warmup
        times[0], times[1] = opens, opens + args.seconds
        go.set()
        time.sleep(max(0.0, opens - time.time()))
        server_start, pg_start = cpu_of([server]), cpu_of(postgres_processes(pg))
        time.sleep(max(0.0, opens + args.seconds - time.time()))
        server_cpu = (cpu_of([server]) - server_start) / args.seconds
        pg_cpu = (cpu_of(postgres_processes(pg)) - pg_start) / args.seconds if pg else 0.0
        seen: list[Seen] = []
        for _ in procs:
            status, value = out_q.get(timeout=args.wait + 180)
            if status != "ok":
                raise RuntimeError(f"a simulator process failed: {value}")
            seen.append(Seen(**value))
        nodes = farm.api.get("/nodes", limit=100_000)
        items = nodes["items"] if isinstance(nodes, dict) else nodes
        down = sum(1 for n in items if n.get("state") == "down")
    except Exception:
        print(farm.logs_tail(30), file=sys.stderr)
        raise
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
        farm.stop()
    beat_ms = [ms for s in seen for ms in s.beat_ms]
    poll_s = [x for s in seen for x in s.poll_s]
    errors: dict[str, int] = {}
    for s in seen:
        for key, n in s.errors.items():
            errors[key] = errors.get(key, 0) + n
    out = {"db": kind, "style": style, "server_cpu": server_cpu, "pg_cpu": pg_cpu,
           "beats_per_s": sum(s.beats for s in seen) / args.seconds,
           "beat_polls_per_s": sum(s.beat_polls for s in seen) / args.seconds,
           "polls_per_s": sum(s.polls for s in seen) / args.seconds,
           "poll_median_s": statistics.median(poll_s) if poll_s else float("nan"),
           "poll_max_s": max(poll_s) if poll_s else float("nan"),
           "beat_median_ms": statistics.median(beat_ms) if beat_ms else float("nan"),
           "beat_p99_ms": percentile(beat_ms, 99) if beat_ms else float("nan"),
           "sim_cpu": sum(s.cpu_s for s in seen) / args.seconds, "errors": errors, "down": down}
    print(f"  server {out['server_cpu']:.2f} cores" + (f", PostgreSQL {pg_cpu:.2f} cores" if pg else "")
          + f", simulator {out['sim_cpu']:.2f} cores; {out['beats_per_s']:,.0f} heartbeats/s "
          f"(median {out['beat_median_ms']:.1f} ms, p99 {out['beat_p99_ms']:.1f} ms), "
          f"{out['beat_polls_per_s']:,.0f} polls carrying one/s, "
          f"{out['polls_per_s']:,.0f} long polls ended/s (held median {out['poll_median_s']:.1f} s, "
          f"longest {out['poll_max_s']:.1f} s); nodes down: {down}; errors: {errors or 'none'}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--heartbeat", type=float, default=5.0, help="seconds between an agent's heartbeats")
    parser.add_argument("--wait", type=float, default=20.0, help="long-poll wait sent to /agent/work")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument("--procs", type=int, default=2, help="simulator processes")
    parser.add_argument("--style", choices=["poll", "beat", "both"], default="poll",
                        help="poll: idle polls carry the heartbeat (today's agent); beat: a heartbeat every period")
    args = parser.parse_args()
    raise_fd_limit()
    print(f"machine: {machine()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="thresher-bench-beats-") as tmp:
        root = Path(tmp)
        styles = ["beat", "poll"] if args.style == "both" else [args.style]
        if args.db in ("sqlite", "both"):
            for style in styles:
                rows.append(run("sqlite", f"sqlite:///{root / f'beats-{style}.db'}", args, root, None, style))
        if args.db in ("postgresql", "both"):
            pg = PostgresServer(fast=False, max_connections=500).start()
            try:
                for style in styles:
                    rows.append(run("postgresql", pg.create_database(), args, root, pg, style))
            finally:
                pg.stop()
    print()
    print("| database | agents | style | server CPU (cores) | PostgreSQL CPU (cores) | simulator CPU (cores) "
          "| heartbeats/s | polls carrying one/s | polls ended/s |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['db']} | {args.agents:,} | {r['style']} | {r['server_cpu']:.2f} | {r['pg_cpu']:.2f} "
              f"| {r['sim_cpu']:.2f} | {r['beats_per_s']:,.0f} | {r['beat_polls_per_s']:,.0f} | {r['polls_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
