"""``dcapix report -o report.html`` opened in a real headless Chromium (Debian ``chromium``, driven
over the DevTools protocol): the page renders with no console error, no exception, no CSP
violation and no network request, and every number on it matches the run history.

``DCAPIX_UPDATE_SCREENSHOT=1`` also writes the screenshot of this fixture's report to
``docs/report-example.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from dc_api_x.runner.history import list_runs
from dc_api_x.runner.state import open_state_store
from tests.runner.conftest import dcapix, write_config
from tests.runner.schedsupport import make_items, source
from tests.support.chromium import HeadlessChromium, find_chromium

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        import warnings

        msg = "!!! chromium is not installed (apt-get install chromium) -- report browser test SKIPPED"
        warnings.warn(msg, stacklevel=1)
        pytest.skip(msg)
    return exe


def _history(project: Path) -> None:
    """Real runs: an incremental SQLite -> SQLite pipeline with two streams run six times as rows
    arrive, and a pipeline that fails."""
    src = project / "src.db"
    make_items(src, 300)
    dst = {"adapter": "sql", "url": f"sqlite:///{project / 'dst.db'}", "load_method": "upsert"}
    two = source(src)
    two["streams"].append(
        {"name": "audit", "table": "audit", "primary_keys": ["id"], "replication_key": "id"}
    )
    import sqlite3

    conn = sqlite3.connect(src)
    with conn:
        conn.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT)")
    conn.close()
    write_config(
        project,
        {
            "orders": {
                "source": two,
                "destination": dst,
                "schedule": {"cron": "0 */6 * * *", "timezone": "Europe/Paris"},
            },
            "broken": {
                "source": source(src),
                "destination": dst,
                "select": ["nope"],
                "schedule": "every 15m",
            },
        },
    )
    next_id, audit_id = 301, 1
    for batch in (0, 1200, 450, 0, 2600, 80):
        if batch:
            make_items(src, batch, start=next_id)
            next_id += batch
            conn = sqlite3.connect(src)
            with conn:
                conn.executemany(
                    "INSERT INTO audit VALUES (?, ?)",
                    [(i, f"a{i}") for i in range(audit_id, audit_id + batch // 10)],
                )
            conn.close()
            audit_id += batch // 10
        assert dcapix("run", "orders", "--no-progress") == 0
    for _ in range(2):
        assert dcapix("run", "broken", "--no-progress") == 1


def test_report_renders_in_chromium_and_matches_the_history(rplugins, project, chromium, capsys) -> None:
    _history(project)
    assert dcapix("report", "-o", "report.html") == 0
    page_file = project / "report.html"
    text = page_file.read_text()
    assert "http://" not in text and "https://" not in text  # nothing to fetch at view time
    assert "<link" not in text and "src=" not in text
    capsys.readouterr()
    assert dcapix("runs", "list", "--json", "--limit", "0") == 0
    history = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    with open_state_store(project_dir=project) as store:
        state = {(e.pipeline, e.stream): e.value for e in store.list()}
        assert len(list_runs(store, limit=None)) == len(history) == 8

    with HeadlessChromium(chromium) as browser:
        page = browser.open(page_file.as_uri())
        assert page.evaluate("document.body.dataset.ready") == "1"  # the script ran
        data = page.evaluate(
            """(() => {
              const q = (s, r) => Array.from((r || document).querySelectorAll(s));
              return {
                title: document.title,
                cards: Object.fromEntries(
                  q('[data-total]').map(c => [c.dataset.total, c.querySelector('b').textContent])),
                sections: q('section.pipeline').map(sec => ({
                  name: sec.dataset.pipeline,
                  runs: q('tr.run', sec).map(tr => ({id: tr.dataset.runId, status: tr.dataset.status,
                        rows: tr.dataset.rows, seconds: tr.dataset.seconds,
                        cells: q('td', tr).map(td => td.textContent.trim())})),
                  points: q('circle.pt', sec).map(c => ({kind: c.dataset.kind, stream: c.dataset.stream,
                        run: c.dataset.runId, value: c.dataset.value})),
                  bars: q('rect.bar', sec).map(b => ({run: b.dataset.runId, status: b.dataset.status,
                        seconds: b.dataset.seconds, height: b.getBBox().height})),
                  failures: q('tr.failure', sec).map(tr => ({run: tr.dataset.runId, text: tr.textContent})),
                  state: q('tr.state', sec).map(tr => ({stream: tr.dataset.stream, value: tr.dataset.value})),
                  next: q('li.next-run', sec).map(li => li.textContent),
                  svgs: q('svg', sec).map(s => s.getBoundingClientRect().width),
                })),
              };
            })()"""
        )
        shot = page.screenshot(project / "report.png", width=1280)
        problems = page.problems()
    assert problems == []

    assert data["title"] == "dc-api-x run report"
    assert data["cards"]["runs"] == "8" and data["cards"]["failed"] == "2"
    assert data["cards"]["rows"] == f"{sum(r['rows'] or 0 for r in history.values()):,}"
    sections = {s["name"]: s for s in data["sections"]}
    assert sorted(sections) == ["broken", "orders"]
    for name, sec in sections.items():
        assert sec["svgs"] and all(w > 200 for w in sec["svgs"])  # the charts are laid out
        expected = sorted(
            (r for r in history.values() if r["pipeline"] == name), key=lambda r: r["started_at"]
        )
        assert [r["id"] for r in sec["runs"]] == [r["run_id"] for r in reversed(expected)]
        for row in sec["runs"]:
            rec = history[row["id"]]
            assert row["status"] == rec["status"] and int(row["rows"]) == rec["rows"]
            assert float(row["seconds"]) == pytest.approx(rec["seconds"], abs=0.0005)
            assert row["cells"][5] == f"{rec['rows']:,}" and row["cells"][4] == f"{rec['seconds']:,.2f}"
            for s in rec["streams"]:
                assert f"{s['stream']}: {s['rows']:,}" in row["cells"][6]
        # chart points: rows and rows/s of every stream of every run
        points = {(p["kind"], p["stream"], p["run"]): float(p["value"]) for p in sec["points"]}
        want = {}
        for rec in expected:
            for s in rec["streams"]:
                want[("rows", s["stream"], rec["run_id"])] = float(s["rows"])
                if s["seconds"]:
                    want[("rows_per_second", s["stream"], rec["run_id"])] = round(s["rows"] / s["seconds"], 1)
        assert points == pytest.approx(want, abs=0.051)
        bars = {b["run"]: b for b in sec["bars"]}
        assert set(bars) == {r["run_id"] for r in expected}
        for rec in expected:
            assert bars[rec["run_id"]]["status"] == rec["status"]
            assert float(bars[rec["run_id"]]["seconds"]) == pytest.approx(rec["seconds"], abs=0.0005)
        longest = max(expected, key=lambda r: r["seconds"])["run_id"]
        assert bars[longest]["height"] == max(b["height"] for b in sec["bars"])
        assert len(sec["next"]) == 5
    orders, broken = sections["orders"], sections["broken"]
    assert [p["value"] for p in orders["points"] if p["kind"] == "rows" and p["stream"] == "items"] == [
        "300",
        "1200",
        "450",
        "0",
        "2600",
        "80",
    ]
    assert {s["stream"]: json.loads(s["value"]) for s in orders["state"]} == {
        "items": state[("orders", "items")],
        "audit": state[("orders", "audit")],
    }
    assert orders["failures"] == [] and len(broken["failures"]) == 2
    for f in broken["failures"]:
        assert history[f["run"]]["error"] in f["text"] and "unknown stream 'nope'" in f["text"]
    assert all(n.startswith("20") for n in orders["next"])  # times in the schedule's zone
    assert all(("+01:00" in n or "+02:00" in n) for n in orders["next"])  # Europe/Paris

    # the screenshot is a real, full-page PNG
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width == 1280 and height > 1500 and len(png) > 50_000
    if os.environ.get("DCAPIX_UPDATE_SCREENSHOT"):
        shutil.copy(shot, ROOT / "docs" / "report-example.png")
