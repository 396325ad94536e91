"""What ``dcapix run`` does to its own process before a run starts: the pipeline's adapters given a
head start (``open_ahead``), Arrow's allocator, and CPython's cyclic garbage collector tuned for the
rest of the process. Split out of :mod:`.cli` (the command's argument handling)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from ..ahead import whole_reads

__all__ = [
    "GC_GEN0_THRESHOLD",
    "arrow_system_allocator",
    "close_opened_ahead",
    "open_endpoints_ahead",
    "prepare_adapters",
    "relax_gc",
    "tune_gc",
]


#: Container allocations between two young-generation collections during a run (CPython: 700).
GC_GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """Make CPython's cyclic garbage collector cheaper for the rest of this (``dcapix run``) process.

    A run holds a batch of thousands of decoded records (every one a dict, often with nested
    dicts and lists) while the next pages are decoded: each young-generation collection (every
    700 container allocations by default) traverses records that all survive, and every full
    collection also traverses the start-up's objects (modules, plugins, pydantic models).
    Measured on W4 (2,000 JSON pages of 100 records, docs/benchmarks.md): decoding 2,000 pages
    while holding 100 of them cost 0.73-0.77 CPU-s, 0.50-0.55 with either change below, 0.41-0.43
    with the collector off. ``gc.freeze()`` moves what exists now to the permanent generation
    (never traversed again, never freed: start-up objects live until exit anyway); the young
    threshold goes to :data:`GC_GEN0_THRESHOLD` (reference cycles are still collected, after
    10,000 allocations instead of 700). Nothing read or written depends on it.
    """
    relax_gc()
    from ..cli import resume_gc

    resume_gc()  # (the console script kept it off while the run's modules loaded)


def relax_gc() -> None:
    """:func:`tune_gc`'s two changes, for a process whose collector is on (a worker process):
    what exists now to the permanent generation, the young threshold to :data:`GC_GEN0_THRESHOLD`."""
    import gc

    gc.freeze()
    t0, t1, t2 = gc.get_threshold()
    if t0:  # 0: the collector was turned off by the embedding program; left so
        gc.set_threshold(max(t0, GC_GEN0_THRESHOLD), t1, t2)


def arrow_system_allocator() -> None:
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


def prepare_adapters(pipe: Any) -> list[Any]:
    """Import the pipeline's two adapter classes now (the run would at its start), and let each start
    what it can ahead (``open_ahead(options, role=…)``: the SQL adapter opens a plain ``postgresql://`` URL's
    ADBC database handle in a thread, whose ~0.045 CPU-s and server round trips then overlap the
    imports that follow instead of preceding discovery). Returns the functions that close what
    nobody took. Their modules' objects are loaded before :func:`tune_gc` freezes the start-up's
    objects. An unknown adapter is left to the run, which words the error."""
    from ..plugins import get_plugins

    if getattr(pipe.source, "partitions", None) or getattr(pipe.source, "concurrency", None):
        whole_reads(False)  # (partitions: no read begun ahead, see open_endpoints_ahead)
    adapters = get_plugins().adapters
    done: list[Any] = []
    for role, endpoint in (("source", pipe.source), ("destination", pipe.destination)):
        try:
            cls = adapters.get(endpoint.adapter)
        except Exception:  # reported by the run (Runner: "unknown adapter …; valid: …")
            continue
        ahead = getattr(cls, "open_ahead", None)
        if ahead is not None:
            try:
                close = ahead(endpoint.adapter_config(), role=role)
            except Exception:  # only a head start: the run opens it itself and reports its errors
                close = None
            if close is not None and close not in done:
                done.append(close)
    return done


def open_endpoints_ahead(args: Any) -> list[Callable[[], Any]]:
    """Give an ad-hoc run's endpoints their head start before the run imports anything else: the raw
    options of the ``--source`` and ``--destination`` JSON files go to the head-start function their
    adapter was registered with (``Registry.ahead``, imported without the adapter class). The ``sql``
    adapter's (``adapters/sql/preopen.py:open_ahead``) opens a plain ``postgresql://`` URL's ADBC
    database handle and first connection in a thread now, instead of once the pipeline's models and
    the adapter classes are imported (:func:`prepare_adapters`, which finds them being opened). Those
    imports (pydantic, the adapter modules: ~0.25 G instructions on W2) then overlap the handles'
    server connections (a SCRAM exchange each) and type check, which otherwise ended just before
    discovery (or the destination's first statement) needed them, or after it on a busy machine
    (issue 15). Returns what closes a handle nobody took.

    Only files that need nothing of the run's loading: JSON, no ``${VAR}`` reference; anything
    unreadable or unusual is left to the run, which reads the file again and words its errors. A
    handle opened here that the run does not take (another backend, an error) is closed at its end,
    as one :func:`prepare_adapters` opened is.

    A run that will not read its source's streams whole in this process (``--limit``, partitions:
    ``--partitions``, ``--workers``, ``--executor dask``) tells the head starts to begin no read
    (:func:`dc_api_x.ahead.whole_reads`, which the SQL adapter's asks): only the handle is opened
    ahead."""
    whole_reads(_whole_reads(args))  # (this run's arguments, not a former in-process run's)
    if (
        not getattr(args, "source", None)
        or not getattr(args, "destination", None)
        or getattr(args, "pipeline", None)
        or getattr(args, "config", None)
        or getattr(args, "dry_run", False)
        or getattr(args, "via_singer", False)
    ):
        return []
    closers: list[Callable[[], Any]] = []
    for role, path in (("source", args.source), ("destination", args.destination)):
        close = _file_ahead(path, role)
        if close is not None and close not in closers:
            closers.append(close)
    return closers


def _whole_reads(args: Any) -> bool:
    """Whether ``dcapix run``'s arguments let it read each stream whole in this process."""
    return not (
        getattr(args, "limit", None) is not None
        or getattr(args, "partitions", None)
        or getattr(args, "workers", None)
        or getattr(args, "executor", "local") not in (None, "local")
    )


def _file_ahead(path: Any, role: str) -> Callable[[], Any] | None:
    """The head start of the endpoint file ``path`` (:func:`open_endpoints_ahead`), or ``None``."""
    if not isinstance(path, str) or not path.lower().endswith(".json"):
        return None
    try:
        import json

        with open(path, "rb") as fh:
            data = json.loads(fh.read())
        if not isinstance(data, dict) or "${" in json.dumps(data):
            return None
        from ..plugins import get_plugins

        # the adapter's head-start function (registry.ahead: the SQL adapter's opens a plain
        # postgresql:// URL's handle), imported without the adapter class
        name = data.get("adapter")
        ahead = get_plugins().adapters.ahead(name) if isinstance(name, str) else None
        if ahead is None:
            return None
        arrow_system_allocator()  # (as the run would before anything imports pyarrow)
        close: Callable[[], Any] | None = ahead({k: v for k, v in data.items() if k != "adapter"}, role=role)
    except Exception:  # only a head start: the run reads the file itself and reports its errors
        return None
    return close


def close_opened_ahead(closers: list[Callable[[], Any]]) -> None:
    """Close what the adapters started ahead and no instance took (the end of the run)."""
    for close in closers:
        try:
            close()
        except Exception:  # pragma: no cover - an adapter's clean-up of what it started ahead
            pass
