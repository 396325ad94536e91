"""The request side of the ``redis`` adapter: ``ApiClient`` verbs on keys.

``ApiClient(url="redis://127.0.0.1:6379/0", adapter="redis")`` then:

============================  ==============================================================  ========
request                       Redis                                                           status
============================  ==============================================================  ========
``get("user:1")``             by the key's type: a string's bytes as they are; a hash as a     200, 404
                              JSON object, a list/set/sorted set as a JSON array, a stream
                              as ``[{"id", "fields"}]``
``put("user:1", json={…})``   an object becomes a hash (``DEL`` + ``HSET`` in ``MULTI``),      200
                              anything else a JSON string (``SET``); ``content=``/``data=``
                              bytes or text are stored as they are; ``params={"ttl": 60}``
``post(...)``                 as ``put``                                                       200
``delete("user:1")``          ``DEL``                                                          204, 404
``head("user:1")``            ``EXISTS``                                                       200, 404
``get("", params={"match":    ``SCAN``: the matching keys as a JSON array (``count`` caps it)  200
"user:*"})``
============================  ==============================================================  ========

Hash fields and string values come back as text (or base64 text when they are not UTF-8) — the
request side does not know a stream's schema; the ETL side types values. Request hooks (``logging``,
``metrics``) see these responses like HTTP ones.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from dc_api_x.ext.adapters import Response

from .forms import dumps

if TYPE_CHECKING:  # pragma: no cover
    from .adapter import RedisAdapter

__all__ = ["handle"]

_JSON = {"content-type": "application/json"}


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return base64.b64encode(value).decode()


def _json(status: int, data: Any, url: str, method: str) -> Response:
    return Response(status_code=status, headers=_JSON, content=orjson.dumps(data), url=url, method=method)


def _empty(status: int, url: str, method: str) -> Response:
    return Response(status_code=status, content=b"", url=url, method=method)


def handle(adapter: RedisAdapter, method: str, path: str, **kwargs: Any) -> Response:
    """One request on the key ``path`` (see the module doc)."""
    conn = adapter.conn
    client = conn.client
    method = method.upper()
    key = path.lstrip("/") if path.startswith("/") and not path.startswith("//") else path
    url = f"{conn.where.rstrip('/')}/{key}" if key else conn.where
    params: Mapping[str, Any] = kwargs.get("params") or {}
    with conn.errors():
        if method in ("GET", "HEAD") and not key:
            match = str(params.get("match", "*"))
            limit = int(params.get("count", 10_000))
            keys: list[str] = []
            for k in client.scan_iter(match=match, count=1000):
                keys.append(_text(k))
                if len(keys) >= limit:
                    break
            return _json(200, keys, url, method)
        if method == "HEAD":
            return _empty(200 if client.exists(key) else 404, url, method)
        if method == "GET":
            return _get(client, key, url)
        if method == "DELETE":
            return _empty(204 if client.delete(key) else 404, url, method)
        if method in ("PUT", "POST"):
            return _put(client, key, url, method, params, kwargs)
    raise adapter._unsupported(f"{method} requests (use GET, HEAD, PUT, POST or DELETE)")


def _get(client: Any, key: str, url: str) -> Response:
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind == "none":
        return _json(404, {"error": "no such key", "key": key}, url, "GET")
    if kind == "string":
        value = client.get(key) or b""
        headers = {"content-type": "application/octet-stream", "x-redis-type": "string"}
        return Response(status_code=200, headers=headers, content=value, url=url, method="GET")
    if kind == "hash":
        data: Any = {_text(f): _text(v) for f, v in client.hgetall(key).items()}
    elif kind == "list":
        data = [_text(v) for v in client.lrange(key, 0, -1)]
    elif kind == "set":
        data = sorted(_text(v) for v in client.smembers(key))
    elif kind == "zset":
        data = [[_text(m), s] for m, s in client.zrange(key, 0, -1, withscores=True)]
    elif kind == "stream":
        data = [
            {"id": _text(i), "fields": {_text(f): _text(v) for f, v in fields.items()}}
            for i, fields in client.xrange(key)
        ]
    else:  # pragma: no cover - module types
        return _json(415, {"error": f"unsupported Redis type {kind}", "key": key}, url, "GET")
    return Response(
        status_code=200,
        headers={**_JSON, "x-redis-type": kind},
        content=orjson.dumps(data),
        url=url,
        method="GET",
    )


def _put(
    client: Any, key: str, url: str, method: str, params: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> Response:
    ttl = params.get("ttl")
    ex = int(ttl) if ttl not in (None, "") else None
    body = kwargs.get("json")
    raw = kwargs.get("content", kwargs.get("data"))
    pipe = client.pipeline(transaction=True)
    if body is not None and isinstance(body, Mapping):
        mapping = {
            str(k): v if isinstance(v, (str, bytes)) else dumps(v) for k, v in body.items() if v is not None
        }
        pipe.delete(key)
        if mapping:
            pipe.hset(key, mapping=mapping)
        if ex:
            pipe.expire(key, ex)
    else:
        if body is not None:
            value: Any = dumps(body)
        elif raw is not None:
            value = raw.encode() if isinstance(raw, str) else bytes(raw)
        else:
            value = b""
        pipe.set(key, value, ex=ex)
    pipe.execute()
    return _json(200, {"key": key}, url, method)
