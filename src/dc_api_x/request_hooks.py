"""Built-in plugin: the request hooks ``logging``, ``metrics`` (both enabled by default) and ``logfire``.

* ``logging`` logs ``METHOD redacted-URL -> status (elapsed)`` at DEBUG on the ``dc_api_x.http``
  logger (``level`` option), and failures at WARNING.
* ``metrics`` counts requests, responses by status class, bytes received, errors and the retries
  the adapter made before an answer or an error (``retries``, ``retries_by_reason``: ``429``,
  ``5xx``, ``transport``, ``truncated_body``, ``invalid_json``, …), and sums the elapsed time;
  read them with ``hook.snapshot()`` (or ``client.metrics()``). Requests a caching hook marked
  (``request.extensions["cache"]``) are counted as ``cache_hits`` / ``cache_misses``.
* ``logfire`` makes each request a logfire span ``dcapix {method} {path}`` with ``adapter``,
  ``method``, ``path`` and ``url`` (redacted), ``status_code``, ``bytes`` and ``elapsed_ms``; a
  failure is recorded on the span. Clients use it by default while the logfire integration is on
  (:func:`dc_api_x.logs.enable_logfire`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from .ext.hooks import HookOptions, RequestHook, RequestInfo
from .logs import logfire_enabled, logfire_span, redact

if TYPE_CHECKING:  # pragma: no cover
    from .ext.adapters import Response
    from .registry import Registry

__all__ = ["LogfireHook", "LoggingHook", "MetricsHook", "register_hooks"]


class LoggingOptions(HookOptions):
    logger: str = "dc_api_x.http"
    level: Literal["DEBUG", "INFO", "WARNING"] = "DEBUG"


class LoggingHook(RequestHook):
    """Logs each request: method, redacted URL, status and elapsed time."""

    name = "logging"
    Options = LoggingOptions
    enabled_by_default = True

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.log = logging.getLogger(self.options.logger)
        self.level = getattr(logging, self.options.level)

    def after_response(self, request: RequestInfo, response: Response) -> None:
        if self.log.isEnabledFor(self.level):
            self.log.log(
                self.level,
                "%s %s -> %s (%.1f ms, %d bytes)",
                request.method,
                response.url or request.display_url,
                response.status_code,
                request.elapsed * 1000,
                len(response.content),
            )

    def on_error(self, request: RequestInfo, error: BaseException) -> None:
        self.log.warning(
            "%s %s failed after %.1f ms: %s",
            request.method,
            request.display_url,
            request.elapsed * 1000,
            redact(error),
        )


class MetricsHook(RequestHook):
    """Counts requests, responses (by status class), bytes received and errors (thread-safe)."""

    name = "metrics"
    enabled_by_default = True

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Set every counter back to zero."""
        self.requests = 0
        self.responses = 0
        self.errors = 0
        self.bytes_received = 0
        self.elapsed = 0.0
        self.status: dict[str, int] = {}
        self.cache_hits = 0
        self.cache_misses = 0
        self.retries = 0
        self.retries_by_reason: dict[str, int] = {}

    def _count_retries(self, reasons: Any) -> None:
        """Add the retries an adapter reported (a sequence of reasons; call with the lock held)."""
        if not reasons or isinstance(reasons, (str, bytes)):
            return
        for reason in reasons:
            self.retries += 1
            self.retries_by_reason[str(reason)] = self.retries_by_reason.get(str(reason), 0) + 1

    def before_request(self, request: RequestInfo) -> None:
        with self._lock:
            self.requests += 1

    def after_response(self, request: RequestInfo, response: Response) -> None:
        klass = f"{response.status_code // 100}xx"
        cache = request.extensions.get("cache")
        with self._lock:
            if cache == "hit":
                self.cache_hits += 1
            elif cache == "miss":
                self.cache_misses += 1
            self.responses += 1
            self.bytes_received += len(response.content)
            self.elapsed += request.elapsed
            self.status[klass] = self.status.get(klass, 0) + 1
            if response.status_code >= 400:
                self.errors += 1
            ext = getattr(response.raw, "extensions", None)
            if isinstance(ext, Mapping):
                self._count_retries(ext.get("dcapix_retries"))

    def on_error(self, request: RequestInfo, error: BaseException) -> None:
        with self._lock:
            if request.extensions.get("cache") == "miss":
                self.cache_misses += 1
            self.errors += 1
            self.elapsed += request.elapsed
            self._count_retries(getattr(error, "retries", None))

    def snapshot(self) -> dict[str, Any]:
        """The counters as a dict."""
        with self._lock:
            return {
                "requests": self.requests,
                "responses": self.responses,
                "errors": self.errors,
                "bytes_received": self.bytes_received,
                "elapsed": self.elapsed,
                "status": dict(self.status),
                "cache_hits": self.cache_hits,
                "cache_misses": self.cache_misses,
                "retries": self.retries,
                "retries_by_reason": dict(self.retries_by_reason),
            }


class LogfireHook(RequestHook):
    """Each request as a logfire span (used by default while the logfire integration is on)."""

    name = "logfire"

    @classmethod
    def use_by_default(cls) -> bool:
        return logfire_enabled()

    def before_request(self, request: RequestInfo) -> None:
        span = logfire_span(
            "dcapix {method} {path}", adapter=request.adapter, method=request.method, path=request.display_url
        )
        request.extensions["logfire"] = span.__enter__()

    def after_response(self, request: RequestInfo, response: Response) -> None:
        span = request.extensions.pop("logfire", None)
        if span is not None:
            span.set_attributes(
                {
                    "status_code": response.status_code,
                    "url": response.url,
                    "bytes": len(response.content),
                    "elapsed_ms": round(request.elapsed * 1000, 3),
                }
            )
            span.__exit__(None, None, None)

    def on_error(self, request: RequestInfo, error: BaseException) -> None:
        span = request.extensions.pop("logfire", None)
        if span is not None:
            span.__exit__(type(error), error, error.__traceback__)


def register_hooks(registry: Registry) -> None:
    """Register the built-in request hooks."""
    registry.register(LoggingHook.name, LoggingHook)
    registry.register(MetricsHook.name, MetricsHook)
    registry.register(LogfireHook.name, LogfireHook)
