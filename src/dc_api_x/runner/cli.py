"""``dcapix run`` / ``state`` / ``schedule`` / ``runs`` / ``report`` / ``bench`` / ``demo``.

Imported when the ``dcapix`` parser is built, so it imports nothing heavy at module level.

A little over 700 lines: it is the argument parsing and the one-line error handling of seven
subcommands, each a thin call into the runner (the work itself lives in ``pipeline``, ``process``,
``scheduler``, ``history`` and ``report``); the next split, if it grows, is one module per subcommand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, StateError
from . import startup

__all__ = ["add_commands", "cmd_report", "cmd_run", "cmd_runs", "cmd_schedule", "cmd_state"]


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
    p.add_argument(
        "--checkpoint-seconds", type=float, help="... or every N seconds, whichever comes first (default 60)"
    )
    p.add_argument(
        "--executor",
        choices=["local", "dask"],
        default="local",
        help="where partitions run: threads here (local) or a dask.distributed cluster (docs/scale.md)",
    )
    p.add_argument("--workers", type=int, help="partitions read at the same time per stream (local)")
    p.add_argument(
        "--worker-pool",
        choices=["threads", "processes"],
        help="local executor: worker threads (default) or processes (CPU-bound runs, docs/scale.md)",
    )
    p.add_argument("--partitions", type=int, help="split each stream into at most N partitions")
    p.add_argument("--scheduler", metavar="ADDRESS", help="dask scheduler address (tcp://host:8786)")
    p.add_argument("--no-progress", action="store_true", help="no live display / progress lines")
    # set by `dcapix schedule run` for the runs it starts (recorded in the run history)
    p.add_argument("--run-id", help=argparse.SUPPRESS)
    p.add_argument("--trigger", default="manual", help=argparse.SUPPRESS)
    p.add_argument("--scheduled-for", help=argparse.SUPPRESS)
    p.add_argument("--attempt", type=int, default=1, help=argparse.SUPPRESS)
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

    _add_schedule_commands(subparsers)

    from .demo import add_demo_command

    add_demo_command(subparsers)


def _add_schedule_commands(subparsers: Any) -> None:
    def common(p: argparse.ArgumentParser, meltano: bool = True) -> None:
        p.add_argument("-c", "--config", help="pipeline file (default ./dcapix.yml)")
        p.add_argument(
            "--state-db", help="state store: SQLite path or postgresql:// URL (overrides the file)"
        )
        if meltano:
            p.add_argument(
                "--meltano-project", metavar="DIR", help="also the schedules: of this Meltano project"
            )
            p.add_argument("--meltano-bin", metavar="PATH", help="the meltano executable (default: on PATH)")
            p.add_argument("--environment", help="Meltano environment (default: the project's default)")

    sc = subparsers.add_parser("schedule", help="scheduled runs of pipelines (and Meltano schedules)")
    ssub = sc.add_subparsers(dest="schedule_command", metavar="ACTION")
    sl = ssub.add_parser("list", help="each scheduled job: its schedule, next run times, last outcome")
    sl.add_argument("names", nargs="*", metavar="JOB", help="only these")
    sl.add_argument("-n", "--count", type=int, default=3, help="next run times shown (default 3)")
    sl.add_argument("--json", action="store_true")
    common(sl)
    sl.set_defaults(func=cmd_schedule)
    sr = ssub.add_parser("run", help="the scheduler: start pipelines when they are due (until SIGTERM)")
    sr.add_argument("names", nargs="*", metavar="JOB", help="only these jobs")
    sr.add_argument("--once", action="store_true", help="start what is due now, wait for it, exit (cron)")
    sr.add_argument("--now", action="store_true", help="start the (named) jobs now whatever their schedule")
    sr.add_argument("--max-concurrent", type=int, help="jobs running at the same time (default 4)")
    sr.add_argument("--retries", type=int, help="retries of a failed run (overrides the file)")
    sr.add_argument("--retry-delay", help="first retry delay, doubled each time (e.g. 30s)")
    common(sr)
    sr.set_defaults(func=cmd_schedule)
    sc.set_defaults(func=lambda a: sc.print_help() or 2)

    r = subparsers.add_parser("runs", help="run history: every run with outcome, rows, state")
    rsub = r.add_subparsers(dest="runs_command", metavar="ACTION")
    rl = rsub.add_parser("list", help="recent runs, newest first")
    rl.add_argument("--pipeline", "-p", help="only this pipeline (or meltano:SCHEDULE)")
    rl.add_argument("--status", help="only runs with this status (done, failed, interrupted, …)")
    rl.add_argument("--limit", "-n", type=int, default=20, help="at most N runs (default 20; 0: all)")
    rl.add_argument("--json", action="store_true", help="JSON (with per-stream details)")
    common(rl, meltano=False)
    rl.set_defaults(func=cmd_runs)
    rs = rsub.add_parser("show", help="one run: streams, rows, bytes, durations, state before/after")
    rs.add_argument("run_id", metavar="RUN_ID", help="a run id (or a unique prefix)")
    rs.add_argument("--json", action="store_true")
    common(rs, meltano=False)
    rs.set_defaults(func=cmd_runs)
    r.set_defaults(func=lambda a: r.print_help() or 2)

    rp = subparsers.add_parser("report", help="write a self-contained HTML report of the run history")
    rp.add_argument("-o", "--output", default="report.html", help="the HTML file (default report.html)")
    rp.add_argument("--days", type=float, default=30, help="runs of the last N days (default 30)")
    rp.add_argument("--max-runs", type=int, default=200, help="at most N runs per pipeline (default 200)")
    rp.add_argument("--title", help="page title")
    common(rp)
    rp.set_defaults(func=cmd_report)


# ------------------------------------------------------------------------------------------ run
def _load_pipeline(args: argparse.Namespace) -> tuple[str, Any, Any]:
    """(name, PipelineConfig, ProjectConfig-or-None) from the arguments."""
    from .config import adhoc_pipeline, empty_project, endpoint_dump, load_config, load_endpoint_file

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
        import hashlib  # (here: `dcapix --help` imports this module)

        name = (
            args.name
            or "adhoc-"
            + hashlib.sha1(
                json.dumps([endpoint_dump(src), endpoint_dump(dst)], sort_keys=True, default=str).encode()
            ).hexdigest()[:10]
        )
        return name, adhoc_pipeline(src, dst), empty_project()
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
    store = open_state_store(backend, project_dir=pdir, path=args.state_db)
    if project is not None:
        store.lock_timeout = project.lock_timeout
        store.history_days = project.history_days
    return store


def _interrupt_main() -> None:
    """``on_lost`` of a ``dcapix run`` lock: stop the run the way Ctrl-C does."""
    import _thread

    _thread.interrupt_main()


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


def cmd_run(args: argparse.Namespace) -> int:
    """``dcapix run``."""
    # an ad-hoc run's PostgreSQL handles, opened while the run imports its modules
    early = startup.open_endpoints_ahead(args)
    try:
        return _cmd_run(args, early)
    finally:
        startup.close_opened_ahead(early)  # (an error before _cmd_run's own clean-up)


def _cmd_run(args: argparse.Namespace, opened_ahead: list[Any]) -> int:
    from ..plugins import get_plugins
    from .pipeline import RunOptions

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
        checkpoint_seconds=_positive(getattr(args, "checkpoint_seconds", None), "--checkpoint-seconds"),
        executor=getattr(args, "executor", None) or "local",
        workers=getattr(args, "workers", None),
        partitions=getattr(args, "partitions", None),
        scheduler=getattr(args, "scheduler", None),
        worker_pool=getattr(args, "worker_pool", None),
        # the scheduler's (other callers, e.g. `dcapix demo`, build the namespace without them)
        trigger=getattr(args, "trigger", "manual"),
        scheduled_for=getattr(args, "scheduled_for", None),
        attempt=getattr(args, "attempt", 1),
        on_lock_lost=_interrupt_main,
    )
    run_id = getattr(args, "run_id", None)
    if run_id:
        opts.run_id = run_id
    if not args.dry_run and not args.via_singer:
        from .executors import prestart_workers

        prestart_workers(name, pipe, opts)  # worker processes: their imports overlap ours
        startup.arrow_system_allocator()  # (before an adapter's module imports pyarrow)
        for close in startup.prepare_adapters(pipe):  # e.g. PostgreSQL handles, opened while we import
            if close not in opened_ahead:
                opened_ahead.append(close)
    store = _open_store(args, project)
    try:
        return _run_or_plan(args, name, pipe, store, opts)
    except BaseException as exc:
        if run_id and store is not None:
            return _close_scheduled_run(store, run_id, exc)
        raise
    finally:
        from ..cli import resume_gc

        resume_gc()  # (a dry run, an error before the run: startup.tune_gc did not)
        if store is not None:
            store.close()
        startup.close_opened_ahead(opened_ahead)


#: dc_api_x.cli.main leaves the collector off for this command: startup.tune_gc turns it on once
#: the run's modules are loaded (dc_api_x.cli.resume_gc)
cmd_run.resumes_gc = True  # type: ignore[attr-defined]


def _positive(value: float | None, flag: str) -> float | None:
    if value is not None and not 0 < value < float("inf"):
        raise ConfigError(f"{flag} must be a number of seconds > 0, got {value}", plugin="runner", field=flag)
    return value


#: exit code of a scheduled ``dcapix run`` that found its pipeline running elsewhere (EX_TEMPFAIL).
EXIT_BUSY = 75


def _close_scheduled_run(store: Any, run_id: str, exc: BaseException) -> int:
    """A run started by the scheduler that ended before or outside its own recording (a lock held
    elsewhere, a configuration error): close its history entry, then report as usual."""
    from .history import finish_run
    from .locks import LockBusyError

    if isinstance(exc, LockBusyError):
        finish_run(store, run_id, status="skipped", error=str(exc), only_if_open=True)
        print(f"dcapix: {exc}; skipped", file=sys.stderr)
        return EXIT_BUSY
    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    try:
        finish_run(store, run_id, status=status, error=str(exc) or type(exc).__name__, only_if_open=True)
    except StateError:  # pragma: no cover - the scheduler closes it from the exit code
        pass
    raise exc


def _run_or_plan(args: argparse.Namespace, name: str, pipe: Any, store: Any, opts: Any) -> int:
    from .pipeline import Runner, run_pipeline
    from .progress import Progress, RunMetrics, format_summary

    if args.dry_run or args.via_singer:
        from ..cli import resume_gc

        resume_gc()  # (only the in-process run turns it on in startup.tune_gc)

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

                metrics = run_via_singer(name, pipe, store, opts, progress=progress)  # lock + history
            else:
                startup.arrow_system_allocator()
                startup.tune_gc()
                metrics = run_pipeline(name, pipe, store, opts, progress=progress)
        except (Exception, KeyboardInterrupt) as exc:
            failed = exc
            metrics = progress.metrics
            if metrics.status != "failed":
                metrics.status = "failed"
    summary = format_summary(metrics)
    if store is not None:
        summary += f"\n  run id {opts.run_id} (dcapix runs show {opts.run_id})"
    if args.json:
        out = {**metrics.as_dict(), "run_id": opts.run_id if store is not None else None}
        if failed is not None:
            from ..logs import redact

            out["error"] = redact(str(failed))
        print(json.dumps(out, default=str))
        print(summary, file=sys.stderr)
    elif metrics.streams or failed is None:
        print(summary)
    if failed is not None:
        if isinstance(failed, OSError):  # an adapter that let a file-system error through: one line
            from ..exceptions import AdapterError
            from ..logs import redact

            raise AdapterError(f"pipeline {name!r}: {redact(f'{type(failed).__name__}: {failed}')}") from None
        raise failed
    return 0


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


# ------------------------------------------------------------------------------ schedule / runs
def _schedule_context(args: argparse.Namespace, *, want_jobs: bool = True) -> tuple[Any, Any, list[Any]]:
    """(project or None, store, jobs) for ``schedule`` / ``report``."""
    from .config import ProjectConfig, load_config
    from .state import open_state_store

    meltano_dir = getattr(args, "meltano_project", None)
    # the pipeline file: -c, or the default one unless only a Meltano project is named
    use_file = args.config or not meltano_dir
    project: ProjectConfig | None = load_config(args.config, required=not meltano_dir) if use_file else None
    if project is not None and project.path is None:
        project = None
    names = list(getattr(args, "names", None) or [])
    jobs: list[Any] = []
    if want_jobs:
        from .schedule import jobs_from_project

        if project is not None:
            jobs += jobs_from_project(project, state_db=args.state_db, names=names)
        if meltano_dir:
            from .meltano_schedules import jobs_from_meltano

            jobs += jobs_from_meltano(
                meltano_dir,
                project.scheduler if project is not None else ProjectConfig().scheduler,
                meltano=args.meltano_bin,
                names=names,
                environment=args.environment,
            )
        known = {j.name for j in jobs} | {j.name[len("meltano:") :] for j in jobs if j.kind == "meltano"}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(
                f"unknown job {missing[0]!r}; valid: {', '.join(sorted(j.name for j in jobs)) or '(none)'}",
                plugin="schedule",
            )
    if project is not None:
        store = _open_store(args, project)
    else:
        base = Path(meltano_dir) if meltano_dir else Path.cwd()
        store = open_state_store("sqlite", project_dir=base, path=args.state_db)
    return project, store, jobs


def cmd_schedule(args: argparse.Namespace) -> int:
    """``dcapix schedule list|run``."""
    early_stop: list[int] = []
    if args.schedule_command == "run":  # a SIGTERM while the configuration loads stops it cleanly too
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda signum, frame: early_stop.append(signum))
    project, store, jobs = _schedule_context(args)
    try:
        if args.schedule_command == "list":
            from .schedule import schedule_overview

            rows = schedule_overview(jobs, store, count=args.count)
            if args.json:
                print(json.dumps(rows, indent=2, default=str))
            elif not rows:
                print("(no schedules)")
            else:
                print(_table([_overview_row(r) for r in rows], ["job", "schedule", "next_runs", "last_run"]))
            return 0
        from .config import parse_duration
        from .schedule import Policy
        from .scheduler import Scheduler

        if not jobs:
            where = project.path if project is not None else args.meltano_project
            raise ConfigError(
                f"nothing to schedule in {where}: no pipeline has a schedule: (and no Meltano schedules:)",
                plugin="schedule",
            )
        if args.retries is not None or args.retry_delay is not None:
            for job in jobs:
                p = job.policy
                job.policy = Policy(
                    p.missed,
                    p.grace,
                    p.retries if args.retries is None else args.retries,
                    p.retry_delay if args.retry_delay is None else float(parse_duration(args.retry_delay)),
                    p.retry_max_delay,
                )
        cfg = project.scheduler if project is not None else None
        sched = Scheduler(
            jobs,
            store,
            max_concurrent=args.max_concurrent or (cfg.max_concurrent if cfg else 4),
            once=args.once,
            now=args.now,
            stop_timeout=cfg.stop_timeout if cfg else 120.0,
        )
        sched.install_signal_handlers()
        if early_stop:
            import signal

            sched.request_stop(f"received {signal.Signals(early_stop[0]).name}")
        return sched.run()
    finally:
        store.close()


def _overview_row(r: dict[str, Any]) -> dict[str, Any]:
    last = r["last_run"]
    text = "-"
    if last:
        secs = f", {last['seconds']:.1f} s" if last.get("seconds") is not None else ""
        text = f"{last['status']} {last['started_at'][:19].replace('T', ' ')} UTC{secs}"
        if last.get("error"):
            text += "\n" + last["error"][:70]
    nxt = [t.replace("T", " ") for t in r["next_runs"]] or ["(not by itself)"]
    if r["due_now"]:
        nxt.insert(0, "due now")
    return {"job": r["job"], "schedule": r["schedule"], "next_runs": "\n".join(nxt), "last_run": text}


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    """A plain text table (cells may hold several lines)."""
    cells = [[str(c).upper().replace("_", " ") for c in cols]]
    for r in rows:
        cells.append(["" if r.get(c) is None else str(r.get(c)) for c in cols])
    widths = [
        max(len(line) for row in cells for line in row[i].splitlines() or [""]) for i in range(len(cols))
    ]
    out = []
    for row in cells:
        parts = [cell.splitlines() or [""] for cell in row]
        for k in range(max(len(p) for p in parts)):
            line = "  ".join(
                (p[k] if k < len(p) else "").ljust(widths[i]) for i, p in enumerate(parts)
            ).rstrip()
            out.append(line)
    return "\n".join(out)


def cmd_runs(args: argparse.Namespace) -> int:
    """``dcapix runs list|show``."""
    from .config import load_config
    from .history import get_run, list_runs

    project = load_config(args.config, required=args.config is not None) if not args.state_db else None
    store = _open_store(args, project)
    try:
        if args.runs_command == "show":
            rec = get_run(store, args.run_id)
            if args.json:
                print(json.dumps(rec.as_dict(), indent=2, default=str))
                return 0
            print(_format_run(rec))
            return 0
        runs = list_runs(
            store, args.pipeline, status=args.status, limit=args.limit or None, streams=args.json
        )
        if args.json:
            print(json.dumps([r.as_dict() for r in runs], indent=2, default=str))
            return 0
        if not runs:
            print(f"(no runs in {store.location})", file=sys.stderr)
            return 0
        rows = [
            {
                "run_id": r.run_id,
                "pipeline": r.pipeline,
                "trigger": r.trigger + (f" #{r.attempt}" if r.attempt > 1 else ""),
                "status": r.status,
                "started_at": r.started_at[:19].replace("T", " "),
                "seconds": f"{r.seconds:.1f}" if r.seconds is not None else "",
                "rows": f"{r.rows:,}" if r.rows is not None else "",
                "error": (r.error or "")[:80],
            }
            for r in runs
        ]
        print(
            _table(
                rows, ["run_id", "pipeline", "trigger", "status", "started_at", "seconds", "rows", "error"]
            )
        )
        return 0
    finally:
        store.close()


def _format_run(rec: Any) -> str:
    lines = [
        f"run {rec.run_id}: pipeline {rec.pipeline!r}, {rec.status}",
        f"  trigger   {rec.trigger} (attempt {rec.attempt})"
        + (f", scheduled for {rec.scheduled_for}" if rec.scheduled_for else ""),
        f"  mode      {rec.mode}" + (f" ({rec.command})" if rec.command else ""),
        f"  started   {rec.started_at}" + (f" on {rec.host}, pid {rec.pid}" if rec.host else ""),
        f"  ended     {rec.ended_at or '-'}" + (f" ({rec.seconds:.2f} s)" if rec.seconds is not None else ""),
        f"  rows      {rec.rows:,}" if rec.rows is not None else "  rows      -",
    ]
    if rec.bytes is not None:
        lines.append(f"  bytes     {rec.bytes:,}")
    if rec.error:
        lines.append(f"  error     {rec.error}")
    if rec.streams:
        rows = []
        for s in rec.streams:
            rps = s.rows_per_second
            rows.append(
                {
                    "stream": s.stream,
                    "status": s.status,
                    "rows": f"{s.rows:,}" if s.rows is not None else "",
                    "bytes": f"{s.bytes:,}" if s.bytes is not None else "",
                    "seconds": f"{s.seconds:.2f}" if s.seconds is not None else "",
                    "rows_per_s": f"{rps:,.0f}" if rps is not None else "",
                    "state_before": json.dumps(s.state_before, sort_keys=True, default=str),
                    "state_after": json.dumps(s.state_after, sort_keys=True, default=str),
                }
            )
        table = _table(
            rows,
            ["stream", "status", "rows", "bytes", "seconds", "rows_per_s", "state_before", "state_after"],
        )
        lines += ["", *("  " + line for line in table.splitlines())]
        errs = [
            f"  {s.stream}: {s.error}"
            + (
                f" ({s.detail['rows_rolled_back']:,} rows rolled back)"
                if s.detail.get("rows_rolled_back")
                else ""
            )
            for s in rec.streams
            if s.error
        ]
        if errs:
            lines += ["", *errs]
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    """``dcapix report -o report.html``."""
    from .report import write_report

    _project, store, jobs = _schedule_context(args)
    try:
        path = write_report(
            store,
            args.output,
            jobs=jobs,
            days=args.days,
            max_runs=args.max_runs,
            title=args.title,
        )
    finally:
        store.close()
    print(f"report written to {path}", file=sys.stderr)
    return 0


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
