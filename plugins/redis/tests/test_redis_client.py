"""``ApiClient`` over the ``redis`` adapter's request side (the guide's "Integration with ApiClient")."""

from __future__ import annotations

from typing import Any

import pytest

from dc_api_x import ApiClient, NotSupportedError


def test_apiclient_verbs_on_keys(redis_url: str, plugins: Any, rclient: Any) -> None:
    with ApiClient(
        url=redis_url, adapter="redis", adapter_options={"socket_timeout": 5}, plugins=plugins
    ) as api:
        assert api.adapter.config.url == redis_url
        assert api.put("user:1", json={"name": "Ada", "age": 36, "tags": ["x"]}).status_code == 200
        assert rclient.hgetall("user:1") == {b"name": b"Ada", b"age": b"36", b"tags": b'["x"]'}
        r = api.get("user:1")
        assert r.status_code == 200 and r.headers["x-redis-type"] == "hash"
        assert r.data == {"name": "Ada", "age": "36", "tags": '["x"]'}
        assert api.put("greeting", content="héllo", params={"ttl": 60}).ok
        assert api.get("greeting").content == "héllo".encode() and 0 < rclient.ttl("greeting") <= 60
        api.put("doc", json=[1, {"a": None}])
        assert api.get("doc").data == [1, {"a": None}]
        rclient.rpush("queue", "a", "b")
        rclient.xadd("events", {"k": "v"}, id="1-1")
        assert api.get("queue").data == ["a", "b"]
        assert api.get("events").data == [{"id": "1-1", "fields": {"k": "v"}}]
        assert api.head("user:1").status_code == 200
        assert sorted(api.get("", params={"match": "user:*"}).data) == ["user:1"]
        assert api.delete("user:1").status_code == 204
        missing = api.get("user:1")
        assert missing.status_code == 404 and not missing.ok and api.delete("user:1").status_code == 404
        snap = api.hook("metrics").snapshot()
        assert snap["requests"] == snap["responses"] == 13 and snap["status"] == {"2xx": 11, "4xx": 2}
        with pytest.raises(NotSupportedError, match="PATCH"):
            api.patch("user:1", json={})
