"""Named crash points for the reliability suite (``tests/reliability``).

``DCAPIX_CRASH_POINT=NAME:N`` makes the process kill itself with ``SIGKILL`` the N-th time it reaches
``crash_point("NAME")`` (``NAME`` alone means the first time). Without the variable a crash point is
one function call and one comparison: the variable is read once, on the first call, never at import.

Points (where the code calls :func:`crash_point`):

==================================  =====================================================================
``runner.batch_written``            ``dcapix run``: a batch was handed to ``dest.write`` (not flushed)
``runner.after_flush_before_state`` ``dcapix run``: ``dest.flush`` returned, the state is not stored yet
``state.write``                     the SQLite state store: rows inserted, transaction not committed
``files.chunk_written``             a file destination: a chunk went into a part file still under its
                                    temporary name
``files.before_rename``             a file destination: a part file is complete and fsynced, not renamed
``target.before_state``             ``target-dcapix``: data flushed, the STATE line not printed yet
==================================  =====================================================================
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV", "crash_point"]

ENV = "DCAPIX_CRASH_POINT"

_loaded = False
_spec: tuple[str, int] | None = None  # (point name, hit that kills)
_hits = 0


def _load() -> tuple[str, int] | None:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    name, _, n = raw.partition(":")
    try:
        count = int(n) if n else 1
    except ValueError:
        count = 1
    return name, max(count, 1)


def crash_point(name: str) -> None:
    """``SIGKILL`` this process when ``DCAPIX_CRASH_POINT`` names this point and its hit count is due."""
    global _loaded, _spec, _hits
    if not _loaded:
        _spec, _loaded = _load(), True
    spec = _spec
    if spec is None or spec[0] != name:
        return
    _hits += 1
    if _hits >= spec[1]:
        os.kill(os.getpid(), signal.SIGKILL)
