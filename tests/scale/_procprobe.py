"""What a worker process of ``--worker-pool processes`` finds at its start (run in a forkserver
child by tests/scale/test_processes_start.py; a module of its own, so that unpickling the target
in the child imports nothing else of the tests)."""

from __future__ import annotations

import gc
import os
import sys
from typing import Any


def probe(conn: Any, arrow_pool: str | None) -> None:
    """Send back what the forkserver preloaded, then what :func:`_worker_setup` set."""
    from dc_api_x.adapters._http import HttpAdapter
    from dc_api_x.runner.executors import _warm, processes

    found: dict[str, Any] = {
        "modules": {
            m: m in sys.modules
            for m in ("httpcore", "msgspec", "pyarrow._compute", "importlib.metadata", "fsspec")
        },
        "http_options_built": bool(HttpAdapter.Options.__pydantic_complete__),
        # entry points may start threads or open resources: loaded by each worker, after its fork
        "plugins_loaded": sys.modules["dc_api_x.plugins"]._current is not None,
        "env": _warm.ENV in os.environ,
    }
    processes._worker_setup(arrow_pool)
    import pyarrow as pa

    found["arrow_pool"] = pa.default_memory_pool().backend_name
    found["gc_threshold"] = gc.get_threshold()[0]
    found["frozen"] = gc.get_freeze_count()
    conn.send(found)
    conn.close()
