"""Process mode: ``dcapix run --via-singer`` runs ``TAP | TARGET`` as two processes joined by a pipe.

* the tap and target configs are written to temp files (mode 0600, in a 0700 temp directory,
  removed afterwards); by default ``tap-dcapix`` gets the source endpoint and ``target-dcapix`` the
  destination endpoint, any other Singer executables can be named in the pipeline's ``singer:``;
* the stored state (partition ``singer`` of each stream) is passed to the tap as ``--state``;
* both stderr streams are forwarded line by line with a ``[tap]`` / ``[target]`` prefix; record
  counts are taken from the tap's singer-sdk ``METRIC`` lines;
* every STATE the *target* emits (a target emits it only after committing) is stored as it arrives,
  in one transaction of the state store, so a run killed at any point (even with SIGKILL) resumes
  from the last one; an unchanged STATE is not stored again; the run fails when either process
  exits non-zero (what was stored stays: it covers committed rows only);
* the children die with the runner (``PR_SET_PDEATHSIG`` on Linux), so a killed runner leaves no
  orphans.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..exceptions import AdapterError, ConfigError
from ..logs import redact
from .config import PipelineConfig
from .pipeline import RunOptions, register_secrets
from .progress import Progress, RunMetrics
from .state import StateStore

__all__ = ["SINGER_PARTITION", "run_via_singer", "singer_state", "store_singer_state"]

log = logging.getLogger("dc_api_x.runner")

#: state-store partition of the Singer-format state (the in-process runner uses partition "").
SINGER_PARTITION = "singer"
_WHOLE = "__singer__"


def _pdeathsig() -> None:  # pragma: no cover - runs in the child
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _which(exe: str) -> str:
    if os.sep in exe:
        return exe
    local = Path(sys.executable).parent / exe
    if local.exists():
        return str(local)
    found = shutil.which(exe)
    if found is None:
        raise ConfigError(
            f"singer executable {exe!r} not found (next to {sys.executable} or on PATH)",
            plugin="runner",
            field="singer",
        )
    return found


def singer_state(store: StateStore, pipeline: str) -> dict[str, Any] | None:
    """The Singer state (``{"bookmarks": {stream: …}}``) stored for ``pipeline``, or ``None``."""
    entries = store.list(pipeline, partition=SINGER_PARTITION)
    if not entries:
        return None
    state: dict[str, Any] = {}
    for e in entries:
        if e.stream == _WHOLE:
            state = {**e.value, **state}
    bookmarks = {e.stream: e.value for e in entries if e.stream != _WHOLE}
    if bookmarks:
        state["bookmarks"] = {**(state.get("bookmarks") or {}), **bookmarks}
    return state


def store_singer_state(
    store: StateStore, pipeline: str, state: dict[str, Any], run_id: str | None = None
) -> None:
    """Store a target-emitted Singer state: one entry per stream bookmark (plus the rest, if any)."""
    bookmarks = state.get("bookmarks")
    items: list[tuple[str, str, dict[str, Any]]] = []
    if isinstance(bookmarks, dict):
        for stream, value in bookmarks.items():
            if isinstance(value, dict):
                items.append((str(stream), SINGER_PARTITION, value))
    rest = {k: v for k, v in state.items() if k != "bookmarks"}
    if rest or not items:
        items.append((_WHOLE, SINGER_PARTITION, rest if items else state))
    store.set_many(pipeline, items, run_id=run_id)


def _write_json(directory: str, name: str, data: Any) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, default=str)
    return path


def _forward(
    pipe: IO[bytes], prefix: str, out: IO[str], on_line: Callable[[str], None] | None = None
) -> None:
    for raw in iter(pipe.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if on_line is not None:
            try:
                on_line(line)
            except Exception:  # pragma: no cover - never let metrics parsing kill forwarding
                pass
        try:
            print(f"{prefix} {redact(line)}", file=out, flush=True)
        except Exception:  # pragma: no cover
            pass
    pipe.close()


def run_via_singer(
    name: str,
    config: PipelineConfig,
    store: StateStore | None,
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    stderr: IO[str] | None = None,
) -> RunMetrics:
    """Run ``tap | target`` for a pipeline and store the target's last state (see module doc),
    under the pipeline's run lock and recorded in the run history when there is a state store (as
    :func:`run_pipeline` does)."""
    if store is None:
        return _run_via_singer(name, config, store, options, progress=progress, stderr=stderr)
    from .history import recording

    opts = options or RunOptions()
    progress = progress or Progress(RunMetrics(name, mode="via-singer"), quiet=True)
    with (
        store.lock(name, run_id=opts.run_id, on_lost=opts.on_lock_lost) as lock,
        recording(
            store,
            name,
            lambda: progress.metrics,
            run_id=opts.run_id,
            trigger=opts.trigger,
            mode="via-singer",
            partition="singer",
            scheduled_for=opts.scheduled_for,
            attempt=opts.attempt,
            lock=lock,
        ),
    ):
        return _run_via_singer(name, config, store, opts, progress=progress, stderr=stderr)


def _run_via_singer(
    name: str,
    config: PipelineConfig,
    store: StateStore | None,
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    stderr: IO[str] | None = None,
) -> RunMetrics:
    options = options or RunOptions()
    if options.select or options.limit or config.select or config.source.select:
        raise ConfigError(
            f"pipeline {name!r}: select/--select and --limit are not supported with "
            "--via-singer; set the streams in the tap config",
            plugin="runner",
        )
    err_out = stderr or sys.stderr
    metrics = progress.metrics if progress is not None else RunMetrics(name)
    metrics.pipeline, metrics.mode = name, "via-singer"
    sc = config.singer
    tap_cfg = (
        sc.tap_config
        if sc.tap_config is not None
        else {
            **config.source.adapter_config(),
            **({"transforms": config.source.transforms} if config.source.transforms else {}),
            **({"stream_maps": config.source.stream_maps} if config.source.stream_maps else {}),
            **_partition_settings(config, options),
        }
    )
    target_cfg = (
        sc.target_config
        if sc.target_config is not None
        else {
            **config.destination.adapter_config(),
            **({"load_method": config.destination.load_method} if config.destination.load_method else {}),
        }
    )
    register_secrets(tap_cfg)
    register_secrets(target_cfg)
    tap_cmd, target_cmd = shlex.split(sc.tap), shlex.split(sc.target)
    if not tap_cmd or not target_cmd:
        raise ConfigError(
            f"pipeline {name!r}: singer.tap and singer.target must name executables",
            plugin="runner",
            field="singer",
        )
    if sc.target_config is None and os.path.basename(target_cmd[0]) == "target-dcapix":
        # the pipeline's time bound is target-dcapix's (the tap emits a STATE after every batch)
        target_cfg.setdefault(
            "batch_wait_limit_seconds", options.checkpoint_seconds or config.checkpoint_seconds
        )
    tap_cmd[0], target_cmd[0] = _which(tap_cmd[0]), _which(target_cmd[0])
    state = None
    if store is not None and not options.full_refresh:
        state = singer_state(store, name)
    last_state: list[dict[str, Any]] = []
    counts: dict[str, int] = {}

    def on_tap_line(line: str) -> None:
        # singer-sdk: "METRIC: {"type": "counter", "metric": "record_count", "value": 5, "tags": {...}}"
        idx = line.find("METRIC: ")
        if idx < 0:
            return
        data = json.loads(line[idx + 8 :])
        if data.get("metric") == "record_count":
            stream = str((data.get("tags") or {}).get("stream", "?"))
            counts[stream] = counts.get(stream, 0) + int(data.get("value") or 0)
            sm = metrics.stream(stream)
            sm.started, sm.bytes = metrics.started, None  # the records go tap -> target directly
            sm.rows = counts[stream]

    stored: list[str] = []  # the JSON of the last state stored (to skip repeats)
    store_error: list[BaseException] = []
    procs: list[subprocess.Popen[bytes]] = []
    keeping = threading.Lock()

    def keep_state(value: dict[str, Any]) -> None:
        """Store one target STATE now (the target emits it only after its commit)."""
        with keeping:
            _keep_state(value)

    def _keep_state(value: dict[str, Any]) -> None:
        if store is None or store_error:
            return
        text = json.dumps(value, sort_keys=True, default=str)
        if stored and stored[-1] == text:
            return
        try:
            store_singer_state(store, name, value, run_id=options.run_id)
        except BaseException as exc:  # e.g. the run lock was taken over: stop the children
            store_error.append(exc)
            for p in procs:
                with contextlib.suppress(OSError):
                    p.terminate()
            return
        stored[:] = [text]
        bookmarks = value.get("bookmarks")
        for stream, bm in (bookmarks if isinstance(bookmarks, dict) else {}).items():
            sm = metrics.stream(str(stream))
            if sm.bookmark != bm:
                sm.bookmark = bm
                sm.checkpoints += 1

    def on_target_stdout(line: str) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            return
        if isinstance(data, dict):
            if data.get("type") == "STATE" and isinstance(data.get("value"), dict):
                data = data["value"]
            last_state.append(data)
            del last_state[:-1]
            keep_state(data)

    threads: list[threading.Thread] = []
    with tempfile.TemporaryDirectory(prefix="dcapix-singer-") as tmp:
        os.chmod(tmp, 0o700)
        tap_args = [*tap_cmd, "--config", _write_json(tmp, "tap.json", tap_cfg)]
        if state:
            tap_args += ["--state", _write_json(tmp, "state.json", state)]
        tap_args += sc.tap_args
        target_args = [*target_cmd, "--config", _write_json(tmp, "target.json", target_cfg), *sc.target_args]
        log.info("pipeline %s: %s | %s", name, " ".join(tap_args), " ".join(target_args))
        try:
            tap = subprocess.Popen(
                tap_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_pdeathsig
            )
            procs.append(tap)
            target = subprocess.Popen(
                target_args,
                stdin=tap.stdout,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                preexec_fn=_pdeathsig,
            )
            procs.append(target)
            assert tap.stdout is not None and tap.stderr is not None
            assert target.stdout is not None and target.stderr is not None
            tap.stdout.close()  # the target holds the read end now
            for pipe, prefix, cb in ((tap.stderr, "[tap]", on_tap_line), (target.stderr, "[target]", None)):
                t = threading.Thread(target=_forward, args=(pipe, prefix, err_out, cb), daemon=True)
                t.start()
                threads.append(t)
            t = threading.Thread(target=_forward_stdout, args=(target.stdout, on_target_stdout), daemon=True)
            t.start()
            threads.append(t)
            tap_rc = tap.wait()
            target_rc = target.wait()
            for t in threads:
                t.join(timeout=10)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            metrics.finished = time.monotonic()
            if last_state:
                keep_state(last_state[-1])  # (already stored by the reader thread, unless it lagged)
            for s in metrics.streams.values():
                s.finished = metrics.finished
    if store_error:
        metrics.status = "failed"
        for s in metrics.streams.values():
            s.status = "failed"
        raise store_error[0]
    ok = tap_rc == 0 and target_rc == 0
    for s in metrics.streams.values():
        s.status = "done" if ok else "failed"
        if not ok:
            # a Singer target does not say how many rows it committed, only up to which STATE
            s.notes.append(
                "rows are the records the tap sent; the target committed those up to the last "
                + (
                    f"stored STATE ({json.dumps(s.bookmark, default=str)})"
                    if s.bookmark
                    else "STATE (none stored)"
                )
            )
    if not ok:
        metrics.status = "failed"
        who = (
            f"tap {sc.tap!r} exited with code {tap_rc}"
            if tap_rc != 0
            else f"target {sc.target!r} exited with code {target_rc}"
        )
        raise AdapterError(
            f"pipeline {name!r} (via singer): {who}; state stored: "
            f"{'the last one the target emitted' if last_state else 'none'}"
        )
    metrics.status = "done"
    return metrics


def _forward_stdout(pipe: IO[bytes], on_line: Callable[[str], None]) -> None:
    for raw in iter(pipe.readline, b""):
        with contextlib.suppress(Exception):
            on_line(raw.decode("utf-8", errors="replace").strip())
    pipe.close()


def _partition_settings(config: PipelineConfig, options: RunOptions | None) -> dict[str, int]:
    """The tap's ``concurrency`` / ``partitions`` settings from ``--workers`` / ``--partitions`` or the
    source's keys (docs/scale.md): the tap reads partitions concurrently, each STATE exact."""
    workers = (options.workers if options is not None else None) or config.source.concurrency
    parts = (options.partitions if options is not None else None) or config.source.partitions
    out = {"concurrency": workers} if workers and workers > 1 else {}
    if parts and parts > 1:
        out["partitions"] = parts
    return out
