"""A run's report as a wrangler reads it: Rich tables in the terminal, JSON, and one self-contained
HTML page with inline SVG charts (no script, no CDN: it can be mailed). Two reports side by side
when comparing."""

from __future__ import annotations

import html
import json
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from thresher.sim.report import Report

PALETTE = ["#3b6ea5", "#d9822b", "#3f9c55", "#b8433f", "#7d5ba6", "#8c6d3f", "#c45ca2", "#6b6b6b"]


def hms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def to_json(reports: Sequence[Report]) -> str:
    body: Any = reports[0].as_dict() if len(reports) == 1 else {"runs": [r.as_dict() for r in reports]}
    return json.dumps(body, indent=2)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def print_reports(console: Console, reports: Sequence[Report]) -> None:
    summary = Table(title="Simulation", show_lines=False)
    summary.add_column("")
    for r in reports:
        summary.add_column(r.name, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("nodes / cores", [f"{r.nodes} / {r.cores}" for r in reports]),
        ("tasks / attempts", [f"{r.tasks} / {r.attempts}" for r in reports]),
        ("failed / lost attempts", [f"{r.failed_attempts} / {r.lost_attempts}" for r in reports]),
        ("makespan", [hms(r.makespan) if r.makespan is not None else f"unfinished ({r.unfinished_jobs} jobs)"
                      for r in reports]),
        ("mean utilization", [_pct(r.mean_utilization) for r in reports]),
        ("wall time", [f"{r.wall_s:.1f} s ({r.instants} instants)" for r in reports]),
    ]
    for name, values in rows:
        summary.add_row(name, *values)
    console.print(summary)
    projects = sorted({p for r in reports for p in r.mean_share})
    share = Table(title="Per project: share of busy cores (target) and queue wait p50 / p95")
    share.add_column("project")
    for r in reports:
        share.add_column(f"{r.name} share", justify="right")
        share.add_column(f"{r.name} wait", justify="right")
    for p in projects:
        cells = []
        for r in reports:
            w = r.wait_by_project.get(p, {})
            cells += [f"{_pct(r.mean_share.get(p))} ({_pct(r.mean_target.get(p))})",
                      f"{hms(w.get('p50'))} / {hms(w.get('p95'))}"]
        share.add_row(p, *cells)
    console.print(share)
    prio = Table(title="Queue wait per priority, p50 / p95")
    prio.add_column("priority")
    for r in reports:
        prio.add_column(r.name, justify="right")
    for p in sorted({p for r in reports for p in r.wait_by_priority}, key=lambda v: -int(v)):
        prio.add_row(p, *[f"{hms(r.wait_by_priority.get(p, {}).get('p50'))} / "
                          f"{hms(r.wait_by_priority.get(p, {}).get('p95'))}" for r in reports])
    console.print(prio)
    if any(r.licence_peak for r in reports):
        lic = Table(title="Licences: peak units in use")
        lic.add_column("limit")
        for r in reports:
            lic.add_column(r.name, justify="right")
        for name in sorted({n for r in reports for n in r.licence_peak}):
            lic.add_row(name, *[str(r.licence_peak.get(name, "-")) for r in reports])
        console.print(lic)
    jobs = Table(title="Jobs: when each finished")
    jobs.add_column("job")
    jobs.add_column("project")
    for r in reports:
        jobs.add_column(r.name, justify="right")
    for i, job in enumerate(reports[0].jobs):
        cells = []
        for r in reports:
            other = r.jobs[i] if i < len(r.jobs) else None
            cells.append(hms(other["finished"]) if other and other["finished"] is not None
                         else (other["state"] if other else "-"))
        jobs.add_row(job["name"], job["project"], *cells)
    console.print(jobs)


# ---------------------------------------------------------------------- HTML

def svg_lines(edges: Sequence[float], series: dict[str, list[float]], *, dashed: dict[str, list[float]] | None = None,
              top: float | None = None, width: int = 640, height: int = 200, unit: str = "%") -> str:
    """A line chart of series over the buckets (dashed: the targets), with its axes, as inline SVG."""
    pad_l, pad_b, pad_t = 44, 22, 8
    inner_w, inner_h = width - pad_l - 8, height - pad_b - pad_t
    everything = [v for s in (*series.values(), *(dashed or {}).values()) for v in s]
    peak = top if top is not None else max(everything + [1e-9])
    end = edges[-1] if edges else 1.0
    mids = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def xy(t: float, v: float) -> str:
        return f"{pad_l + inner_w * t / end:.1f},{pad_t + inner_h * (1 - v / peak):.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{inner_w}" height="{inner_h}" fill="#fafafa" stroke="#ccc"/>']
    for frac in (0, 0.5, 1):
        y = pad_t + inner_h * (1 - frac)
        label = f"{100 * peak * frac:.0f}%" if unit == "%" else f"{peak * frac:.0f}"
        parts.append(f'<text x="{pad_l - 4}" y="{y + 3:.1f}" text-anchor="end">{label}</text>')
    for frac in (0, 0.5, 1):
        x = pad_l + inner_w * frac
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{hms(end * frac)}</text>')
    names = list(series)
    for i, name in enumerate(names):
        color = PALETTE[i % len(PALETTE)]
        points = " ".join(xy(t, v) for t, v in zip(mids, series[name], strict=True))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{points}"/>')
        if dashed and name in dashed:
            points = " ".join(xy(t, v) for t, v in zip(mids, dashed[name], strict=True))
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1" stroke-dasharray="4 3" '
                         f'points="{points}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: Sequence[str]) -> str:
    return " ".join(f'<span style="color:{PALETTE[i % len(PALETTE)]}">&#9632; {html.escape(n)}</span>'
                    for i, n in enumerate(names))


def _run_html(r: Report) -> str:
    e = html.escape
    out = [f"<section><h2>{e(r.name)}</h2>",
           f"<p>{r.nodes} nodes, {r.cores} cores; {r.tasks} tasks, {r.attempts} attempts "
           f"({r.failed_attempts} failed, {r.lost_attempts} lost). Makespan <b>{hms(r.makespan)}</b>; "
           f"mean utilization <b>{_pct(r.mean_utilization)}</b>. Simulated in {r.wall_s:.1f} s.</p>",
           "<h3>Utilization</h3>", svg_lines(r.edges, {"busy cores": r.utilization}, top=1.0),
           "<h3>Share of busy cores per project (dashed: target by weight)</h3>",
           svg_lines(r.edges, r.shares, dashed=r.targets, top=1.0), f"<p>{_legend(list(r.shares))}</p>"]
    if r.licences:
        out += ["<h3>Licences in use</h3>", svg_lines(r.edges, r.licences, unit="units"),
                f"<p>{_legend(list(r.licences))}</p>"]
    out.append("<h3>Per project</h3><table><tr><th>project</th><th>share</th><th>target</th>"
               "<th>wait p50</th><th>wait p95</th></tr>")
    for p in r.mean_share:
        w = r.wait_by_project.get(p, {})
        out.append(f"<tr><td>{e(p)}</td><td>{_pct(r.mean_share[p])}</td><td>{_pct(r.mean_target[p])}</td>"
                   f"<td>{hms(w.get('p50'))}</td><td>{hms(w.get('p95'))}</td></tr>")
    out.append("</table><h3>Per priority</h3><table><tr><th>priority</th><th>tasks</th><th>wait p50</th>"
               "<th>wait p95</th></tr>")
    for p, w in r.wait_by_priority.items():
        out.append(f"<tr><td>{e(p)}</td><td>{w['tasks']}</td><td>{hms(w['p50'])}</td><td>{hms(w['p95'])}</td></tr>")
    out.append("</table><h3>Jobs</h3><table><tr><th>job</th><th>project</th><th>priority</th><th>arrived</th>"
               "<th>finished</th><th>state</th></tr>")
    for j in r.jobs:
        out.append(f"<tr><td>{e(j['name'])}</td><td>{e(j['project'])}</td><td>{j['priority']}</td>"
                   f"<td>{hms(j['arrived'])}</td><td>{hms(j['finished'])}</td><td>{e(j['state'])}</td></tr>")
    out.append("</table></section>")
    return "".join(out)


def to_html(reports: Sequence[Report]) -> str:
    title = " vs ".join(html.escape(r.name) for r in reports)
    style = ("body{font-family:sans-serif;margin:1.5em;color:#222}main{display:flex;gap:2em;flex-wrap:wrap}"
             "section{flex:1;min-width:640px}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}td:first-child{text-align:left}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Thresher simulation: {title}</title>"
            f"<style>{style}</style></head><body><h1>Thresher simulation: {title}</h1><main>"
            + "".join(_run_html(r) for r in reports) + "</main></body></html>")
