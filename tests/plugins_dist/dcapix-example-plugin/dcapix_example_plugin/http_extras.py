"""A second plugin of the same distribution, under the entry-point name ``http``.

It is a class-instance plugin with an ``@hookimpl``-marked method (the other style besides plain
functions).
"""

from __future__ import annotations

from typing import Any

from dc_api_x import hookimpl


class _TracePlugin:
    @hookimpl
    def register_hooks(self, registry: Any) -> None:
        registry.register("example_trace", "dcapix_example_plugin.trace:TraceHook")


plugin = _TracePlugin()
