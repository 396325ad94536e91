"""The ``redis_cache`` request hook: an :class:`~dc_api_x.client.ApiClient` answers repeated GETs
from Redis.

``before_request`` looks the request up (method, the client's base URL, path, sorted query
parameters and the ``vary_headers``); a hit answers the request with the stored response (status,
headers, body, URL) without calling the adapter, a miss lets it go and ``after_response`` stores
the answer with ``SET … EX ttl`` when its status is cacheable. ``request.extensions["cache"]`` is
``"hit"`` or ``"miss"``: the built-in ``metrics`` hook counts them (``cache_hits``,
``cache_misses`` in ``client.hook("metrics").snapshot()``).

``Cache-Control: no-store`` in the request or the response keeps a response out of the cache; a
request's ``Cache-Control: no-cache`` skips the lookup (the fresh answer is stored). A Redis error
never breaks a request: it is logged once and the request is a miss.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

import orjson

from dc_api_x.ext.adapters import Response
from dc_api_x.ext.hooks import RequestHook, RequestInfo
from dc_api_x.logs import redact, redact_url

from .config import RedisCacheConfig

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = ["RedisCacheHook"]

log = logging.getLogger("dc_api_x_redis.cache")

_KEY = "redis_cache_key"


class RedisCacheHook(RequestHook):
    """Caches the responses of an ApiClient's GET requests in Redis for ``ttl`` seconds."""

    name = "redis_cache"
    Options = RedisCacheConfig

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.config: RedisCacheConfig = self.options
        self._client: Any = None
        self._warned = False

    @property
    def client(self) -> Any:
        """The redis-py client (created on first use)."""
        if self._client is None:
            from .connection import make_client

            self._client = make_client(self.config)
        return self._client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
            client.connection_pool.disconnect()

    # -- the key ----------------------------------------------------------------------------------
    def cache_key(self, request: RequestInfo) -> str | None:
        """The Redis key of ``request``, or ``None`` when it is not cacheable."""
        if request.method.upper() not in self.config.methods:
            return None
        headers = {k.lower(): str(v) for k, v in request.headers.items()}
        if "no-store" in headers.get("cache-control", "").lower():
            return None
        params = []
        for k, v in request.params.items():
            for item in v if isinstance(v, (list, tuple)) else [v]:
                params.append([str(k), "" if item is None else str(item)])
        doc = {
            "m": request.method.upper(),
            "b": getattr(request, "base_url", "") or "",
            "u": request.url,
            "p": sorted(params),
            "h": [[h, headers.get(h)] for h in self.config.vary_headers],
        }
        return self.config.prefix + hashlib.sha256(orjson.dumps(doc)).hexdigest()

    # -- the hook ---------------------------------------------------------------------------------
    def before_request(self, request: RequestInfo) -> None:
        key = self.cache_key(request)
        if key is None:
            return
        request.extensions[_KEY] = key
        request.extensions["cache"] = "miss"
        if "no-cache" in str(
            request.headers.get("Cache-Control") or request.headers.get("cache-control") or ""
        ):
            return
        try:
            raw = self.client.get(key)
        except Exception as exc:  # redis down: the request goes to the network
            self._warn(exc)
            request.extensions[_KEY] = None
            return
        if raw is None:
            return
        head, _, body = raw.partition(b"\n")
        try:
            meta = orjson.loads(head)
            cached = Response(
                status_code=int(meta["status"]),
                headers=meta.get("headers") or {},
                content=body,
                url=meta.get("url") or request.display_url,
                method=request.method.upper(),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return  # not an entry of ours: a miss (overwritten after the response)
        request.response = cached
        request.extensions["cache"] = "hit"

    def after_response(self, request: RequestInfo, response: Response) -> None:
        key = request.extensions.get(_KEY)
        if not key or request.extensions.get("cache") != "miss":
            return
        if response.status_code not in self.config.statuses:
            return
        if "no-store" in str(response.headers.get("cache-control", "")).lower():
            return
        if len(response.content) > self.config.max_body_bytes:
            return
        head = orjson.dumps(
            {"status": response.status_code, "headers": dict(response.headers.items()), "url": response.url}
        )
        try:
            self.client.set(key, head + b"\n" + response.content, ex=self.config.ttl)
        except Exception as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        where = redact_url(self.config.url)
        if not self._warned:
            self._warned = True
            log.warning(
                "redis_cache: %s: %s: %s (requests go to the network)", where, type(exc).__name__, redact(exc)
            )
        else:
            log.debug("redis_cache: %s: %s", where, redact(exc))
