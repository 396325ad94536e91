"""``dcapix report -o report.html``: one self-contained HTML page of the run history.

Everything is inline — CSS, the charts as SVG drawn here, a few lines of script that show times in
the viewer's time zone — so the file opens from disk, from a mail attachment or behind a firewall
with no network at all. Per pipeline (and Meltano schedule): its schedule and next runs, the last
outcome, rows and rows/s per stream over time, run durations (coloured by outcome), the recent
runs, the failures with their messages, and the current state per stream.

Every number is also in a ``data-*`` attribute (``data-run-id``, ``data-rows``, …) so a test — or a
scraper — can compare the page with ``dcapix runs list --json``.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .history import RunRecord, list_runs, parse_time

if TYPE_CHECKING:
    from .schedule import Job
    from .state import StateStore

__all__ = ["build_report", "collect_report", "write_report"]

PALETTE = ("#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#65a30d")
STATUS_COLORS = {
    "done": "#16a34a",
    "failed": "#dc2626",
    "interrupted": "#ea580c",
    "abandoned": "#9333ea",
    "skipped": "#94a3b8",
    "running": "#2563eb",
    "starting": "#2563eb",
}


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(n: float | int | None, digits: int = 0) -> str:
    if n is None:
        return "-"
    return f"{n:,.{digits}f}"


# ------------------------------------------------------------------------------------- the data
def collect_report(
    store: StateStore,
    *,
    jobs: Sequence[Job] = (),
    days: float = 30,
    max_runs: int = 200,
) -> dict[str, Any]:
    """What the page shows, as plain data (also what the report test compares against)."""
    from .history import utc_iso

    now = time.time()
    since = utc_iso(now - days * 86400)
    runs = list_runs(store, since=since, limit=None, streams=True)
    by_pipeline: dict[str, list[RunRecord]] = {}
    for r in runs:  # newest first
        lst = by_pipeline.setdefault(r.pipeline, [])
        if len(lst) < max_runs:
            lst.append(r)
    overview: dict[str, dict[str, Any]] = {}
    if jobs:
        from .schedule import schedule_overview

        overview = {row["job"]: row for row in schedule_overview(jobs, store, count=5)}
    state: dict[str, list[dict[str, Any]]] = {}
    for entry in store.list():
        state.setdefault(entry.pipeline, []).append(entry.as_dict())
    names = sorted(set(by_pipeline) | set(overview))
    pipelines = []
    for name in names:
        pruns = by_pipeline.get(name, [])
        current = state.get(name)
        if not current and pruns:  # Meltano keeps its own state: the last run's view of it
            latest = next((r for r in pruns if r.streams), None)
            if latest is not None:
                current = [
                    {
                        "stream": s.stream,
                        "partition": "",
                        "value": s.state_after,
                        "updated_at": latest.ended_at,
                        "run_id": latest.run_id,
                    }
                    for s in latest.streams
                    if s.state_after is not None
                ]
        pipelines.append(
            {
                "name": name,
                "schedule": overview.get(name),
                "runs": pruns,
                "state": current or [],
            }
        )
    return {
        "generated_at": utc_iso(now),
        "since": since,
        "days": days,
        "store": store.location,
        "pipelines": pipelines,
    }


# ------------------------------------------------------------------------------------ the charts
def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp  # pragma: no cover


def _short(v: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= size:
            return f"{v / size:g}{unit}"
    return f"{v:g}"


def _time_label(t: float, span: float) -> str:
    d = _dt.datetime.fromtimestamp(t, _dt.timezone.utc)
    if span < 120:
        return d.strftime("%H:%M:%S")
    if span < 2 * 86400:
        return d.strftime("%H:%M")
    return d.strftime("%m-%d %H:%M")


class _Frame:
    """Axes of a time chart: x = epoch seconds, y = 0 … ymax."""

    W, H, L, R, T, B = 640, 210, 58, 12, 12, 34

    def __init__(self, t0: float, t1: float, ymax: float) -> None:
        if t1 - t0 < 1:
            t0, t1 = t0 - 0.5, t1 + 0.5
        pad = (t1 - t0) * 0.04
        self.t0, self.t1 = t0 - pad, t1 + pad
        self.ymax = _nice_max(ymax)

    def x(self, t: float) -> float:
        return self.L + (t - self.t0) / (self.t1 - self.t0) * (self.W - self.L - self.R)

    def y(self, v: float) -> float:
        return self.H - self.B - v / self.ymax * (self.H - self.T - self.B)

    def axes(self, unit: str) -> list[str]:
        out = []
        for i in range(5):
            v = self.ymax * i / 4
            y = self.y(v)
            out.append(
                f'<line class="grid" x1="{self.L}" x2="{self.W - self.R}" y1="{y:.1f}" y2="{y:.1f}"/>'
                f'<text class="tick" x="{self.L - 6}" y="{y + 4:.1f}" text-anchor="end">{e(_short(v))}</text>'
            )
        span = self.t1 - self.t0
        for i in range(5):
            t = self.t0 + span * (i + 0.5) / 5
            out.append(
                f'<text class="tick" x="{self.x(t):.1f}" y="{self.H - self.B + 16}" text-anchor="middle">'
                f"{e(_time_label(t, span))}</text>"
            )
        out.append(
            f'<text class="unit" x="{self.L}" y="{self.H - 4}">{e(unit)} · time (UTC) →</text>'
            f'<line class="axis" x1="{self.L}" x2="{self.L}" y1="{self.T}" y2="{self.H - self.B}"/>'
            f'<line class="axis" x1="{self.L}" x2="{self.W - self.R}" y1="{self.H - self.B}" '
            f'y2="{self.H - self.B}"/>'
        )
        return out


def line_chart(
    title: str, series: dict[str, list[tuple[float, float, str]]], unit: str, kind: str, digits: int = 0
) -> str:
    """Lines with points: ``{stream: [(time, value, run_id), …]}``."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return f'<figure class="chart empty"><figcaption>{e(title)}</figcaption><p>no data</p></figure>'
    f = _Frame(min(p[0] for p in points), max(p[0] for p in points), max(p[1] for p in points))
    parts = f.axes(unit)
    legend = []
    for i, (stream, pts) in enumerate(sorted(series.items())):
        color = PALETTE[i % len(PALETTE)]
        pts = sorted(pts)
        if len(pts) > 1:
            path = " ".join(f"{f.x(t):.1f},{f.y(v):.1f}" for t, v, _ in pts)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{path}"/>')
        for t, v, run_id in pts:
            when = _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")
            parts.append(
                f'<circle class="pt" cx="{f.x(t):.1f}" cy="{f.y(v):.1f}" r="3.2" fill="{color}" '
                f'data-kind="{e(kind)}" data-stream="{e(stream)}" data-run-id="{e(run_id)}" '
                f'data-value="{v:.{digits}f}"><title>{e(stream)} · run {e(run_id)} · {e(when)}\n'
                f"{e(_num(v, digits))} {e(unit)}</title></circle>"
            )
        legend.append(f'<span class="key"><i style="background:{color}"></i>{e(stream)}</span>')
    return (
        f'<figure class="chart"><figcaption>{e(title)}</figcaption>'
        f'<svg viewBox="0 0 {f.W} {f.H}" role="img" aria-label="{e(title)}">{"".join(parts)}</svg>'
        f'<div class="legend">{"".join(legend)}</div></figure>'
    )


def duration_chart(runs: Sequence[RunRecord]) -> str:
    """One bar per run: its duration, coloured by outcome."""
    pts = [(parse_time(r.started_at) or 0.0, r) for r in runs if r.seconds is not None]
    if not pts:
        return '<figure class="chart empty"><figcaption>Duration per run</figcaption><p>no data</p></figure>'
    f = _Frame(min(t for t, _ in pts), max(t for t, _ in pts), max(r.seconds or 0 for _, r in pts))
    parts = f.axes("seconds")
    bw = max(2.0, min(14.0, (f.W - f.L - f.R) / max(len(pts), 1) * 0.6))
    for t, r in sorted(pts, key=lambda p: p[0]):
        x, y = f.x(t), f.y(r.seconds or 0)
        color = STATUS_COLORS.get(r.status, "#64748b")
        parts.append(
            f'<rect class="bar" x="{x - bw / 2:.1f}" y="{y:.1f}" width="{bw:.1f}" '
            f'height="{max(f.H - f.B - y, 0.5):.1f}" fill="{color}" data-run-id="{e(r.run_id)}" '
            f'data-status="{e(r.status)}" data-seconds="{r.seconds:.3f}"><title>run {e(r.run_id)} · '
            f"{e(r.status)} · {e(r.started_at)}\n{r.seconds:.2f} s</title></rect>"
        )
    statuses = sorted({r.status for _, r in pts})
    legend = "".join(
        f'<span class="key"><i style="background:{STATUS_COLORS.get(s, "#64748b")}"></i>{e(s)}</span>'
        for s in statuses
    )
    return (
        '<figure class="chart"><figcaption>Duration per run</figcaption>'
        f'<svg viewBox="0 0 {f.W} {f.H}" role="img" aria-label="duration per run">{"".join(parts)}</svg>'
        f'<div class="legend">{legend}</div></figure>'
    )


# -------------------------------------------------------------------------------------- the page
CSS = """
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--card:#fff}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}header{padding:20px 28px;background:#0f172a;color:#f8fafc}
header h1{margin:0 0 4px;font-size:22px}header p{margin:0;color:#cbd5e1}main{padding:18px 28px 40px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:0 0 18px}.card{background:var(--card);border:1px solid
var(--line);border-radius:8px;padding:10px 16px;min-width:140px}.card b{display:block;font-size:22px}
.card span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
section.pipeline{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;
margin:0 0 22px}section.pipeline h2{margin:0 0 6px;font-size:18px}.meta{color:var(--muted);margin:0 0 10px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:14px;margin:10px 0}
figure.chart{margin:0;border:1px solid var(--line);border-radius:8px;padding:8px 10px}
figure.chart figcaption{font-weight:600;margin-bottom:4px}figure.chart svg{width:100%;height:auto}
.grid{stroke:#eef2f7}.axis{stroke:#94a3b8}.tick,.unit{font-size:11px;fill:#64748b}
.legend{display:flex;gap:10px;flex-wrap:wrap;font-size:12px;color:#334155}
.key i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:13px}th,td{text-align:left;
padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}th{color:var(--muted);font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td code,td time{white-space:nowrap}code{font:12px ui-monospace,Menlo,monospace;
word-break:break-all}h3{font-size:14px;margin:14px 0 4px}.err{color:#b91c1c}.empty p{color:var(--muted)}
ul.next{margin:0;padding-left:18px}details summary{cursor:pointer;color:var(--muted)}
"""

SCRIPT = """
(function(){
  var fmt = new Intl.DateTimeFormat(undefined,{dateStyle:"medium",timeStyle:"medium"});
  document.querySelectorAll("time[datetime]").forEach(function(el){
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) { el.title = fmt.format(d) + " (your time zone)"; }
  });
  document.body.setAttribute("data-ready", "1");
})();
"""


def _badge(status: str | None) -> str:
    color = STATUS_COLORS.get(status or "", "#64748b")
    return f'<span class="badge" style="background:{color}">{e(status or "&ndash;")}</span>'


def _time(iso_text: str | None, *, offset: bool = False) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` (``offset``: with its UTC offset)."""
    if not iso_text:
        return "-"
    shown = iso_text[:19].replace("T", " ")
    if offset:
        shown += " " + (iso_text[19:].lstrip(".0123456789") or "+00:00")
    return f'<time datetime="{e(iso_text)}">{e(shown)}</time>'


def _pipeline_section(p: dict[str, Any], table_runs: int) -> str:
    runs: list[RunRecord] = p["runs"]
    chrono = list(reversed(runs))
    name = p["name"]
    sched = p["schedule"]
    out = [f'<section class="pipeline" data-pipeline="{e(name)}"><h2>{e(name)}</h2>']
    last = runs[0] if runs else None
    meta = []
    if sched:
        meta.append(f"schedule <b>{e(sched['schedule'])}</b>")
    meta.append(f"{len(runs)} run(s) in range")
    if last is not None:
        meta.append(f"last {_badge(last.status)} {_time(last.started_at)}")
    out.append(f'<p class="meta">{" · ".join(meta)}</p>')
    if sched:
        nxt = "".join(f'<li class="next-run">{_time(t, offset=True)}</li>' for t in sched["next_runs"])
        due = '<li class="due">due now (a slot was missed)</li>' if sched.get("due_now") else ""
        out.append(
            f"<h3>Next scheduled runs ({e(sched['timezone'])})</h3>"
            f'<ul class="next">{due}{nxt or "<li>not by itself</li>"}</ul>'
        )
    rows: dict[str, list[tuple[float, float, str]]] = {}
    rates: dict[str, list[tuple[float, float, str]]] = {}
    for r in chrono:
        t = parse_time(r.started_at) or 0.0
        for s in r.streams:
            if s.rows is None:
                continue
            rows.setdefault(s.stream, []).append((t, float(s.rows), r.run_id))
            rps = s.rows_per_second
            if rps is not None:
                rates.setdefault(s.stream, []).append((t, rps, r.run_id))
    out.append('<div class="charts">')
    out.append(line_chart("Rows per run, by stream", rows, "rows", "rows"))
    out.append(line_chart("Rows per second, by stream", rates, "rows/s", "rows_per_second", 1))
    out.append(duration_chart(chrono))
    out.append("</div>")
    # recent runs
    out.append(
        '<h3>Recent runs</h3><table class="runs"><thead><tr><th>run</th><th>trigger</th>'
        "<th>status</th><th>started (UTC)</th><th>seconds</th><th>rows</th><th>streams</th>"
        "<th>error</th></tr></thead><tbody>"
    )
    for r in runs[:table_runs]:
        streams = ", ".join(f"{s.stream}: {_num(s.rows)}" for s in r.streams)
        trig = r.trigger + (f" #{r.attempt}" if r.attempt > 1 else "")
        out.append(
            f'<tr class="run" data-run-id="{e(r.run_id)}" data-status="{e(r.status)}" '
            f'data-rows="{"" if r.rows is None else r.rows}" '
            f'data-seconds="{"" if r.seconds is None else f"{r.seconds:.3f}"}">'
            f"<td><code>{e(r.run_id)}</code></td><td>{e(trig)}</td><td>{_badge(r.status)}</td>"
            f'<td>{_time(r.started_at)}</td><td class="n">{_num(r.seconds, 2)}</td>'
            f'<td class="n">{_num(r.rows)}</td><td>{e(streams)}</td>'
            f'<td class="err">{e(r.error or "")}</td></tr>'
        )
    out.append("</tbody></table>")
    if len(runs) > table_runs:
        out.append(f'<p class="meta">{len(runs) - table_runs} older run(s) in the charts only.</p>')
    failures = [r for r in runs if r.status in ("failed", "abandoned", "interrupted")]
    out.append(f"<h3>Failures ({len(failures)})</h3>")
    if failures:
        out.append('<table class="failures"><tbody>')
        for r in failures:
            out.append(
                f'<tr class="failure" data-run-id="{e(r.run_id)}"><td>{_time(r.started_at)}</td>'
                f"<td>{_badge(r.status)}</td><td><code>{e(r.run_id)}</code> (attempt {r.attempt})</td>"
                f'<td class="err">{e(r.error or "(no message)")}</td></tr>'
            )
        out.append("</tbody></table>")
    else:
        out.append('<p class="meta">none in range</p>')
    out.append("<h3>Current state per stream</h3>")
    if p["state"]:
        out.append(
            '<table class="state"><thead><tr><th>stream</th><th>partition</th><th>bookmark</th>'
            "<th>updated (UTC)</th><th>run</th></tr></thead><tbody>"
        )
        for st in p["state"]:
            value = json.dumps(st["value"], sort_keys=True, default=str)
            out.append(
                f'<tr class="state" data-stream="{e(st["stream"])}" data-value="{e(value)}">'
                f"<td>{e(st['stream'])}</td><td>{e(st.get('partition') or '')}</td>"
                f"<td><code>{e(value)}</code></td><td>{_time(st.get('updated_at'))}</td>"
                f"<td><code>{e(st.get('run_id') or '')}</code></td></tr>"
            )
        out.append("</tbody></table>")
    else:
        out.append('<p class="meta">no stored state</p>')
    out.append("</section>")
    return "".join(out)


def build_report(data: dict[str, Any], *, title: str | None = None, table_runs: int = 25) -> str:
    """The HTML page for :func:`collect_report`'s data."""
    title = title or "dc-api-x run report"
    pipes = data["pipelines"]
    all_runs = [r for p in pipes for r in p["runs"]]
    failed = sum(1 for r in all_runs if r.status == "failed")
    rows = sum(r.rows or 0 for r in all_runs)
    cards = (
        f'<div class="cards"><div class="card" data-total="pipelines"><b>{len(pipes)}</b>'
        f'<span>pipelines</span></div><div class="card" data-total="runs"><b>{len(all_runs)}</b>'
        f'<span>runs</span></div><div class="card" data-total="failed"><b>{failed}</b><span>failed runs'
        f'</span></div><div class="card" data-total="rows"><b>{rows:,}</b><span>rows moved</span></div></div>'
    )
    body = "".join(_pipeline_section(p, table_runs) for p in pipes) or '<p class="meta">no runs recorded</p>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{e(title)}</h1><p>generated {_time(data['generated_at'])} UTC · runs since "
        f"{_time(data['since'])} · state store <code>{e(data['store'])}</code></p></header>"
        f"<main>{cards}{body}</main><script>{SCRIPT}</script></body></html>\n"
    )


def write_report(
    store: StateStore,
    path: str | os.PathLike[str],
    *,
    jobs: Sequence[Job] = (),
    days: float = 30,
    max_runs: int = 200,
    title: str | None = None,
) -> Path:
    """Collect, render and write the page atomically (temp file + fsync + rename)."""
    page = build_report(collect_report(store, jobs=jobs, days=days, max_runs=max_runs), title=title)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
