"""A small writing adapter for the target tests, registered with ``enable_plugins(plugins=[module])``.

``probe`` writes each stream to ``<path>/<stream>.jsonl`` (JSON forms, via orjson) and appends every
call it receives to ``<path>/calls.jsonl``. Rows written by ``write()`` stay in memory until
``flush()`` appends them (fsync), so "committed" means "flushed" exactly as the adapter contract says;
``overwrite`` collects into ``<stream>.jsonl.staging`` and replaces the file at ``finish_write``.
``fail_on_write`` makes the N-th ``write()`` call raise, to test that no STATE follows uncommitted rows.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import orjson

from dc_api_x.exceptions import AdapterError
from dc_api_x.ext.adapters import AdapterOptions, ProtocolAdapter
from dc_api_x.types import Batch, StreamSpec, WriteResult


class ProbeOptions(AdapterOptions):
    path: str
    fail_on_write: int | None = None
    token: str | None = None


class ProbeAdapter(ProtocolAdapter):
    name: ClassVar[str] = "probe"
    Options = ProbeOptions
    load_methods: ClassVar[tuple[str, ...]] = ("append", "upsert", "overwrite")
    secret_options: ClassVar[tuple[str, ...]] = ("token",)

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        os.makedirs(self.options.path, exist_ok=True)
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._methods: dict[str, str] = {}
        self._writes = 0

    def _log(self, **entry: Any) -> None:
        with open(os.path.join(self.options.path, "calls.jsonl"), "ab") as f:
            f.write(orjson.dumps(entry) + b"\n")

    def _file(self, stream: str) -> str:
        suffix = ".staging" if self._methods.get(stream) == "overwrite" else ""
        return os.path.join(self.options.path, f"{stream}.jsonl{suffix}")

    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        super().start_write(stream, load_method=load_method)
        self._methods[stream.name] = load_method or "append"
        self._pending.setdefault(stream.name, [])
        self._log(
            call="start_write",
            stream=stream.name,
            load_method=load_method,
            columns=list(stream.properties),
            keys=list(stream.key_properties),
            replication_key=stream.replication_key,
        )

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        self._writes += 1
        if self.options.fail_on_write == self._writes:
            raise self.error(f"injected failure on write {self._writes}", stream=stream.name)
        table = batch.to_arrow()  # the batch-wise conversion a real adapter does (types enforced)
        rows = batch.records if batch.has_records else table.to_pylist()
        self._pending[stream.name].extend(rows)
        self._log(call="write", stream=stream.name, rows=len(batch))
        return WriteResult(rows=len(batch), committed=False)

    def flush(self, stream: StreamSpec | None = None) -> None:
        names = [stream.name] if stream is not None else list(self._pending)
        for name in names:
            rows = self._pending.get(name) or []
            if not rows:
                continue
            with open(self._file(name), "ab") as f:
                for r in rows:
                    f.write(orjson.dumps(r, default=str) + b"\n")
                f.flush()
                os.fsync(f.fileno())
            self._log(call="flush", stream=name, rows=len(rows))
            self._pending[name] = []

    def finish_write(self, stream: StreamSpec) -> None:
        self.flush(stream)
        if self._methods.get(stream.name) == "overwrite":
            staging = self._file(stream.name)
            if not os.path.exists(staging):
                open(staging, "wb").close()
            os.replace(staging, staging[: -len(".staging")])
        self._log(call="finish_write", stream=stream.name)

    def close(self) -> None:
        if not self._closed:
            self._log(call="close")
        super().close()


def register_adapters(registry: Any) -> None:
    registry.register("probe", ProbeAdapter)


__all__ = ["ProbeAdapter", "register_adapters"]

_ = AdapterError
