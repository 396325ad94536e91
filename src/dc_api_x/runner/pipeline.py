"""The in-process runner: batches move from a source adapter's ``read()`` to a destination
adapter's ``write()`` as Arrow (or the adapters' native batches), with no JSON in between.

Per stream::

    state  = store.get(pipeline, stream)                 # None with --full-refresh
    dest.start_write(stream, load_method=…)
    for batch in source.read(stream, state=state):       # in a reader thread, bounded queue
        batch = transforms(batch)
        dest.write(stream, batch)
        every checkpoint_rows / checkpoint_seconds (incremental, not overwrite):
            dest.flush(stream); store.set(pipeline, stream, batch.bookmark)   # never ahead
    dest.finish_write(stream); store.set(pipeline, stream, last bookmark)

The reader thread overlaps reading with writing (pyarrow, psycopg and ADBC release the GIL); the
queue holds at most ``prefetch`` batches, so peak memory stays bounded by the batch size.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..crashpoints import crash_point
from ..exceptions import ConfigError, DcApiXError, UnknownPluginError
from ..logs import MASK, is_secret_key, logfire_span, redact, redact_mapping
from ..prefetch import Prefetcher
from ..types import StreamSpec
from .config import Endpoint, PipelineConfig
from .progress import Progress, RunMetrics, StreamMetrics
from .state import StateStore

__all__ = ["RunOptions", "Runner", "register_secrets", "run_pipeline", "stream_transforms"]

log = logging.getLogger("dc_api_x.runner")


@dataclass
class RunOptions:
    """Per-invocation settings (the ``dcapix run`` flags)."""

    full_refresh: bool = False
    select: Sequence[str] | None = None
    limit: int | None = None
    prefetch: int | None = None
    parallel: int | None = None
    checkpoint_rows: int | None = None
    checkpoint_seconds: float | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    #: what started the run (``manual`` or ``schedule``), recorded in the run history.
    trigger: str = "manual"
    #: the schedule slot (ISO time) and attempt of a scheduled run.
    scheduled_for: str | None = None
    attempt: int = 1
    #: called when the run lock is lost to another process (``dcapix run`` interrupts the run).
    on_lock_lost: Callable[[], None] | None = None
    #: partitioned runs (docs/scale.md): ``local`` or ``dask``, concurrent partitions per stream,
    #: partitions per stream, and the dask scheduler address.
    executor: str = "local"
    workers: int | None = None
    partitions: int | None = None
    scheduler: str | None = None
    #: the local executor's workers: ``threads`` or ``processes`` (``None``: the source's, else threads).
    worker_pool: str | None = None


# ------------------------------------------------------------------------------------- helpers
def _adapter_class(adapter: str, role: str, pipeline: str, plugins: Any) -> Any:
    from ..plugins import get_plugins

    reg = (plugins or get_plugins()).adapters
    try:
        return reg.get(adapter)
    except UnknownPluginError as exc:
        raise ConfigError(
            f"pipeline {pipeline!r}, {role}: unknown adapter {adapter!r}; "
            f"valid: {', '.join(exc.known) or '(none)'}",
            plugin="runner",
            field=f"{role}.adapter",
        ) from None


def _split_streams(endpoint: Endpoint, cls: Any) -> tuple[dict[str, Any], list[str] | None]:
    """The adapter config, and a stream selection taken from ``streams: [names]`` when the
    adapter itself has no ``streams`` option."""
    cfg = endpoint.adapter_config()
    fields = getattr(getattr(cls, "Options", None), "model_fields", {}) or {}
    streams = cfg.get("streams")
    if "streams" not in fields and isinstance(streams, list) and all(isinstance(s, str) for s in streams):
        cfg.pop("streams")
        return cfg, list(streams)
    # an adapter with its own ``streams`` option limits discovery itself (and names the streams)
    return cfg, None


def _make_adapter(endpoint: Endpoint, role: str, pipeline: str, plugins: Any) -> Any:
    cls = _adapter_class(endpoint.adapter, role, pipeline, plugins)
    cfg, _ = _split_streams(endpoint, cls)
    cfg.pop("adapter", None)
    from ..factories import build_adapter

    try:
        return build_adapter(endpoint.adapter, cls, cfg)
    except ConfigError as exc:
        raise ConfigError(
            f"pipeline {pipeline!r}, {role}: {exc}", plugin=exc.plugin, field=exc.field
        ) from None


def register_secrets(data: Any, secret_keys: Sequence[str] = ()) -> None:
    """Mask every value under a secret-looking key (or one of ``secret_keys``) in logs from now on,
    including the stderr of child processes forwarded by process mode."""
    from ..logs import register_secret

    if isinstance(data, Mapping):
        for k, v in data.items():
            if isinstance(v, str) and isinstance(k, str) and (k in secret_keys or is_secret_key(k)):
                register_secret(v)
            else:
                register_secrets(v, secret_keys)
    elif isinstance(data, list):
        for v in data:
            register_secrets(v, secret_keys)


def _redacted_options(endpoint: Endpoint, cls: Any) -> dict[str, Any]:
    secret = set(getattr(cls, "secret_options", ()) or ())
    out: dict[str, Any] = {"adapter": endpoint.adapter}
    for k, v in endpoint.adapter_config().items():
        if k == "adapter":
            continue
        if isinstance(v, str) and "://" in v:
            out[k] = redact(v)  # a URL: credentials and secret query values masked, the rest shown
        elif (k in secret or is_secret_key(k)) and v not in (None, ""):
            out[k] = MASK
        else:
            out[k] = redact_mapping(v)
    for k in ("transforms", "stream_maps", "load_method", "stream_map"):
        v = getattr(endpoint, k, None)
        if v:
            out[k] = redact_mapping(v)
    return out


def stream_transforms(
    configs: Any, spec: StreamSpec, plugins: Any = None, stream_maps: Mapping[str, Any] | None = None
) -> tuple[Any, StreamSpec]:
    """The transform chain of one stream and the stream description it produces.

    ``configs`` is a list of ``{type: NAME, …}`` applied to every stream, or a mapping
    ``{stream_name: [...], "*": [...]}``; a stream's own ``transforms`` (an adapter stream option,
    e.g. the HTTP adapter's ``streams[].transforms``) run after them, and last the stream's Singer
    stream map from ``stream_maps`` (converted by
    :func:`dc_api_x.transforms.stream_maps.stream_map_to_transforms`, as a Singer tap applies its
    maps after its own processing). Returns ``(None, spec)`` when no transform applies.
    """
    if isinstance(configs, Mapping):
        configs = configs.get(spec.name, configs.get("*"))
    own = spec.options.get("transforms") if isinstance(spec.options, Mapping) else None
    if own and isinstance(own, (list, tuple)):
        configs = [*(configs or []), *own]
    if stream_maps and spec.name in stream_maps:
        from ..transforms.stream_maps import stream_map_to_transforms

        configs = [*(configs or []), *stream_map_to_transforms(stream_maps[spec.name])]
    if not configs:
        return None, spec
    from ..ext.transforms import build_transforms

    chain = build_transforms(list(configs), spec.schema, stream=spec.name, plugins=plugins)
    if not len(chain):
        return None, spec
    rk = chain.output_field(spec.replication_key) if spec.replication_key else None
    out = spec.with_(
        schema=chain.schema,
        key_properties=chain.output_fields(spec.key_properties),
        replication_key=rk,
        replication_keys=chain.output_fields(spec.replication_keys),
    )
    return chain, out


# --------------------------------------------------------------------------------------- runner
class Runner:
    """Runs one pipeline in-process. ``run()`` returns :class:`RunMetrics`; ``plan()`` the dry-run plan.

    :param name: the pipeline name (the state key).
    :param config: the pipeline.
    :param store: the state store (``None``: no state is read or written).
    :param plugins: a plugin set (default: the current one).
    """

    def __init__(
        self,
        name: str,
        config: PipelineConfig,
        store: StateStore | None = None,
        options: RunOptions | None = None,
        *,
        plugins: Any = None,
        progress: Progress | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.store = store
        self.options = options or RunOptions()
        self.plugins = plugins
        self.progress = progress
        self.metrics = RunMetrics(name)
        self.source_cls = _adapter_class(config.source.adapter, "source", name, plugins)
        self.dest_cls = _adapter_class(config.destination.adapter, "destination", name, plugins)
        _, self._configured_streams = _split_streams(config.source, self.source_cls)
        for ep, cls in ((config.source, self.source_cls), (config.destination, self.dest_cls)):
            register_secrets(ep.adapter_config(), tuple(getattr(cls, "secret_options", ()) or ()))
        lm = config.destination.load_method
        methods = tuple(getattr(self.dest_cls, "load_methods", ()) or ())
        if lm is not None and methods and lm not in methods:
            raise ConfigError(
                f"pipeline {name!r}, destination adapter {config.destination.adapter!r}: "
                f"unknown load_method {lm!r}; valid: {', '.join(methods)}",
                plugin="runner",
                field="destination.load_method",
            )

    # -- pieces ----------------------------------------------------------------------------------
    def make_source(self) -> Any:
        return _make_adapter(self.config.source, "source", self.name, self.plugins)

    def make_destination(self) -> Any:
        return _make_adapter(self.config.destination, "destination", self.name, self.plugins)

    def selection(self) -> list[str] | None:
        sel = self.options.select or self.config.select or self.config.source.select
        if sel:
            return list(sel)
        return self._configured_streams

    def streams(self, source: Any) -> list[StreamSpec]:
        """The streams to run: discovered, filtered by the selection (unknown names → one error)."""
        found = list(source.discover())
        by_name = {s.name: s for s in found}
        sel = self.selection()
        if not sel:
            return found
        unknown = [s for s in sel if s not in by_name]
        if unknown:
            raise ConfigError(
                f"pipeline {self.name!r}: unknown stream {unknown[0]!r} in source adapter "
                f"{self.config.source.adapter!r}; valid: {', '.join(sorted(by_name)) or '(none)'}",
                plugin="runner",
                field="select",
            )
        return [by_name[s] for s in sel]

    def destination_spec(self, spec: StreamSpec) -> tuple[Any, StreamSpec]:
        """The stream's transform chain (or ``None``) and the stream the destination receives."""
        source = self.config.source
        chain, out = stream_transforms(source.transforms, spec, self.plugins, source.stream_maps)
        mapped = self.config.destination.stream_map.get(spec.name)
        return chain, (out.with_(name=mapped) if mapped else out)

    # -- dry run ---------------------------------------------------------------------------------
    def plan(self) -> dict[str, Any]:
        """What a run would do, with secrets redacted (connects to discover streams)."""
        plan: dict[str, Any] = {
            "pipeline": self.name,
            "source": _redacted_options(self.config.source, self.source_cls),
            "destination": _redacted_options(self.config.destination, self.dest_cls),
            "load_method": self.config.destination.load_method,
            "full_refresh": self.options.full_refresh,
            "limit": self.options.limit,
            "state_store": getattr(self.store, "location", None),
            "streams": [],
        }
        src = self.make_source()
        try:
            try:
                specs = self.streams(src)
            except ConfigError:
                raise
            except DcApiXError as exc:
                # show what the configuration says instead (names, paths, queries, pagination)
                plan["discover_error"] = redact(str(exc))
                specs = [StreamSpec(n) for n in self.selection() or []]
                if not specs:
                    for item in self.config.source.options.get("streams") or []:
                        if isinstance(item, str):
                            specs.append(StreamSpec(item))
                        elif isinstance(item, Mapping):
                            nm = item.get("name") or item.get("table") or item.get("path") or "?"
                            specs.append(StreamSpec(str(nm), options=dict(item)))
            for spec in specs:
                entry: dict[str, Any] = {
                    "name": spec.name,
                    "destination": self.destination_spec(spec)[1].name,
                    "replication": spec.replication_method,
                    "replication_key": spec.replication_key,
                    "key_properties": list(spec.key_properties),
                    "columns": len(spec.properties),
                }
                if spec.options:
                    entry["read"] = redact_mapping(dict(spec.options))
                describe = getattr(src, "describe_read", None) or getattr(src, "explain", None)
                if describe is not None:
                    try:
                        entry["read"] = redact_mapping(describe(spec))
                    except Exception as exc:  # pragma: no cover - informative only
                        entry["read_error"] = redact(str(exc))
                if self.store is not None:
                    entry["state"] = (
                        None if self.options.full_refresh else self.store.get(self.name, spec.name)
                    )
                plan["streams"].append(entry)
        finally:
            src.close()
        return plan

    # -- run -------------------------------------------------------------------------------------
    def run(self) -> RunMetrics:
        """Run every selected stream; raises the first stream's error after recording it."""
        parallel = self.options.parallel or self.config.parallel
        self.metrics.status = "running"
        source = self.make_source()
        counted = False  # the source's figures are added once (parallel mode adds them early)
        try:
            specs = self.streams(source)
            for spec in specs:
                self.metrics.stream(spec.name).status = "pending"
            if parallel <= 1 or len(specs) <= 1:
                dest = self.make_destination()
                try:
                    self._run_all(specs, source, dest)
                finally:
                    self.metrics.add_figures("destination", dest)
                    dest.close()
            else:
                self.metrics.add_figures("source", source)  # discovery's figures
                counted = True
                source.close()
                self._run_parallel(specs, parallel)
        except BaseException:
            self.metrics.status = "failed"
            raise
        finally:
            if not counted:
                self.metrics.add_figures("source", source)
            source.close()
            self.metrics.finished = time.monotonic()
        self.metrics.status = "done"
        return self.metrics

    def _run_all(self, specs: list[StreamSpec], source: Any, dest: Any) -> None:
        for i, spec in enumerate(specs):
            try:
                self.run_stream(spec, source, dest)
            except BaseException:
                for later in specs[i + 1 :]:
                    m = self.metrics.stream(later.name)
                    m.status, m.finished = "skipped", time.monotonic()
                raise

    def _run_parallel(self, specs: list[StreamSpec], parallel: int) -> None:
        stop = threading.Event()

        def one(spec: StreamSpec) -> None:
            if stop.is_set():
                m = self.metrics.stream(spec.name)
                m.status, m.finished = "skipped", time.monotonic()
                return
            src, dst = self.make_source(), None
            try:
                dst = self.make_destination()
                self.run_stream(spec, src, dst)
            except BaseException:
                stop.set()
                raise
            finally:
                self.metrics.add_figures("source", src)
                src.close()
                if dst is not None:
                    self.metrics.add_figures("destination", dst)
                    dst.close()

        from concurrent.futures import ThreadPoolExecutor  # (here: a serial run never needs it)

        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="dcapix-stream") as ex:
            futures = [ex.submit(one, s) for s in specs]
            errors = [f.exception() for f in futures]
        for err in errors:
            if err is not None:
                raise err

    def run_stream(self, spec: StreamSpec, source: Any, dest: Any) -> StreamMetrics:
        """Move one stream; state is stored only after ``dest.flush`` / ``finish_write`` returned.
        With the logfire integration on, a span ``dcapix sync {stream}`` (see :mod:`dc_api_x.logs`)."""
        with logfire_span(
            "dcapix sync {stream}",
            pipeline=self.name,
            stream=spec.name,
            source=self.config.source.adapter,
            destination=self.config.destination.adapter,
        ) as span:
            try:
                from .executors import run_partitioned

                partitioned = run_partitioned(self, spec, source, dest)
                if partitioned is not None:
                    return partitioned
                return self._run_stream(spec, source, dest)
            finally:
                m = self.metrics.stream(spec.name)
                span.set_attributes(
                    {
                        "rows": m.rows,
                        "rows_rolled_back": m.rows_rolled_back,
                        "batches": m.batches,
                        "status": m.status,
                    }
                )

    def _run_stream(self, spec: StreamSpec, source: Any, dest: Any) -> StreamMetrics:
        m = self.metrics.stream(spec.name)
        m.status, m.started = "running", time.monotonic()
        state = None
        if self.store is not None and not self.options.full_refresh:
            state = self.store.get(self.name, spec.name)
        chain, dspec = self.destination_spec(spec)
        load_method = self.config.destination.load_method
        checkpoint_rows = self.options.checkpoint_rows or self.config.checkpoint_rows
        checkpoint_secs = self.options.checkpoint_seconds or self.config.checkpoint_seconds
        # overwrite is committed only by finish_write (staging), so no state before it
        effective = load_method or getattr(getattr(dest, "options", None), "load_method", None) or "append"
        can_checkpoint = self.store is not None and effective != "overwrite"
        if self.progress is not None:
            self.progress.stream_started(spec.name, f"(resuming from {state})" if state else "")
        log.info(
            "pipeline %s: stream %s -> %s (load_method=%s, state=%s)",
            self.name,
            spec.name,
            dspec.name,
            load_method,
            state,
        )
        pending: dict[str, Any] | None = None  # bookmark of rows written but not yet flushed
        since_rows, since_t = 0, time.monotonic()
        committed = 0  # rows the destination made durable (flush / finish_write / committed writes)

        def checkpoint() -> None:
            nonlocal pending, since_rows, since_t, committed
            if pending is None:
                return
            dest.flush(dspec)
            committed = m.rows
            crash_point("runner.after_flush_before_state")
            self._save(spec.name, pending)
            m.bookmark, pending = pending, None
            m.checkpoints += 1
            since_rows, since_t = 0, time.monotonic()

        def on_idle() -> None:
            # the source is slow to produce the next batch: the rows written so far are
            # checkpointed once checkpoint_seconds went by (in this thread, between two writes)
            if can_checkpoint and pending is not None and time.monotonic() - since_t >= checkpoint_secs:
                checkpoint()

        depth = self.config.prefetch if self.options.prefetch is None else self.options.prefetch
        reader = Prefetcher(
            lambda: iter(source.read(spec, state=state, limit=self.options.limit)),
            depth,
            name=f"dcapix-read-{spec.name}",
            on_idle=on_idle,
            idle_seconds=min(max(checkpoint_secs / 4, 0.05), 5.0),
        )
        try:
            dest.start_write(dspec, load_method=load_method)
            take_notes = getattr(dest, "take_notes", None)
            if callable(take_notes):
                m.notes.extend(take_notes(dspec))
            for batch in reader:
                if chain is not None:
                    batch = chain.apply(batch)
                n = len(batch)
                t0 = time.perf_counter()
                result = dest.write(dspec, batch) if n else None
                if n and effective != "overwrite" and getattr(result, "committed", False) is True:
                    committed += n  # e.g. file_per_batch: durable on return
                if n:
                    crash_point("runner.batch_written")
                m.write_seconds += time.perf_counter() - t0
                m.rows += n
                m.bytes = (m.bytes or 0) + _batch_bytes(batch)
                m.batches += 1
                since_rows += n
                if batch.bookmark is not None:
                    pending = dict(batch.bookmark)
                if (
                    can_checkpoint
                    and pending is not None
                    and (since_rows >= checkpoint_rows or time.monotonic() - since_t >= checkpoint_secs)
                ):
                    checkpoint()
            t0 = time.perf_counter()
            dest.finish_write(dspec)
            committed = m.rows
            m.write_seconds += time.perf_counter() - t0
            if pending is not None:
                self._save(spec.name, pending)
                m.bookmark = pending
            elif self.options.full_refresh and self.store is not None and m.bookmark is None:
                # a reload from scratch that produced no bookmark: the old one no longer applies
                self.store.delete(self.name, spec.name, partition="")
            m.status = "done"
        except BaseException as exc:
            m.status = "failed"
            # what was written after the last commit is discarded by the destination (its abort /
            # close): report the committed rows, and those separately
            m.rows_rolled_back, m.rows = max(0, m.rows - committed), min(m.rows, committed)
            m.error = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise
        finally:
            reader.close()
            m.read_seconds = reader.wait_seconds
            m.retries = _retries(source, spec.name)  # the source is this run's: discovery included
            m.finished = time.monotonic()
            if self.progress is not None:
                self.progress.stream_finished(m)
        return m

    def _save(self, stream: str, bookmark: Mapping[str, Any]) -> None:
        if self.store is not None:
            self.store.set(self.name, stream, bookmark, run_id=self.options.run_id)


def _retries(source: Any, stream: str) -> dict[str, int]:
    """The retries ``source`` made reading ``stream`` so far, by reason (``{}`` for a source
    without ``read_metrics()``)."""
    read_metrics = getattr(source, "read_metrics", None)
    if read_metrics is None:
        return {}
    try:
        return dict(read_metrics(stream).get("retries_by_reason") or {})
    except Exception:  # metrics never fail a run
        return {}


def _batch_bytes(batch: Any) -> int:
    """Size of a batch for the metrics: its Arrow buffers, or its JSON size when it never had an
    Arrow view (after ``write``, most destinations have made one)."""
    if not len(batch):
        return 0
    if getattr(batch, "has_arrow", False):
        return int(batch.to_arrow().nbytes)
    import orjson

    return len(orjson.dumps(batch.records, default=str))


def run_pipeline(
    name: str,
    config: PipelineConfig,
    store: StateStore | None = None,
    options: RunOptions | None = None,
    *,
    plugins: Any = None,
    progress: Progress | None = None,
) -> RunMetrics:
    """Run one pipeline in-process under its lock (see :class:`Runner`), recorded in the run history."""
    from .history import recording

    runner = Runner(name, config, store, options, plugins=plugins, progress=progress)
    if progress is not None:
        progress.metrics = runner.metrics
    if store is None:
        return runner.run()
    opts = runner.options
    with (
        store.lock(name, run_id=opts.run_id, on_lost=opts.on_lock_lost) as lock,
        recording(
            store,
            name,
            runner.metrics,
            run_id=opts.run_id,
            trigger=opts.trigger,
            scheduled_for=opts.scheduled_for,
            attempt=opts.attempt,
            lock=lock,
        ),
    ):
        return runner.run()
