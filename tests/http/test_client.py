"""ApiClient over the real local server: verbs, hooks, pagination, configuration errors."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import dc_api_x
from dc_api_x import ApiClient, ConfigError, TransportError, UnknownPluginError
from dc_api_x.ext.hooks import RequestHook, RequestInfo
from dc_api_x.request_hooks import MetricsHook
from tests.http.conftest import cursor_route, make_rows


def echo(req) -> tuple[int, dict[str, str], Any]:
    return (
        200,
        {"x-method": req.method},
        {
            "method": req.method,
            "query": req.query,
            "json": req.json() if req.body else None,
            "trace": req.headers.get("x-trace"),
        },
    )


@pytest.mark.parametrize("verb", ["get", "post", "put", "patch", "delete"])
def test_verbs(server, verb):
    server.route("*", "/thing", echo)
    with ApiClient(server.url, hooks=[]) as api:
        kw = {"json": {"n": 1}} if verb in ("post", "put", "patch") else {}
        resp = getattr(api, verb)("/thing", params={"a": "b"}, **kw)
    assert resp.status_code == 200 and resp.ok
    assert resp.data["method"] == verb.upper() and resp.data["query"] == {"a": ["b"]}
    assert resp.data["json"] == kw.get("json")
    assert resp.method == verb.upper() and resp.headers["x-method"] == verb.upper()
    assert server.requests[0].method == verb.upper()


def test_request_and_head(server):
    server.route("*", "/thing", echo)
    with ApiClient(server.url, hooks=[]) as api:
        assert api.request("patch", "/thing", json=[1]).data == {
            "method": "PATCH",
            "query": {},
            "json": [1],
            "trace": None,
        }
        head = api.head("/thing")
        assert head.status_code == 200 and head.content == b""


class Recorder(RequestHook):
    name = "recorder"

    def __init__(self, label: str, log: list[str]) -> None:
        super().__init__()
        self.label = label
        self.events = log

    def before_request(self, request: RequestInfo) -> None:
        self.events.append(f"before:{self.label}")
        request.headers["X-Trace"] = request.headers.get("X-Trace", "") + self.label

    def after_response(self, request: RequestInfo, response) -> None:
        self.events.append(f"after:{self.label}:{response.status_code}")

    def on_error(self, request: RequestInfo, error: BaseException) -> None:
        self.events.append(f"error:{self.label}:{type(error).__name__}")


class Broken(RequestHook):
    name = "broken"

    def before_request(self, request: RequestInfo) -> None:
        raise RuntimeError("observer bug")


def test_hooks_order_and_edits(server):
    server.route("GET", "/x", echo)
    events: list[str] = []
    with ApiClient(server.url, hooks=[Recorder("a", events), Broken(), Recorder("b", events)]) as api:
        resp = api.get("/x")
    assert events == ["before:a", "before:b", "after:b:200", "after:a:200"]
    assert resp.data["trace"] == "ab"  # headers edited by before_request are sent


def test_on_error_hooks_then_reraise(plugins):
    events: list[str] = []
    with (
        ApiClient(
            "http://127.0.0.1:9",
            hooks=[Recorder("a", events), Recorder("b", events)],
            adapter_options={"retries": 1, "timeout": 2},
        ) as api,
        pytest.raises(TransportError),
    ):
        api.get("/x")
    assert events == ["before:a", "before:b", "error:b:TransportError", "error:a:TransportError"]


def test_default_hooks_log_and_count(server, caplog):
    server.route("GET", "/x", lambda req: (200, {}, {"ok": True}))
    server.route("GET", "/err", lambda req: (404, {}, {"error": "no"}))
    caplog.set_level(logging.DEBUG, logger="dc_api_x")
    with ApiClient(server.url) as api:
        assert sorted(h.name for h in api.hooks) == ["logging", "metrics"]
        api.get("/x", params={"password": "pw-hidden-123"})
        api.get("/err")
        metrics = api.hook("metrics")
        assert isinstance(metrics, MetricsHook)
        snap = metrics.snapshot()
    assert snap["requests"] == 2 and snap["responses"] == 2 and snap["errors"] == 1
    assert snap["status"] == {"2xx": 1, "4xx": 1} and snap["bytes_received"] > 0
    lines = [r.getMessage() for r in caplog.records if r.name == "dc_api_x.http"]
    assert any(line.startswith("GET ") and "/x?password=***" in line and "-> 200" in line for line in lines)
    assert any("/err" in line and "-> 404" in line for line in lines)
    assert "pw-hidden-123" not in caplog.text


def test_hooks_by_name_and_unknown_name(server):
    with ApiClient(server.url, hooks=["metrics", {"type": "logging", "level": "INFO"}]) as api:
        assert [h.name for h in api.hooks] == ["metrics", "logging"]
    with pytest.raises(UnknownPluginError, match="known: logfire, logging, metrics"):
        ApiClient(server.url, hooks=["nope"])
    with pytest.raises(ConfigError, match="level"):
        ApiClient(server.url, hooks=[{"type": "logging", "level": "LOUD"}])


def test_paginate_uses_adapter_default_pagination(server):
    server.route("GET", "/c", cursor_route(make_rows(21), size=5))
    with ApiClient(
        server.url,
        hooks=[],
        adapter_options={"pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"}},
    ) as api:
        got = list(api.paginate("/c", records_path="records"))
    assert [r["id"] for r in got] == list(range(21))
    assert len(server.requests) == 5


def test_paginate_calls_hooks_per_page(server):
    server.route("GET", "/c", cursor_route(make_rows(12), size=5))
    with ApiClient(server.url, hooks=["metrics"]) as api:
        n = sum(1 for _ in api.paginate("/c", records_path="records", paginator={"type": "cursor"}))
        assert n == 12 and api.hook("metrics").snapshot()["requests"] == 3


def test_paginate_raises_on_error_status(server):
    server.route("GET", "/gone", lambda req: (410, {}, {"error": "gone"}))
    with ApiClient(server.url, hooks=[]) as api, pytest.raises(dc_api_x.HTTPStatusError, match="410"):
        list(api.paginate("/gone"))


def test_configuration_errors(plugins):
    with pytest.raises(ConfigError, match="'timeoutt'"):
        ApiClient("http://127.0.0.1:1", adapter_options={"timeoutt": 3})
    with pytest.raises(ConfigError, match="token"):
        ApiClient("http://127.0.0.1:1", auth="bearer")
    with pytest.raises(UnknownPluginError, match="unknown adapter 'htp'"):
        ApiClient("http://127.0.0.1:1", adapter="htp")


def test_client_with_provider_instance_and_lazy_export(server):
    server.route("GET", "/me", lambda req: (200, {}, {"auth": req.headers.get("authorization")}))
    provider = dc_api_x.create_plugin("auth_providers", {"type": "bearer", "token": "abc-123-token"})
    assert dc_api_x.ApiClient is ApiClient
    api = ApiClient(server.url, auth=provider, hooks=[])
    with api:
        assert api.get("/me").data == {"auth": "Bearer abc-123-token"}
    assert "abc-123-token" not in repr(api)
    with pytest.raises(dc_api_x.AdapterError, match="closed"):
        api.get("/me")


def test_example_demo_runs():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "api_client_demo.py"
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "cursor pagination: 250 records" in res.stdout and "offset pagination: 250 records" in res.stdout


def test_client_stream_uses_client_auth(server):
    def blob(req):
        return 200, {}, (req.headers.get("authorization") or "-").encode() * 1000

    server.route("GET", "/blob", blob)
    api = ApiClient(server.url, hooks=[], auth={"type": "bearer", "token": "tk-0001"})
    with api, api.stream("GET", "/blob", chunk_size=1000) as resp:
        body = b"".join(resp)
    assert body == b"Bearer tk-0001" * 1000
