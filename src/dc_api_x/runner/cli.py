"""``dcapix run`` / ``dcapix state`` / ``dcapix bench`` / ``dcapix demo``.

Imported when the ``dcapix`` parser is built, so it imports nothing heavy at module level.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, StateError

__all__ = ["add_commands", "cmd_run", "cmd_state"]


def add_commands(subparsers: Any) -> None:
    """Add ``run``, ``state``, ``bench`` and ``demo`` to the ``dcapix`` parser."""
    p = subparsers.add_parser("run", help="run a pipeline (source -> destination) in-process or via Singer")
    p.add_argument("pipeline", nargs="?", help="pipeline name in the config file (optional if only one)")
    p.add_argument("-c", "--config", help="pipeline file (YAML/TOML/JSON; default ./dcapix.yml)")
    p.add_argument("--source", metavar="SRC.json", help="ad-hoc: source endpoint file {adapter: …}")
    p.add_argument("--destination", metavar="DST.json", help="ad-hoc: destination endpoint file")
    p.add_argument("--name", help="ad-hoc: pipeline name for the state (default: hash of the endpoints)")
    p.add_argument("--load-method", help="override the destination's load_method (append/upsert/overwrite)")
    p.add_argument("--full-refresh", action="store_true", help="ignore stored state; reload everything")
    p.add_argument("--select", nargs="+", metavar="STREAM", help="only these streams")
    p.add_argument("--dry-run", action="store_true", help="print the plan (secrets redacted) and exit")
    p.add_argument("--limit", type=int, help="at most N records per stream")
    p.add_argument("--state-db", help="state store: SQLite path or postgresql:// URL (overrides the file)")
    p.add_argument("--no-state", action="store_true", help="neither read nor write state")
    p.add_argument("--json", action="store_true", help="print metrics as JSON on stdout")
    p.add_argument("--via-singer", action="store_true", help="run TAP | TARGET as processes (Singer)")
    p.add_argument("--parallel", type=int, help="streams at a time (default 1 or the file's)")
    p.add_argument(
        "--prefetch", type=int, help="batches read ahead by the reader thread (default 1; 0: no thread)"
    )
    p.add_argument("--checkpoint-rows", type=int, help="flush + save state every N rows")
    p.add_argument("--no-progress", action="store_true", help="no live display / progress lines")
    p.set_defaults(func=cmd_run)

    s = subparsers.add_parser("state", help="show or change stored pipeline state")
    s.add_argument("action", choices=["list", "show", "set", "reset", "export"])
    s.add_argument("value", nargs="?", help="set: the bookmark as JSON (or @FILE)")
    s.add_argument("--pipeline", "-p", help="pipeline name")
    s.add_argument("--stream", "-s", help="stream name")
    s.add_argument("--partition", help="partition ('' in-process, 'singer' for --via-singer runs)")
    s.add_argument("-c", "--config", help="pipeline file (for its state_backend)")
    s.add_argument("--state-db", help="state store: SQLite path or postgresql:// URL")
    s.add_argument("--all", action="store_true", help="reset: every pipeline")
    s.set_defaults(func=cmd_state)

    b = subparsers.add_parser("bench", help="measure the runner (SQLite -> Parquet) or run benchmarks/wN.sh")
    b.add_argument("--rows", type=int, default=200_000, help="rows to generate (default 200000)")
    b.add_argument(
        "--workload",
        choices=["w1", "w2", "w3", "w4", "all"],
        help="run the side-by-side workload script(s) from the repository's benchmarks/",
    )
    b.add_argument("--dir", help="work directory (default: a temp dir)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bench)

    from .demo import add_demo_command

    add_demo_command(subparsers)


# ------------------------------------------------------------------------------------------ run
def _load_pipeline(args: argparse.Namespace) -> tuple[str, Any, Any]:
    """(name, PipelineConfig, ProjectConfig-or-None) from the arguments."""
    from .config import PipelineConfig, ProjectConfig, load_config, load_endpoint_file

    if args.source or args.destination:
        if not (args.source and args.destination):
            raise ConfigError("ad-hoc runs need both --source and --destination", plugin="runner")
        if args.pipeline or args.config:
            raise ConfigError(
                "give either a pipeline (and -c FILE) or --source/--destination, not both", plugin="runner"
            )
        src = load_endpoint_file(args.source, "source")
        dst = load_endpoint_file(args.destination, "destination")
        if args.load_method:
            dst.load_method = args.load_method
        name = (
            args.name
            or "adhoc-"
            + hashlib.sha1(
                json.dumps([src.model_dump(), dst.model_dump()], sort_keys=True, default=str).encode()
            ).hexdigest()[:10]
        )
        return name, PipelineConfig(source=src, destination=dst), ProjectConfig()
    project = load_config(args.config)
    name, pipe = project.pipeline(args.pipeline)
    if args.load_method:
        pipe = pipe.model_copy(deep=True)
        pipe.destination.load_method = args.load_method
    return name, pipe, project


def _open_store(args: argparse.Namespace, project: Any) -> Any:
    from .state import open_state_store

    if getattr(args, "no_state", False):
        return None
    backend = project.state_backend if project is not None else "sqlite"
    pdir = project.project_dir if project is not None else Path.cwd()
    return open_state_store(backend, project_dir=pdir, path=args.state_db)


def _sigterm_as_interrupt() -> None:
    """Turn the first SIGTERM into ``KeyboardInterrupt`` in the main thread, so the run stops the
    way Ctrl-C stops it: uncommitted batches are rolled back / temp files removed by the adapters'
    ``close()``, no state is stored for them, exit code 130. Later SIGTERMs are ignored (no
    re-entrant cleanup); SIGKILL still ends everything at once."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt("terminated (SIGTERM)")

    signal.signal(signal.SIGTERM, handler)


def _arrow_system_allocator() -> None:
    """Make Arrow allocate with the C library's ``malloc`` in this (the ``dcapix run``) process,
    unless ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise.

    pyarrow's default mimalloc pool keeps per-thread heaps: with the reader thread on, SQLite →
    Parquet peaked at 300-312 MiB with mimalloc and 255-258 MiB with the system allocator, at the
    same speed (docs/runner.md). Set before pyarrow is imported, through the variable pyarrow
    reads at import; if it is imported already, through ``pyarrow.set_memory_pool``.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    if "pyarrow" not in sys.modules:
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
        return
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


def cmd_run(args: argparse.Namespace) -> int:
    """``dcapix run``."""
    from ..plugins import get_plugins
    from .pipeline import Runner, RunOptions, run_pipeline
    from .progress import Progress, RunMetrics, format_summary

    get_plugins()
    _sigterm_as_interrupt()
    name, pipe, project = _load_pipeline(args)
    opts = RunOptions(
        full_refresh=args.full_refresh,
        select=args.select,
        limit=args.limit,
        prefetch=args.prefetch,
        parallel=args.parallel,
        checkpoint_rows=args.checkpoint_rows,
    )
    store = _open_store(args, project)
    try:
        if args.dry_run:
            if args.via_singer:
                from .process import singer_state

                plan: dict[str, Any] = {
                    "pipeline": name,
                    "mode": "via-singer",
                    "tap": pipe.singer.tap,
                    "target": pipe.singer.target,
                }
                plan.update(
                    {
                        k: v
                        for k, v in Runner(name, pipe, store, opts).plan().items()
                        if k in ("source", "destination", "streams", "state_store")
                    }
                )
                if store is not None:
                    plan["state"] = singer_state(store, name)
            else:
                plan = Runner(name, pipe, store, opts).plan()
            from ..logs import redact

            print(redact(json.dumps(plan, indent=2, default=str)))
            return 0
        metrics = RunMetrics(name, mode="via-singer" if args.via_singer else "in-process")
        progress = Progress(metrics, quiet=args.no_progress)
        failed: BaseException | None = None
        with progress:
            try:
                if args.via_singer:
                    from .process import run_via_singer

                    metrics = run_via_singer(name, pipe, store, opts, progress=progress)  # takes the lock
                else:
                    _arrow_system_allocator()
                    metrics = run_pipeline(name, pipe, store, opts, progress=progress)
            except (Exception, KeyboardInterrupt) as exc:
                failed = exc
                metrics = progress.metrics
                if metrics.status != "failed":
                    metrics.status = "failed"
        summary = format_summary(metrics)
        if args.json:
            out = metrics.as_dict()
            if failed is not None:
                from ..logs import redact

                out["error"] = redact(str(failed))
            print(json.dumps(out, default=str))
            print(summary, file=sys.stderr)
        elif metrics.streams or failed is None:
            print(summary)
        if failed is not None:
            raise failed
        return 0
    finally:
        if store is not None:
            store.close()


# ---------------------------------------------------------------------------------------- state
def cmd_state(args: argparse.Namespace) -> int:
    """``dcapix state list|show|set|reset|export``."""
    from .config import load_config

    project = load_config(args.config, required=args.config is not None) if not args.state_db else None
    store = _open_store(args, project)
    try:
        if args.action == "list":
            entries = store.list(args.pipeline, args.stream, partition=args.partition)
            if not entries:
                print(f"(no state in {store.location})", file=sys.stderr)
            for e in entries:
                part = f"[{e.partition}]" if e.partition else ""
                value = json.dumps(e.value, sort_keys=True)
                print(f"{e.pipeline}\t{e.stream}{part}\t{e.updated_at}\t{value}")
            return 0
        if args.action in ("show", "export"):
            entries = store.list(args.pipeline, args.stream, partition=args.partition)
            if args.action == "show" and args.pipeline and args.stream and not entries:
                raise StateError(
                    f"no state for pipeline {args.pipeline!r}, stream {args.stream!r} in {store.location}"
                )
            print(json.dumps([e.as_dict() for e in entries], indent=2, default=str))
            return 0
        if args.action == "set":
            if not (args.pipeline and args.stream and args.value):
                raise ConfigError("state set needs --pipeline, --stream and a JSON value", plugin="runner")
            text = Path(args.value[1:]).read_text() if args.value.startswith("@") else args.value
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ConfigError(f"state set: value is not valid JSON: {exc}", plugin="runner") from None
            if not isinstance(value, dict):
                raise ConfigError("state set: value must be a JSON object", plugin="runner")
            store.set(args.pipeline, args.stream, value, partition=args.partition or "")
            print(f"state of pipeline {args.pipeline!r}, stream {args.stream!r} set", file=sys.stderr)
            return 0
        # reset
        if not (args.pipeline or args.all):
            raise ConfigError(
                "state reset needs --pipeline P (optionally --stream S) or --all", plugin="runner"
            )
        n = store.delete(None if args.all else args.pipeline, args.stream, partition=args.partition)
        print(f"{n} state entr{'y' if n == 1 else 'ies'} deleted from {store.location}", file=sys.stderr)
        return 0
    finally:
        store.close()


# ---------------------------------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    """``dcapix bench``: SQLite → Parquet through the runner, or the repository's workload scripts."""
    if args.workload:
        import subprocess

        root = Path(__file__).resolve().parents[3]
        bench = root / "benchmarks"
        if not (bench / "w1.sh").exists():
            raise ConfigError(
                f"benchmarks/ not found under {root} (run from a source checkout)", plugin="bench"
            )
        names = ["w1", "w2", "w3", "w4"] if args.workload == "all" else [args.workload]
        rc = 0
        for w in names:
            rc = rc or subprocess.call(["bash", str(bench / f"{w}.sh")])
        return rc
    from .bench import run_micro_bench

    result = run_micro_bench(args.rows, workdir=args.dir)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"SQLite -> Parquet, {result['rows']:,} rows: {result['seconds']:.2f} s, "
            f"{result['rows_per_second']:,.0f} rows/s, peak RSS {result['peak_rss_mib']:.0f} MiB "
            f"(check: {result['rows_written']:,} rows written)"
        )
    return 0 if result["rows_written"] == result["rows"] else 1
