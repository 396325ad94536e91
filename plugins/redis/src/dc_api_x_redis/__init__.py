"""
DCApiX plugin for Redis (dc-api-x-redis): caching and pub/sub.

This plugin provides:
- the ``redis`` protocol adapter, source and destination of ``ApiClient``, ``dcapix run`` and
  ``tap-dcapix | target-dcapix``:
  - keys read by ``SCAN MATCH`` pattern: hashes, strings and JSON documents; written as hashes,
    JSON documents or strings under a key template (``user:{id}``) with an optional TTL,
    pipelined in batches;
  - Redis streams read by ``XRANGE``, incrementally by entry id, and written by ``XADD``;
  - pub/sub as a bounded source (stop after N messages or T seconds) and as a sink (``PUBLISH``);
- the ``redis_cache`` request hook: an ApiClient's GET responses cached in Redis with a TTL (hits
  and misses counted by the ``metrics`` hook).

Requirements:
- dc-api-x>=0.2.0
- redis>=5.3 (redis-py; hiredis is used when installed)
- a Redis server >= 6.2 (SCAN ... TYPE, exclusive XRANGE bounds)

Environment variables:
- DC_API_X_REDIS_URL: Optional server URL used when the ``url`` option is not given
  (default: $REDIS_URL, else redis://127.0.0.1:6379/0)
- REDIS_URL: Optional fallback for DC_API_X_REDIS_URL
- DC_API_X_REDIS_TIMEOUT: Optional socket timeout in seconds (default: 30)
"""

from __future__ import annotations

import importlib.util

__all__ = ["DC_API_X_REQUIRES", "register_adapters", "register_hooks"]

#: The dc-api-x versions this plugin supports.
DC_API_X_REQUIRES = ">=0.2.0"


def _require_redis() -> None:
    """Fail registration (the plugin is listed as failed with this reason) without redis-py."""
    if importlib.util.find_spec("redis") is None:
        raise ModuleNotFoundError(
            "unavailable: redis-py is not installed (pip install 'redis>=5.3', or reinstall dc-api-x-redis)",
            name="redis",
        )


def register_adapters(registry):
    """
    Register the Redis protocol adapter.

    The adapter supports the following features:
    - hashes, JSON documents and strings found by SCAN pattern, written under a key template
    - Redis streams (XRANGE / XADD), incremental by entry id
    - pub/sub channels as a bounded source and as a sink
    - values typed by the stream's JSON Schema (see dc_api_x_redis.codec), pipelined writes
    """
    _require_redis()
    registry["redis"] = "dc_api_x_redis.adapter:RedisAdapter"  # imported on first use (redis-py: on connect)


def register_hooks(registry):
    """
    Register the ``redis_cache`` request hook.

    The hook supports the following features:
    - GET responses cached in Redis for ``ttl`` seconds, keyed by base URL, path, query and headers
    - hits answered without a network request; hits and misses counted by the ``metrics`` hook
    - ``Cache-Control: no-store`` / ``no-cache`` honoured
    """
    _require_redis()
    registry["redis_cache"] = "dc_api_x_redis.cache:RedisCacheHook"  # imported on first use
