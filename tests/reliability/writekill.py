"""Kills in the middle of the two durable writes, in bulk (cases A7, A8): a small child process
writes in a loop and prints what each write acknowledged; the parent sends ``SIGKILL`` at a seeded
moment, then checks what survived.

* **state write**: the child stores ``{"n": i}`` for i = 1, 2, … in the SQLite state store (the
  one ``dcapix run`` uses) and prints ``i`` after ``set`` returned. After the kill the store must
  open, the value must parse, and ``n`` must be the last acknowledged ``i`` or the one after it
  (never older: a lost acknowledged write; never newer: impossible).
* **file write**: the child writes batches of rows with a file adapter (``jsonl`` / ``parquet``),
  flushing after each and printing the rows acknowledged. After the kill every visible file must
  parse, the visible rows must cover every acknowledged row, and a later write session
  (``start_write`` … ``finish_write`` of one more batch, as a rerun does) must leave no temporary
  file behind.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.oracle import TornFile, leftovers, read_rows

__all__ = ["WriteKillStats", "file_kills", "state_kills"]

ROOT = Path(__file__).resolve().parents[2]

_STATE_CHILD = r"""
import sys
from dc_api_x.runner.state import open_state_store
store = open_state_store(path=sys.argv[1])
start = int(sys.argv[2])
i = start
while True:
    i += 1
    store.set("p", "items", {"n": i, "pad": "x" * (i % 3000)})
    sys.stdout.write(f"{i}\n"); sys.stdout.flush()
"""

_FILE_CHILD = r"""
import sys
from dc_api_x import create_adapter
from dc_api_x.types import Batch, StreamSpec
kind, root, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
schema = {"type": "object", "properties": {"id": {"type": "integer"}, "updated_at": {"type": "string"},
          "name": {"type": ["string", "null"]}, "amount": {"type": ["number", "null"]},
          "payload": {"type": ["string", "null"]}}}
spec = StreamSpec("items", schema, key_properties=("id",))
a = create_adapter({"adapter": kind, "path": root})
a.start_write(spec, load_method="append")
i = start
while True:
    rows = [{"id": j, "updated_at": "2024-01-01T00:00:00+00:00", "name": f"n{j}", "amount": j * 0.5,
             "payload": "p" * (j % 500)} for j in range(i + 1, i + 101)]
    a.write(spec, Batch.from_records(rows, schema=schema))
    a.flush(spec)
    i += 100
    sys.stdout.write(f"{i}\n"); sys.stdout.flush()
    if len(sys.argv) > 4:
        break
if len(sys.argv) > 4:
    a.finish_write(spec)
    a.close()
"""


@dataclass
class WriteKillStats:
    what: str
    kills: int = 0
    unreadable: int = 0
    lost_acknowledged: int = 0
    ahead: int = 0
    torn: int = 0
    leftovers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.unreadable
            or self.lost_acknowledged
            or self.ahead
            or self.torn
            or self.errors
            or self.leftovers
        )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DCAPIX_CRASH_POINT"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return env


def _run_and_kill(argv: list[str], rng: random.Random, min_acks: int = 1, timeout: float = 120) -> int:
    """Start ``argv``, wait for ``min_acks`` acknowledgements plus a seeded delay, SIGKILL it;
    returns the last acknowledged number."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    assert proc.stdout is not None
    last, acks, buf = 0, 0, b""
    delay = rng.uniform(0.0, 0.25)
    deadline = time.monotonic() + timeout
    kill_at: float | None = None
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        if kill_at is not None and time.monotonic() >= kill_at:
            break
        ready, _, _ = select.select([fd], [], [], 0.01)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            for line in done:
                last = int(line)
                acks += 1
            if kill_at is None and acks >= min_acks:
                kill_at = time.monotonic() + delay
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # acknowledgements already in the pipe were acknowledged before the kill
    rest = buf + proc.stdout.read()
    for line in rest.split(b"\n"):
        if line.strip():
            last = int(line)
    if proc.returncode != -signal.SIGKILL:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"child ended by itself (rc {proc.returncode}): {err[-300:]}")
    return last


def state_kills(work: Path, n: int, seed: int) -> WriteKillStats:
    from dc_api_x.runner.state import open_state_store

    work.mkdir(parents=True, exist_ok=True)
    db = work / "state.db"
    rng = random.Random(seed)
    st = WriteKillStats("state write")
    stored = 0
    for _ in range(n):
        try:
            acked = _run_and_kill([sys.executable, "-c", _STATE_CHILD, str(db), str(stored)], rng)
        except RuntimeError as exc:
            st.errors.append(str(exc))
            break
        st.kills += 1
        try:
            with open_state_store(path=str(db)) as s:
                value = s.get("p", "items")
        except Exception as exc:
            st.unreadable += 1
            st.errors.append(f"state unreadable after kill: {exc}")
            break
        got = int((value or {}).get("n", 0))
        if got < acked:
            st.lost_acknowledged += 1
        if got > acked + 1:
            st.ahead += 1
        stored = got
    # no temporary-file check: a `state.db-journal` left by a kill is SQLite's own recovery file (rolled
    # back by the next connection, or ignored when the kill came before its header was written)
    return st


def file_kills(work: Path, kind: str, n: int, seed: int) -> WriteKillStats:
    work.mkdir(parents=True, exist_ok=True)
    root = work / "out"
    rng = random.Random(seed)
    st = WriteKillStats(f"file write ({kind})")
    written = 0
    acked_total: set[int] = set()
    for _ in range(n):
        try:
            acked = _run_and_kill([sys.executable, "-c", _FILE_CHILD, kind, str(root), str(written)], rng)
        except RuntimeError as exc:
            st.errors.append(str(exc))
            break
        st.kills += 1
        acked_total |= set(range(written + 1, acked + 1))
        try:
            ids = {int(r["id"]) for r in read_rows(kind, root)}
        except TornFile as exc:
            st.torn += 1
            st.errors.append(str(exc))
            break
        st.lost_acknowledged += len(acked_total - ids)
        written = max(ids | {written})
    # a rerun: one more complete write session, then nothing temporary may remain
    subprocess.run(
        [sys.executable, "-c", _FILE_CHILD, kind, str(root), str(written + 10_000_000), "once"],
        env=_env(),
        check=False,
        capture_output=True,
        timeout=120,
    )
    st.leftovers = leftovers(root)
    return st
