"""Test helpers around the current plugin set."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["no_current_plugin_set"]


@contextlib.contextmanager
def no_current_plugin_set() -> Iterator[None]:
    """No current plugin set inside the block (a fresh one is built on demand); the one a test made
    current is closed at exit."""
    from dc_api_x import plugins

    with plugins._lock:
        plugins._current = None
    try:
        yield
    finally:
        with plugins._lock:
            current, plugins._current = plugins._current, None
        if current is not None:
            current.close()
