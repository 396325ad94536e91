"""A request hook that counts requests and responses."""

from __future__ import annotations

from typing import Any

from dc_api_x.ext.hooks import RequestHook


class TraceHook(RequestHook):
    name = "example_trace"

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.seen: list[str] = []

    def before_request(self, request: Any) -> None:
        self.seen.append(f"{request.method} {request.display_url}")
