"""``httpx``, imported without its command-line client: the one place the HTTP adapter's modules
import it from (``from ._httpx import httpx``).

``import httpx`` imports ``httpx._main`` (its ``httpx`` command: click, rich and pygments) whenever
those are installed — they are here, for ``dcapix`` itself — which costs every HTTP run 60-80 ms of
CPU before its first request. While httpx is imported the first time, ``httpx._main`` is a small
stand-in whose ``main`` imports the real command on use; it is removed from ``sys.modules`` right
after, so ``import httpx._main`` (or the ``httpx`` command) loads the real module as before.
Nothing changes when httpx was imported already.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__all__ = ["httpx"]


def _import_httpx() -> types.ModuleType:
    if "httpx" in sys.modules:
        return sys.modules["httpx"]
    stub = types.ModuleType("httpx._main", "stand-in while httpx is imported (dc_api_x.adapters._httpx)")

    def main(*args: Any, **kwargs: Any) -> Any:
        from httpx._main import main as real  # the real command line client

        return real(*args, **kwargs)

    stub.main = main  # type: ignore[attr-defined]
    placed = sys.modules.setdefault("httpx._main", stub) is stub
    try:
        import httpx
    finally:
        if placed and sys.modules.get("httpx._main") is stub:
            del sys.modules["httpx._main"]
    return httpx


if TYPE_CHECKING:  # pragma: no cover
    import httpx
else:
    httpx = _import_httpx()
