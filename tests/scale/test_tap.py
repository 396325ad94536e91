"""``tap-dcapix`` with ``concurrency: 4``: records of several partitions interleave on stdout, and
every STATE covers only records written before it; the records and the final state are those of
the serial tap."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

TAP = Path(sys.executable).parent / "tap-dcapix"
ROWS = 6_000


def _run(config: dict[str, Any], tmp: Path, state: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    cfg = tmp / "tap.json"
    cfg.write_text(json.dumps(config))
    cmd = [str(TAP), "--config", str(cfg)]
    if state is not None:
        (tmp / "state.json").write_text(json.dumps(state))
        cmd += ["--state", str(tmp / "state.json")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def _check_states(messages: list[dict[str, Any]], start: int = 0) -> tuple[list[int], dict[str, Any]]:
    """Every STATE covers only ids already emitted; returns the ids in order and the last STATE."""
    seen: list[int] = []
    got: set[int] = set()
    last: dict[str, Any] = {}
    states = 0
    for m in messages:
        if m["type"] == "RECORD":
            seen.append(m["record"]["id"])
            got.add(m["record"]["id"])
        elif m["type"] == "STATE":
            bm = m["value"].get("bookmarks", {}).get("t") or {}
            v = bm.get("replication_key_value")
            if v is not None:
                states += 1
                missing = set(range(start + 1, v + 1)) - got
                assert not missing, f"STATE at {v}: {len(missing)} ids not emitted yet, e.g. {min(missing)}"
            last = m["value"]
    assert states > 5
    return seen, last


def test_tap_partitions_interleave_and_states_cover_only_emitted(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(1, ROWS + 1)])
    base = {
        "adapter": "sql",
        "url": f"sqlite:///{db}",
        "streams": [{"table": "t", "replication_key": "id"}],
        "batch_size": 50,
        "arrow": False,
    }
    serial = _run(base, tmp_path)
    parallel = _run({**base, "concurrency": 4}, tmp_path)
    ids, final = _check_states(parallel)
    serial_ids, serial_final = _check_states(serial)
    assert sorted(ids) == serial_ids == list(range(1, ROWS + 1))
    assert ids != serial_ids  # the partitions did interleave
    assert final == serial_final
    # an incremental run from that state: only the new rows, again with exact STATEs
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(ROWS + 1, ROWS + 801)])
    more, final2 = _check_states(_run({**base, "concurrency": 4}, tmp_path, state=final), start=ROWS)
    assert sorted(more) == list(range(ROWS + 1, ROWS + 801))
    assert final2["bookmarks"]["t"]["replication_key_value"] == ROWS + 800


def test_via_singer_passes_workers_to_the_tap(tmp_path: Path, monkeypatch) -> None:
    """``dcapix run --via-singer --workers 4``: tap-dcapix reads partitions; the rows and the stored
    state equal those of the serial in-process run."""
    import pyarrow.dataset as ds
    import yaml

    from dc_api_x.cli import main
    from dc_api_x.runner.state import open_state_store

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{TAP.parent}:{__import__('os').environ.get('PATH', '')}")
    db = tmp_path / "s.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(1, 3001)])
    src = {"adapter": "sql", "url": f"sqlite:///{db}", "streams": [{"table": "t", "replication_key": "id"}]}
    pipes = {
        n: {"source": src, "destination": {"adapter": "parquet", "path": str(tmp_path / n)}}
        for n in ("a", "b")
    }
    (tmp_path / "dcapix.yml").write_text(yaml.safe_dump({"pipelines": pipes}))
    assert main(["run", "a", "--no-progress"]) == 0
    assert main(["run", "b", "--no-progress", "--via-singer", "--workers", "4"]) == 0

    def rows(n: str) -> list[Any]:
        return sorted(ds.dataset(str(tmp_path / n / "t"), format="parquet").to_table().to_pylist(), key=str)

    assert rows("b") == rows("a")
    with open_state_store(project_dir=tmp_path) as s:
        a = s.get("a", "t")
        b = s.list("b", "t", partition="singer")
    assert a is not None and b and b[0].value["replication_key_value"] == a["replication_key_value"]
    from dc_api_x.runner.config import PipelineConfig
    from dc_api_x.runner.pipeline import RunOptions
    from dc_api_x.runner.process import _partition_settings

    cfg = PipelineConfig.model_validate(pipes["b"])
    assert _partition_settings(cfg, RunOptions(workers=4)) == {"concurrency": 4}
    assert _partition_settings(cfg, RunOptions()) == {}
