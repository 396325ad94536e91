"""The standard adapter test suite of dc-api-x (``dc_api_x.testing``) run on the ``redis`` adapter:
a Redis stream (incremental by entry id: the pagination contract resumes from every batch's
bookmark) and hashes (written back to another database of the same server)."""

from __future__ import annotations

from typing import Any

import pytest

testing = pytest.importorskip(
    "dc_api_x.testing", reason="!!! dc_api_x.testing (the standard adapter suite) is not in this dc-api-x"
)

import dc_api_x_redis  # noqa: E402

SECRET = "s3cret-pw-not-logged"
ERROR_CONFIG = {"url": f"redis://:{SECRET}@127.0.0.1:1/0", "socket_timeout": 2, "streams": ["x"]}

TestRedisStreamAdapter = testing.get_adapter_test_class(
    "redis",
    None,
    plugins=[dc_api_x_redis],
    stream="events",
    expected_records=25,
    error_config=ERROR_CONFIG,
    secret=SECRET,
)

TestRedisHashAdapter = testing.get_adapter_test_class(
    "redis",
    None,
    plugins=[dc_api_x_redis],
    stream="users",
    expected_records=30,
    error_config=ERROR_CONFIG,
    secret=SECRET,
)


@pytest.fixture
def adapter_config(request: Any, redis_server: Any, redis_url: str) -> dict[str, Any]:
    """Seeds the server (a stream of 25 entries, 30 hashes) and returns the read config."""
    c = redis_server.client()
    c.flushall()
    for i in range(25):
        c.xadd("events", {"n": str(i), "label": f"event {i}"})
    for i in range(30):
        c.hset(f"user:{i:02d}", mapping={"id": str(i), "name": f"user {i}", "score": f"{i}.5"})
    c.close()
    common = {"url": redis_url, "batch_size": 4}
    if request.cls is TestRedisStreamAdapter:
        schema = {"n": {"type": "integer"}, "label": {"type": "string"}}
        return {
            **common,
            "type": "stream",
            "streams": [{"name": "events", "type": "stream", "schema": schema}],
        }
    schema = {"id": {"type": "integer"}, "name": {"type": "string"}, "score": {"type": "number"}}
    return {
        **common,
        "streams": [{"name": "users", "pattern": "user:*", "primary_keys": ["id"], "schema": schema}],
    }


@pytest.fixture
def write_config(request: Any, redis_server: Any, adapter_config: dict[str, Any]) -> dict[str, Any]:
    """Stream entries go to a new stream of the same database (with their entry ids); hashes keep
    their keys, so they go to database 1."""
    if request.cls is TestRedisStreamAdapter:
        return adapter_config
    redis_server.client(db=1).flushdb()
    return {"url": redis_server.url(db=1), "batch_size": 4}
