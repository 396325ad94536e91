#!/usr/bin/env python3
"""Interleaved timing of a few shell pipelines (stdlib only), for paired ratios on a busy machine.

Reads blocks of ``name:``, ``prep:`` (untimed), ``cmd:`` (timed, ``bash -c``), ``count:`` (a
directory whose ``*.jsonl`` lines and ``*.parquet`` rows are counted after each run; the count must
be $BENCH_ROWS) and ``check:`` (a command printing the number of rows written, e.g. a ``psql``
count; it must print $BENCH_ROWS) on
stdin, separated by blank lines. Runs ``$BENCH_RUNS`` rounds; each round runs every system once,
the order reversed every other round. Prints a markdown table: median wall, min/max, rows/s, CPU
(user+sys of the whole process tree) and the median wall ratio to the second system (the peer).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROWS = int(os.environ.get("BENCH_ROWS", "200000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def parse(text: str) -> list[dict[str, str]]:
    systems, cur = [], {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if cur:
                systems.append(cur)
                cur = {}
            continue
        k, _, v = line.partition(":")
        cur[k.strip()] = v.strip()
    return systems


def count_rows(directory: str) -> int:
    """Rows written under ``directory``: lines of ``*.jsonl`` files plus rows of ``*.parquet`` files."""
    n = 0
    for f in Path(directory).rglob("*.jsonl"):
        with open(f, "rb") as fh:
            n += sum(1 for _ in fh)
    parquet = list(Path(directory).rglob("*.parquet"))
    if parquet:
        import pyarrow.parquet as pq

        n += sum(pq.ParquetFile(f).metadata.num_rows for f in parquet)
    return n


def timed(cmd: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    rc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd]).returncode
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        sys.exit(f"failed (exit {rc}): {cmd}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    systems = parse(sys.stdin.read())
    walls: dict[str, list[float]] = {s["name"]: [] for s in systems}
    cpus: dict[str, list[float]] = {s["name"]: [] for s in systems}
    for rnd in range(RUNS):
        order = systems if rnd % 2 == 0 else list(reversed(systems))
        for s in order:
            if s.get("prep"):
                subprocess.run(["bash", "-c", s["prep"]], check=True)
            wall, cpu = timed(s["cmd"])
            if s.get("count"):
                got = count_rows(s["count"])
                if got != ROWS:
                    sys.exit(f"{s['name']}: {got} rows written, expected {ROWS}")
            if s.get("check"):
                out = subprocess.run(["bash", "-c", s["check"]], capture_output=True, text=True).stdout
                if out.strip() != str(ROWS):
                    sys.exit(f"{s['name']}: check printed {out.strip()!r}, expected {ROWS}")
            walls[s["name"]].append(wall)
            cpus[s["name"]].append(cpu)
            print(f"[round {rnd + 1}] {s['name']}: {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr)
    peer = systems[1]["name"] if len(systems) > 1 else systems[0]["name"]
    base = statistics.median(walls[peer])
    load = os.getloadavg()
    print(f"\n{ROWS:,} rows, {RUNS} interleaved rounds, load average at the end {load[0]:.2f}\n")
    print("| system | median wall s | min-max s | rows/s | CPU s | wall vs peer |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for s in systems:
        w = walls[s["name"]]
        med = statistics.median(w)
        name = s["name"].replace("|", "\\|")
        print(
            f"| {name} | {med:.2f} | {min(w):.2f}-{max(w):.2f} | {ROWS / med:,.0f} | "
            f"{statistics.median(cpus[s['name']]):.2f} | {med / base:.2f} |"
        )


if __name__ == "__main__":
    main()
