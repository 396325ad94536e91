#!/usr/bin/env python3
"""LDAP read benchmark (issue 11): ``dcapix run`` LDAP -> Parquet vs ``ldapsearch`` -> LDIF.

One invocation, one throwaway slapd (dc_api_x_ldap.testing.Slapd, no stats logging) loaded with
N people (default 50,000); each contender reads every entry of ou=people with the simple paged
results control, page size 1000, the same attributes (``*`` and the four operational attributes
the adapter reads), and the runs are interleaved (ldapsearch, dcapix per backend, ...) so load on
the shared machine hits them alike. Reported: median wall seconds, entries/s, the ratio
``ldapsearch wall / dcapix wall`` (the goal is >= 0.6 for the rate), the median CPU seconds of the
client process (slapd's not included), those slapd spent on the contender's search (from
/proc/<slapd>/stat around the run) and the load average.

    .venv/bin/python benchmarks/ldap_read.py                      # 50,000 entries, 3 runs
    .venv/bin/python benchmarks/ldap_read.py --entries 20000 --runs 1 --backends ldap3/backend
    .venv/bin/python benchmarks/ldap_read.py --profile python-ldap   # cProfile of one in-process run
    bash benchmarks/ldap_read.sh --backends python-ldap --base-bin /tmp/base/.venv-bench/bin --runs 5
        # paired: every dcapix contender also run with another build's dcapix ("[base]" rows)

A contender is ``backend[/reader]``: ``python-ldap`` reads through the adapter's native reader
(``reader: auto``: its own socket, entries decoded by the plugin's C extension, no client library
imported) when the extension is built; ``python-ldap/backend`` through python-ldap itself.

The dcapix runs are real ``dcapix run`` processes (start-up, plugin loading, discovery, reading,
Parquet writing), with ``--full-refresh --no-state``; the stream names its object classes so
discovery does not scan the directory first (a scan costs one more paged search of objectClass).
They run with byte-code as an installed package has it: the checkout is compiled once, untimed,
and ``PYTHONDONTWRITEBYTECODE`` is not passed on (with it set, an editable checkout recompiles
every module of dc_api_x and the plugin at every start). Use a venv without the dev extra
(``.venv-bench``, see benchmarks/ldap_read.sh): its logfire pydantic plugin costs every start
0.5-1 s of CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ATTRS = ["*", "entryUUID", "createTimestamp", "modifyTimestamp", "entryCSN"]
FILTER = "(objectClass=inetOrgPerson)"
CLASSES = ["inetOrgPerson", "posixAccount", "dcapixRecord"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument(
        "--backends",
        default="python-ldap,python-ldap/backend",
        help="comma-separated backend[/reader] (reader: auto (default: the native reader when it is "
        "built), native or backend; ldaptor/backend is ~30x slower)",
    )
    ap.add_argument("--profile", metavar="BACKEND", help="profile one in-process run instead")
    ap.add_argument(
        "--base-bin",
        metavar="DIR",
        help="bin directory of another build of dcapix (e.g. the base commit's venv): each dcapix "
        "contender also runs with it, interleaved, as '... [base]'",
    )
    args = ap.parse_args()

    from dc_api_x_ldap.testing import Slapd, people_ldif

    if shutil.which("ldapsearch") is None:
        print(
            "ldapsearch not found (apt-get install ldap-utils, or bash .ci/start-slapd.sh)", file=sys.stderr
        )
        return 2
    bins = {"": BIN}
    if args.base_bin:
        bins[" [base]"] = Path(args.base_bin)
    for b in bins.values():  # each build's own checkout (editable installs), compiled once, untimed
        for mod in ("dc_api_x", "dc_api_x_ldap"):
            find = f"import {mod}, os; print(os.path.dirname({mod}.__file__))"
            where = subprocess.run([str(b / "python"), "-c", find], capture_output=True, text=True)
            if where.returncode == 0:
                subprocess.run(
                    [str(b / "python"), "-m", "compileall", "-q", where.stdout.strip()], capture_output=True
                )
    work = Path(tempfile.mkdtemp(prefix="ldap-bench-"))
    srv = Slapd(stats_log=False)
    try:
        t0 = time.perf_counter()
        srv.load(people_ldif(args.entries))
        srv.start()
        print(f"slapd loaded with {args.entries} people in {time.perf_counter() - t0:.1f}s ({srv.url})")
        base = f"ou=people,{srv.suffix}"
        if args.profile:
            return profile(srv, base, args, work)
        ldapsearch = [
            "ldapsearch", "-x", "-LLL", "-H", srv.url, "-D", srv.admin_dn, "-w", srv.admin_password,
            "-b", base, "-E", f"pr={args.page_size}/noprompt", FILTER, *ATTRS,
        ]  # fmt: skip
        backends = [b for b in args.backends.split(",") if b]
        walls: dict[str, list[float]] = {
            "ldapsearch": [],
            **{f"dcapix run ({b}){tag}": [] for b in backends for tag in bins},
        }
        cpus: dict[str, list[float]] = {k: [] for k in walls}
        server: dict[str, list[float]] = {k: [] for k in walls}
        pid = srv.proc.pid if srv.proc is not None else None
        load = os.getloadavg()
        for run in range(args.runs):
            c, sc = _child_cpu(), _proc_cpu(pid)
            t = time.perf_counter()
            with open("/dev/null", "wb") as devnull:
                subprocess.run(ldapsearch, stdout=devnull, check=True)
            walls["ldapsearch"].append(time.perf_counter() - t)
            cpus["ldapsearch"].append(_child_cpu() - c)
            server["ldapsearch"].append(_proc_cpu(pid) - sc)
            for b in backends:
                # alternate which build goes first from run to run
                for tag, bindir in list(bins.items())[:: 1 if run % 2 == 0 else -1]:
                    name = f"dcapix run ({b}){tag}"
                    out = work / f"out-{b.replace('/', '-')}-{run}"
                    c, sc = _child_cpu(), _proc_cpu(pid)
                    walls[name].append(dcapix_run(srv, base, b, args, work, out, bindir))
                    cpus[name].append(_child_cpu() - c)
                    server[name].append(_proc_cpu(pid) - sc)
                    n = count_parquet(out)
                    if n != args.entries:
                        print(f"!!! {name} wrote {n} rows, expected {args.entries}", file=sys.stderr)
                        return 1
                    shutil.rmtree(out)
        ref = statistics.median(walls["ldapsearch"])
        end = os.getloadavg()
        print(f"load average {load[0]:.1f} {load[1]:.1f} before, {end[0]:.1f} {end[1]:.1f} after")
        print(
            f"\n{'contender':<41} {'median s':>9} {'entries/s':>10} {'rate vs ldapsearch':>19} "
            f"{'client cpu s':>13} {'slapd cpu s':>12}   runs"
        )
        for name, ws in walls.items():
            med = statistics.median(ws)
            print(
                f"{name:<41} {med:>9.2f} {args.entries / med:>10,.0f} {ref / med:>18.2f}x "
                f"{statistics.median(cpus[name]):>13.2f} {statistics.median(server[name]):>12.2f}   "
                + " ".join(f"{w:.2f}" for w in ws)
            )
        return 0
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)


def _proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) process ``pid`` (slapd) spent so far (0 where /proc lacks it);
    its share of a run is the server's work for that contender's search."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    t = os.times()
    return t.children_user + t.children_system


def pipeline(srv, base: str, backend: str, args, out: Path) -> dict:  # type: ignore[no-untyped-def]
    name, _, reader = backend.partition("/")
    return {
        "source": {
            "adapter": "ldap",
            "backend": name,
            "reader": reader or "auto",
            "url": srv.url,
            "bind_dn": srv.admin_dn,
            "password": srv.admin_password,
            "page_size": args.page_size,
            "streams": [{"name": "people", "base": base, "filter": FILTER, "object_classes": CLASSES}],
        },
        "destination": {"adapter": "parquet", "path": str(out)},
    }


def dcapix_run(srv, base: str, backend: str, args, work: Path, out: Path, bindir: Path = BIN) -> float:  # type: ignore[no-untyped-def]
    cfg = work / f"dcapix-{backend.replace('/', '-')}.json"
    cfg.write_text(json.dumps({"pipelines": {"ldap": pipeline(srv, base, backend, args, out)}}))
    cmd = [
        str(bindir / "dcapix"),
        "run",
        "-c",
        str(cfg),
        "ldap",
        "--no-state",
        "--full-refresh",
        "--no-progress",
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"dcapix run ({backend}) failed: {res.stderr[-2000:]}")
    return wall


def count_parquet(out: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in out.rglob("*.parquet"))


def profile(srv, base: str, args, work: Path) -> int:  # type: ignore[no-untyped-def]
    import cProfile
    import pstats

    from dc_api_x.runner.config import PipelineConfig
    from dc_api_x.runner.pipeline import Runner

    cfg = PipelineConfig.model_validate(
        {**pipeline(srv, base, args.profile, args, work / "out"), "prefetch": 0}
    )
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    Runner("ldap", cfg).run()
    prof.disable()
    print(f"in-process run ({args.profile}, prefetch 0): {time.perf_counter() - t:.2f}s (profiled)")
    pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
