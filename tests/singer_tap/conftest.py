"""Fixtures of the tap tests: a real SQLite source, the tap run in-process or as a subprocess."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from tests.singer_tap.sqlite_adapter import LitePlugin

ROOT = Path(__file__).resolve().parents[2]
TAP_BIN = Path(sys.executable).parent / "tap-dcapix"


def make_items(
    path: Path, ids: range, *, table: str = "items", ts: Callable[[int], str] | None = None
) -> None:
    """Create/extend a table of ``id``, ``name``, ``amount``, ``updated_at`` rows."""
    ts = ts or (lambda i: f"2024-01-01T00:00:{i // 4:02d}+00:00")
    con = sqlite3.connect(path)
    con.execute(
        f'CREATE TABLE IF NOT EXISTS "{table}" (id INTEGER PRIMARY KEY, name TEXT NOT NULL, '
        "amount REAL, updated_at TEXT NOT NULL)"
    )
    con.executemany(
        f'INSERT INTO "{table}" VALUES (?,?,?,?)', [(i, f"name-{i}", i * 0.5, ts(i)) for i in ids]
    )
    con.commit()
    con.close()


def parse_messages(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def records_of(msgs: list[dict[str, Any]], stream: str | None = None) -> list[dict[str, Any]]:
    return [m["record"] for m in msgs if m["type"] == "RECORD" and (stream is None or m["stream"] == stream)]


def last_state(msgs: list[dict[str, Any]]) -> dict[str, Any]:
    states = [m["value"] for m in msgs if m["type"] == "STATE"]
    assert states, "no STATE message"
    return states[-1]


@pytest.fixture
def lite_plugins() -> Iterator[Any]:
    """Built-ins plus the test adapter ``lite`` (stdlib sqlite3), made current."""
    from dc_api_x import enable_plugins

    ps = enable_plugins(entry_points=False, plugins=[LitePlugin])
    yield ps
    ps.close()


@pytest.fixture
def run_tap(lite_plugins: Any) -> Callable[..., list[dict[str, Any]]]:
    """Run ``TapDcApiX.sync_all`` in-process; returns the Singer messages it wrote."""

    def run(
        config: dict[str, Any],
        *,
        catalog: dict | None = None,
        state: dict | None = None,
    ) -> list[dict[str, Any]]:
        from tap_dcapix.tap import TapDcApiX

        buf = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        with redirect_stdout(buf):
            tap = TapDcApiX(config=dict(config), catalog=catalog, state=state or {})
            try:
                tap.sync_all()
                tap.message_writer.flush()
            finally:
                tap.close()
        buf.flush()
        buf.seek(0)
        return parse_messages(buf.read())

    return run


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """Run the ``tap-dcapix`` console script of this venv."""
    return subprocess.run(
        [str(TAP_BIN), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
