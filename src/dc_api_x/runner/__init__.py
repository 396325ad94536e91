"""The runner: ``dcapix run`` pipelines.

* :mod:`.config` — the pipeline file (YAML/TOML/JSON) as pydantic models;
* :mod:`.pipeline` — the in-process runner (Arrow batches from ``read()`` to ``write()``, a reader
  thread with a bounded queue, checkpoints that store state only after the destination flushed);
* :mod:`.process` — process mode (``tap | target`` with a pipe);
* :mod:`.state` — the state store (SQLite by default, PostgreSQL optional);
* :mod:`.progress` — live display, log lines, summary and JSON metrics;
* :mod:`.locks` — the run lock of a pipeline (owner pid/host, heartbeat, stale-lock takeover);
* :mod:`.history` — the run history (``dcapix runs``);
* :mod:`.schedule`, :mod:`.scheduler`, :mod:`.meltano_schedules` — ``dcapix schedule`` (schedules and
  their bookkeeping, the loop, a Meltano project's schedules);
* :mod:`.report` — ``dcapix report``, a self-contained HTML page of the history.

Nothing heavy is imported here; the names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "PipelineConfig",
    "ProjectConfig",
    "RunMetrics",
    "RunOptions",
    "Runner",
    "StateStore",
    "load_config",
    "open_state_store",
    "run_pipeline",
    "run_via_singer",
]

_WHERE = {
    "PipelineConfig": "config",
    "ProjectConfig": "config",
    "load_config": "config",
    "RunMetrics": "progress",
    "RunOptions": "pipeline",
    "Runner": "pipeline",
    "run_pipeline": "pipeline",
    "run_via_singer": "process",
    "StateStore": "state",
    "open_state_store": "state",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
