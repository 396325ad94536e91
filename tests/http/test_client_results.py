"""``ApiClient`` over adapters whose ``request()`` returns plain data (the plugin guide's adapters
return dicts): one result type (``Response``), hooks and ``paginate()`` work on it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from dc_api_x import ApiClient, HTTPStatusError, enable_plugins
from dc_api_x.ext.adapters import ProtocolAdapter, Response

ITEMS = [{"id": i} for i in range(1, 8)]


class DictPages(ProtocolAdapter):
    """Serves ``ITEMS`` by cursor as dicts, offset pages as lists, and records every call."""

    def __init__(self, connection_string: str) -> None:
        self.connection_string = connection_string
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        params = dict(kwargs.get("params") or {})
        self.calls.append((method, path, params))
        if path == "/cursor":
            start = int(params.get("cursor") or 0)
            page = ITEMS[start : start + 3]
            nxt = start + 3 if start + 3 < len(ITEMS) else None
            return {"success": True, "data": {"items": page}, "next": nxt}
        if path == "/offset":
            off, limit = int(params.get("offset", 0)), int(params.get("limit", 100))
            return ITEMS[off : off + limit]  # a bare list
        if path == "/nothing":
            return None
        return Response(status_code=404, url=path, method=method, content=b'{"error": "no"}')


@pytest.fixture
def api() -> Iterator[ApiClient]:
    mod = type(
        "P",
        (),
        {"register_adapters": staticmethod(lambda registry: registry.__setitem__("dicts", DictPages))},
    )
    ps = enable_plugins(entry_points=False, plugins=[mod()])
    with ApiClient(url="dict://pages", adapter="dicts") as client:
        yield client
    ps.close()


def test_data_results_come_back_as_responses(api: ApiClient) -> None:
    res = api.get("/cursor")
    assert isinstance(res, Response) and (res.status_code, res.ok) == (200, True)
    assert res.data == {"success": True, "data": {"items": ITEMS[:3]}, "next": 3}
    assert res.json() is res.data and res.raise_for_status() is res
    assert (res.method, res.url, res.content, res.headers) == ("GET", "/cursor", b"", {})
    assert api.get("/offset", params={"limit": 2}).data == ITEMS[:2]
    assert api.post("/nothing").data is None
    missing = api.get("/other")  # an adapter's own Response passes through unchanged
    assert missing.status_code == 404 and missing.data == {"error": "no"}
    with pytest.raises(HTTPStatusError, match="HTTP 404"):
        missing.raise_for_status()


def test_builtin_hooks_handle_data_results(api: ApiClient, caplog: pytest.LogCaptureFixture) -> None:
    api.hook("logging").level = logging.INFO
    with caplog.at_level(logging.INFO, logger="dc_api_x.http"):
        api.get("/cursor", params={"token": "abcd1234secret"})
        api.get("/other")
    snap = api.hook("metrics").snapshot()
    assert (snap["requests"], snap["responses"], snap["errors"]) == (2, 2, 1)
    assert snap["status"] == {"2xx": 1, "4xx": 1} and snap["bytes_received"] == len(b'{"error": "no"}')
    lines = [r.getMessage() for r in caplog.records if r.name == "dc_api_x.http"]
    assert (
        len(lines) == 2
        and lines[0].startswith("GET /cursor -> 200 (")
        and lines[1].startswith("GET /other -> 404")
    )


def test_paginate_applies_records_path_and_paginator_to_the_data(api: ApiClient) -> None:
    got = list(
        api.paginate(
            "/cursor", paginator={"type": "cursor", "cursor_path": "next"}, records_path="data.items"
        )
    )
    assert got == ITEMS
    assert [c[2].get("cursor") for c in api.adapter.calls] == [None, 3, 6]
    api.adapter.calls.clear()
    got = list(api.paginate("/offset", paginator={"type": "offset", "limit": 3}))
    assert got == ITEMS
    assert [c[2]["offset"] for c in api.adapter.calls] == [0, 3, 6]


def test_paginate_stops_at_an_error_status_from_an_adapter_response(api: ApiClient) -> None:
    with pytest.raises(HTTPStatusError, match="GET /other: HTTP 404"):
        list(api.paginate("/other"))
