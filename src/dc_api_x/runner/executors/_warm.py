"""Imported last by the forkserver of ``--worker-pool processes`` (:mod:`.processes`), with the
runner and the run's two adapter modules imported before it: builds once there the pydantic
validators of the two adapters' ``Options`` models, which every worker forked from it would build
again at its start (they are built on first use, ``defer_build``; the ``http`` adapter's costs
~0.05 CPU-s per worker). The classes are named by :data:`ENV` (``module:QualName`` pairs) in the
forkserver's environment, which it then removes. Only pydantic runs here: the plugin set (entry
points, which may start threads or open resources) is loaded by each worker, after its fork.

It also makes the forkserver's own end quick: ``dcapix run`` stops it at exit and waits for it
(so the workers' CPU time is counted in the run's), and a normal interpreter exit would first tear
down every module it preloaded (pyarrow, httpx, the runner: 0.3-0.5 s of wall time on a loaded
2-core machine, added to every run). The forkserver holds nothing to flush or commit: its last
exit handler ends the process at once (:func:`os._exit`).

Anything that goes wrong here only means the workers build the validators themselves: the
forkserver must start whatever an adapter does."""

from __future__ import annotations

import atexit
import os
import sys

#: the environment variable naming the adapter classes (``module:QualName``, space-separated).
ENV = "DC_API_X_WORKER_WARM"


def warm(refs: str) -> None:
    """Build the ``Options`` validators of the (already imported) classes in ``refs``."""
    from pydantic import BaseModel

    for ref in refs.split():
        module, _, qualname = ref.partition(":")
        obj: object = sys.modules.get(module)
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        options = getattr(obj, "Options", None)
        if isinstance(options, type) and issubclass(options, BaseModel) and not options.__pydantic_complete__:
            options.model_rebuild()


def _exit_now() -> None:
    """The forkserver's last exit handler (registered last, run first): end without the interpreter's
    teardown."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # pragma: no cover - a closed stream
            pass
    os._exit(0)


_refs = os.environ.pop(ENV, None)
if _refs is not None:  # the forkserver (its environment names the adapters); not an import elsewhere
    try:
        warm(_refs)
    except Exception:  # pragma: no cover - a worker builds it itself (and reports what is wrong)
        pass
    atexit.register(_exit_now)
