"""The base class of request hooks (plugins registered by ``register_hooks``).

A :class:`RequestHook` observes every request an :class:`~dc_api_x.client.ApiClient` (or an
:class:`~dc_api_x.AsyncApiClient`, which calls the same methods on its event loop) sends:

* :meth:`RequestHook.before_request` receives the :class:`RequestInfo` (it may add headers or
  params: they are sent as edited; a cache may set :attr:`RequestInfo.response` to answer the
  request itself: the adapter is then not called);
* :meth:`RequestHook.after_response` receives the request and the
  :class:`~dc_api_x.ext.adapters.Response` (any status);
* :meth:`RequestHook.on_error` receives the request and the exception when the request failed
  (transport error, retries exhausted …); the exception is re-raised after the hooks ran.

Order: ``before_request`` runs in the client's hook order; ``after_response`` and ``on_error`` run
in the reverse order (like nested middleware). A hook that raises is logged and skipped: an
observer never breaks a request. Hooks with ``enabled_by_default = True`` are the ones a client
uses when it is given ``hooks=None`` (:meth:`RequestHook.use_by_default` may decide at client
creation instead: the built-in ``logfire`` hook joins while the logfire integration is on).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from ..config import OptionsModel, merge_options, validate_options
from ..logs import redact

if TYPE_CHECKING:  # pragma: no cover
    from .adapters import Response

__all__ = ["HookOptions", "RequestHook", "RequestInfo"]


@dataclass
class RequestInfo:
    """One request as hooks see it. ``url`` is what the caller passed (a path relative to the
    adapter's base URL or an absolute URL); :attr:`display_url` is its redacted form."""

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    #: The registered name of the adapter sending it.
    adapter: str = ""
    #: Free space for hooks to keep per-request data. A caching hook sets ``"cache"`` to ``"hit"``
    #: or ``"miss"`` (the ``metrics`` hook counts them).
    extensions: dict[str, Any] = field(default_factory=dict)
    #: The client's base URL (so that hooks can tell equal paths of two APIs apart).
    base_url: str = ""
    #: Set by a ``before_request`` hook to answer the request without sending it (a cache hit).
    response: Response | None = None

    @property
    def display_url(self) -> str:
        return redact(self.url)

    @property
    def elapsed(self) -> float:
        """Seconds since the request started."""
        return time.perf_counter() - self.started


class HookOptions(OptionsModel):
    """Base options of a request hook."""


class RequestHook:
    """Base class of request hooks: override any of the three methods (all default to no-ops)."""

    #: The registry name (``hooks: [NAME, …]``).
    name: ClassVar[str] = ""
    #: The pydantic model of this hook's options.
    Options: ClassVar[type[BaseModel]] = HookOptions
    #: Used by clients created with ``hooks=None``.
    enabled_by_default: ClassVar[bool] = False

    options: Any

    def __init__(self, options: Mapping[str, Any] | BaseModel | None = None, /, **kwargs: Any) -> None:
        merged = merge_options(options, kwargs)
        self.options = validate_options(self.Options, merged, plugin=f"hook {self.name!r}")

    @classmethod
    def use_by_default(cls) -> bool:
        """Whether a client created with ``hooks=None`` uses this hook (default:
        :attr:`enabled_by_default`)."""
        return cls.enabled_by_default

    def before_request(self, request: RequestInfo) -> None:
        """Called before the request is sent."""

    def after_response(self, request: RequestInfo, response: Response) -> None:
        """Called after a response arrived (whatever its status)."""

    def on_error(self, request: RequestInfo, error: BaseException) -> None:
        """Called when the request failed with ``error`` (re-raised afterwards)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
