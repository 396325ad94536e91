"""The ``singer`` adapter: any Singer tap as a source, any Singer target as a destination.

As a **source** (``discover`` / ``read``) the adapter runs the tap executable:

* ``discover()`` runs ``TAP --config C --discover`` (or reads the ``catalog`` option) and turns each
  catalog entry into a stream (:mod:`.catalog`);
* ``read(stream, state=…)`` runs ``TAP --config C --catalog K [--state S]`` with only that stream
  selected and turns its messages into batches (:mod:`.source`): each STATE ends a batch whose
  ``bookmark`` holds it, so the runner stores a tap's state only after the destination committed
  the records before it, and gives it back as ``--state`` on the next run.

As a **destination** (``start_write`` / ``write`` / ``flush`` / ``finish_write``) it runs the
target executable and sends it SCHEMA, RECORD and STATE messages; the target's STATE output is the
commit (:mod:`.target`).

One tap process runs per stream read (a tap with several selected streams runs once per stream;
``parallel: N`` runs N at once); one target process per stream written, more with ``commit: exit``
and checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from dc_api_x.exceptions import AdapterError, ConfigError
from dc_api_x.ext.adapters import AdapterOptions, ProtocolAdapter
from dc_api_x.logs import is_secret_key, redact, register_secret
from dc_api_x.types import Batch, StreamSpec, WriteResult

from . import catalog as _catalog
from .messages import RecordEncoder, decode_line
from .process import Connector, private_dir, resolve_command, write_private_json
from .source import Replays, StreamReader
from .target import CHECKPOINT_KEY, TargetProcess

__all__ = ["SingerAdapter", "SingerOptions"]

log = logging.getLogger("dc_api_x.singer")

#: The load methods of the runner, spelled as singer-sdk targets spell them in their config.
SDK_LOAD_METHODS = {"append": "append-only", "upsert": "upsert", "overwrite": "overwrite"}


class SingerOptions(AdapterOptions):
    """Options of the ``singer`` adapter."""

    executable: str | list[str] = Field(
        ...,
        description="the tap or target command (a string is split like a shell would); a name is "
        "looked up in DCAPIX_SINGER_PATH, next to the running Python, then on PATH",
    )
    config: dict[str, Any] | str = Field(
        default_factory=dict,
        description="the connector's config: a mapping (written to a private 0600 file for each run) "
        "or the path of a config file (passed as it is)",
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables")
    catalog: dict[str, Any] | str | None = Field(
        None, description="a catalog (mapping or file path) to use instead of running --discover"
    )
    metadata: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="catalog metadata overrides by stream glob, as Meltano's 'metadata' extra: "
        '{"public-*": {"replication-method": "INCREMENTAL", "replication-key": "id"}}',
    )
    schema_: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict,
        alias="schema",
        description="property schema overrides by stream glob, as Meltano's 'schema' extra: "
        '{"public-items": {"amount": {"type": ["string", "null"], "format": "decimal", '
        '"x-precision": 38, "x-scale": 10}}} (applied to the catalog and to SCHEMA messages)',
    )
    select_fields: list[str] = Field(
        default_factory=list,
        description="'stream.field' globs selecting fields ('!stream.field' excludes); default: all",
    )
    catalog_flag: Literal["--catalog", "--properties"] = Field(
        "--catalog", description="how the tap takes its catalog (old taps: --properties)"
    )
    batch_size: int = Field(10_000, ge=1, description="records per batch at most (a STATE also ends one)")
    dedupe_replays: bool = Field(
        True,
        description="drop the rows a tap sends again when it resumes at its bookmark (>=): same "
        "replication value and same key as a row already delivered",
    )
    discover_timeout: float = Field(600.0, gt=0, description="seconds --discover may take")
    commit: Literal["exit", "echo"] = Field(
        "exit",
        description="target commits: 'exit' ends the target's input at each checkpoint (works with "
        "every target); 'echo' waits for the target to print the checkpoint STATE",
    )
    commit_timeout: float = Field(
        300.0, gt=0, description="'echo': seconds to wait for the echo before committing as 'exit'"
    )
    load_method_setting: str | None = Field(
        "load_method",
        description="the target config key that receives the runner's load method (singer-sdk: "
        "'load_method' = append-only | upsert | overwrite); null: the target's own config decides",
    )
    activate_version: bool = Field(
        True,
        description="overwrite: also send ACTIVATE_VERSION before and after the stream's records "
        "(Singer's full-table replace; the target deletes the rows of older versions with its "
        "hard_delete setting, or marks them deleted)",
    )
    secret_keys: list[str] = Field(
        default_factory=list,
        description="config keys holding secrets besides those named like secrets (password, token…)",
    )

    @field_validator("executable")
    @classmethod
    def _not_empty(cls, v: Any) -> Any:
        if not v:
            raise ValueError("must name an executable")
        return v

    @property
    def load_method(self) -> str | None:
        """The load method the target's own config sets (so the runner knows an overwrite)."""
        if self.load_method_setting and isinstance(self.config, Mapping):
            value = self.config.get(self.load_method_setting)
            for ours, theirs in SDK_LOAD_METHODS.items():
                if value in (ours, theirs):
                    return ours
        return None


def _register_config_secrets(data: Any, extra: Sequence[str]) -> None:
    if isinstance(data, Mapping):
        for k, v in data.items():
            if isinstance(k, str) and (k in extra or is_secret_key(k)) and isinstance(v, (str, int)):
                register_secret(str(v))
            else:
                _register_config_secrets(v, extra)
    elif isinstance(data, list):
        for v in data:
            _register_config_secrets(v, extra)


class SingerAdapter(ProtocolAdapter):
    """Runs a Singer tap (as a source) or a Singer target (as a destination); see the module doc."""

    name = "singer"
    Options = SingerOptions
    load_methods = ("append", "upsert", "overwrite")

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        opts: SingerOptions = self.options
        config: Any = opts.config
        if isinstance(config, str):  # a config file: its secrets are masked too
            try:
                config = json.loads(Path(config).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                config = None  # reported when a connector is started with it
        _register_config_secrets(config, opts.secret_keys)
        _register_config_secrets(opts.env, opts.secret_keys)
        self.argv = resolve_command(opts.executable)
        self.exe = os.path.basename(self.argv[0])
        self._entries: list[dict[str, Any]] | None = None
        self._specs: list[StreamSpec] | None = None
        # destination side
        self._target: TargetProcess | None = None
        self._target_dir: contextlib.ExitStack | None = None
        self._target_load_method: str | None = None
        self._dirty = False  # records or schemas sent since the last commit
        self._checkpoint = 0
        self._bookmarks: dict[str, Any] = {}
        self._encoders: dict[str, RecordEncoder] = {}
        self._writing: dict[str, tuple[StreamSpec, str | None]] = {}
        self._versions: dict[str, int] = {}

    # -- helpers ------------------------------------------------------------------------------------
    def _where(self, stream: str | None = None) -> str:
        """How errors start (a connector's errors then name the executable)."""
        return "adapter 'singer'" + (f", stream {stream!r}" if stream else "")

    def _config_file(self, directory: str, extra: Mapping[str, Any] | None = None) -> str:
        cfg = self.options.config
        if isinstance(cfg, str):
            if not extra:
                return cfg
            cfg = _read_json_option(cfg, "config")
        return write_private_json(directory, "config.json", {**cfg, **(extra or {})})

    # ===================================================================================== source
    def _load_catalog(self) -> list[dict[str, Any]]:
        opt = self.options.catalog
        if opt is not None:
            data: Any = _read_json_option(opt, "catalog") if isinstance(opt, str) else opt
            where = "option 'catalog'"
        else:
            data = self._run_discover()
            where = f"{self.exe} --discover"
        try:
            entries = _catalog.validate_catalog(data)
        except ValueError as exc:
            raise AdapterError(f"{self._where()}: {where}: {redact(str(exc))}", adapter="singer") from None
        _catalog.apply_metadata(entries, self.options.metadata)
        if self.options.schema_:
            for e in entries:
                e["schema"] = _catalog.apply_schema(
                    _catalog.stream_id(e), e["schema"], self.options.schema_, str(e.get("stream") or "")
                )
        return entries

    def _run_discover(self) -> Any:
        with private_dir() as tmp:
            argv = [*self.argv, "--config", self._config_file(tmp), "--discover"]
            conn = Connector(argv, role="tap", where=self._where(), env=self.options.env)
            try:
                out = _read_all(conn, self.options.discover_timeout)
            except TimeoutError:
                conn.stop()
                raise conn.error(
                    conn.last_line(),
                    subject=f"tap {self.exe} --discover took longer than {self.options.discover_timeout:g} s",
                ) from None
            except BaseException:
                conn.stop()
                raise
            rc = conn.wait()
        if rc != 0:
            raise conn.exit_error(rc)
        try:
            return decode_line(out)
        except Exception:
            text = out[:200].decode("utf-8", errors="replace").strip()
            raise conn.error(
                repr(text), subject=f"tap {self.exe} --discover did not print a JSON catalog"
            ) from None

    def discover(self) -> list[StreamSpec]:
        if self._specs is None:
            self._entries = self._load_catalog()
            self._specs = [_catalog.entry_spec(e, self.options.select_fields) for e in self._entries]
        return list(self._specs)

    def describe_read(self, stream: StreamSpec) -> dict[str, Any]:
        """What a read runs (for ``dcapix run --dry-run``)."""
        return {
            "command": [
                *self.argv,
                "--config",
                "CONFIG",
                self.options.catalog_flag,
                "CATALOG",
                "[--state STATE]",
            ],
            "tap_stream_id": stream.name,
            "replication_method": stream.replication_method,
            "replication_key": stream.replication_key,
        }

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        if self._entries is None:
            self.discover()
        assert self._entries is not None
        if not any(_catalog.stream_id(e) == stream.name for e in self._entries):
            raise self.error(f"the tap's catalog has no stream {stream.name!r}", stream=stream.name)
        tap_state: Any = None
        stored_replays = None
        if state:
            if "singer_state" in state:
                tap_state = state.get("singer_state")
                stored_replays = state.get("replays")
            else:  # a Singer state written by hand or by another runner
                tap_state = dict(state)
        replays = None
        if self.options.dedupe_replays and stream.replication_key:
            names = [stream.name, str(stream.options.get("stream") or stream.name)]
            replays = Replays(names, stream.replication_key, stream.key_properties, stored_replays)
        cat = _catalog.read_catalog(
            self._entries, stream, columns=columns, legacy=self.options.catalog_flag == "--properties"
        )
        with private_dir() as tmp:
            argv = [
                *self.argv,
                "--config",
                self._config_file(tmp),
                self.options.catalog_flag,
                write_private_json(tmp, "catalog.json", cat),
            ]
            if tap_state:
                argv += ["--state", write_private_json(tmp, "state.json", tap_state)]
            conn = Connector(
                argv, role="tap", where=self._where(stream.name), env=self.options.env, stream=stream.name
            )

            def check_exit() -> None:
                rc = conn.wait()
                if rc != 0:
                    raise conn.exit_error(rc)

            reader = StreamReader(
                stream,
                batch_size=self.options.batch_size,
                replays=replays,
                error=conn.error,
                limit=limit,
                tap=self.exe,
                on_end=check_exit,
                schema_override=(
                    (
                        lambda sch: _catalog.apply_schema(
                            stream.name, sch, self.options.schema_, stream.options.get("stream", "")
                        )
                    )
                    if self.options.schema_
                    else None
                ),
            )
            finished = False
            try:
                yield from reader.batches(conn.stdout)
                if reader.limited:
                    conn.stop()
                finished = True
            finally:
                if not finished:
                    conn.stop()  # an error, or the consumer stopped early: the tap goes too
        if reader.other_records:
            log.info(
                "%s: tap %s also sent records of other streams (ignored): %s",
                stream.name,
                self.exe,
                dict(reader.other_records),
            )
        if replays is not None and replays.dropped:
            log.info(
                "%s: dropped %d rows the tap sent again (delivered before)", stream.name, replays.dropped
            )

    # ================================================================================ destination
    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        super().start_write(stream, load_method=load_method)
        opts = self.options
        overwrite = load_method == "overwrite" or (load_method is None and opts.load_method == "overwrite")
        native = load_method == "overwrite" and opts.activate_version  # ACTIVATE_VERSION replaces
        if load_method not in (None, "append") and not opts.load_method_setting and not native:
            raise self.error(
                f"load_method {load_method!r} needs load_method_setting (the target config key "
                "that takes it); without one the target's config decides",
                stream=stream.name,
            )
        if self._target is not None and load_method != self._target_load_method:
            self._commit(end=True)  # a target run has one load method
        version = int(time.time() * 1000) if overwrite and opts.activate_version else None
        self._writing[stream.name] = (stream, load_method)
        if version is None:
            self._versions.pop(stream.name, None)
        else:
            self._versions[stream.name] = version
        self._encoders[stream.name] = RecordEncoder(
            stream.name, stream.schema, where=f"{self._where(stream.name)} ({self.exe})", version=version
        )
        target = self._ensure_target(load_method)
        if stream.name not in target.schemas:
            target.send_schema(stream.name, stream.schema, stream.key_properties, stream.replication_key)
            self._dirty = True
        if version is not None:  # a new table version: the target replaces the stream at the end
            target.send_activate_version(stream.name, version)

    def _ensure_target(self, load_method: str | None) -> TargetProcess:
        if self._target is not None:
            return self._target
        extra = {}
        if load_method is not None and self.options.load_method_setting:
            extra[self.options.load_method_setting] = SDK_LOAD_METHODS[load_method]
        stack = contextlib.ExitStack()
        tmp = stack.enter_context(private_dir())
        try:
            argv = [*self.argv, "--config", self._config_file(tmp, extra)]
            self._target = TargetProcess(argv, where=self._where(), env=self.options.env)
        except BaseException:
            stack.close()
            raise
        self._target_dir = stack
        self._target_load_method = load_method
        return self._target

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        if stream.name not in self._writing:
            raise self.error("write() before start_write()", stream=stream.name)
        n = len(batch)
        if n:
            spec, load_method = self._writing[stream.name]
            target = self._ensure_target(load_method)
            if stream.name not in target.schemas:
                target.send_schema(stream.name, spec.schema, spec.key_properties, spec.replication_key)
            target.send(self._encoders[stream.name].encode(batch.records))
            self._dirty = True
        if batch.bookmark is not None:
            self._bookmarks[stream.name] = batch.bookmark
        return WriteResult(rows=n, committed=False)

    def flush(self, stream: StreamSpec | None = None) -> None:
        """Commit everything sent so far (the target's STATE output or its exit; module doc)."""
        if self._dirty:
            self._commit(end=self.options.commit == "exit")

    def finish_write(self, stream: StreamSpec) -> None:
        version = self._versions.pop(stream.name, None)
        if version is not None and self._target is not None:
            self._target.send_activate_version(stream.name, version)  # older versions go now
            self._dirty = True
        if self._dirty or self._target is not None:
            self._commit(end=True)
        self._writing.pop(stream.name, None)

    def _commit(self, *, end: bool) -> None:
        target = self._target
        if target is None:
            self._dirty = False
            return
        self._checkpoint += 1
        n = self._checkpoint
        target.send_state({"bookmarks": dict(self._bookmarks), CHECKPOINT_KEY: n})
        if not end:
            if target.wait_echo(n, self.options.commit_timeout):
                self._dirty = False
                return
            log.info(
                "target %s did not print checkpoint %d within %g s: ending its input to commit",
                target.name,
                n,
                self.options.commit_timeout,
            )
        self._target = None
        try:
            target.finish(n)
        finally:
            self._close_target_dir()
        self._dirty = False

    def _close_target_dir(self) -> None:
        if self._target_dir is not None:
            self._target_dir.close()
            self._target_dir = None

    # ================================================================================== lifecycle
    def close(self) -> None:
        target, self._target = self._target, None
        if target is not None:
            if self._dirty:  # not committed: the target must not commit it either
                target.kill()
            else:
                try:
                    target.finish(None)
                except AdapterError as exc:
                    log.warning("%s", redact(str(exc)))
        self._close_target_dir()
        super().close()


def _read_json_option(path: str, option: str) -> Any:
    """The JSON content of the file an option names (one-line error naming the option)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"adapter 'singer': option {option!r}: cannot read {path!r}: {exc}", plugin="singer", field=option
        ) from None


def _read_all(conn: Connector, timeout: float) -> bytes:
    """All of a connector's stdout, within ``timeout`` seconds (``TimeoutError`` after)."""
    import threading

    chunks: list[bytes] = []

    def pump() -> None:
        for chunk in iter(lambda: conn.stdout.read(1 << 16), b""):
            chunks.append(chunk)

    t = threading.Thread(target=pump, name=f"dcapix-singer-{conn.name}-discover", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError
    return b"".join(chunks)
