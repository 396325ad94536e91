"""Retries, Retry-After, giving up, transport and decode errors, against the real local server."""

from __future__ import annotations

import datetime as dt
import socket
import time
from typing import Any

import httpx
import pytest

from dc_api_x import HTTPStatusError, ResponseDecodeError, TransportError, create_adapter
from dc_api_x.adapters._http import parse_retry_after


def adapter(server, **retries: Any):
    return create_adapter(
        {"adapter": "http", "base_url": server.url, "retries": {"backoff_factor": 0.01, **retries}}
    )


def flaky(statuses: list[int], headers: dict[str, str] | None = None):
    seq = list(statuses)

    def handler(req):
        status = seq.pop(0) if seq else 200
        if status == 200:
            return 200, {}, {"ok": True}
        return status, headers or {}, {"error": status}

    return handler


def test_503_then_200_is_retried(server):
    server.route("GET", "/f", flaky([503, 503]))
    with adapter(server) as api:
        resp = api.request("GET", "/f")
    assert resp.status_code == 200 and resp.data == {"ok": True}
    assert len(server.requests) == 3


def test_429_retry_after_is_honoured(server):
    server.route("GET", "/f", flaky([429], {"Retry-After": "0.4"}))
    with adapter(server) as api:
        t = time.perf_counter()
        assert api.request("GET", "/f").status_code == 200
        waited = time.perf_counter() - t
    assert waited >= 0.4
    assert len(server.requests) == 2


def test_retry_after_is_capped(server):
    server.route("GET", "/f", flaky([429], {"Retry-After": "30"}))
    with adapter(server, max_retry_after=0.2) as api:
        t = time.perf_counter()
        assert api.request("GET", "/f").status_code == 200
        waited = time.perf_counter() - t
    assert 0.2 <= waited < 5


def test_429_is_retried_for_post_but_503_is_not(server):
    server.route("POST", "/p", flaky([429, 503]))
    with adapter(server) as api:
        resp = api.request("POST", "/p", json={"a": 1})
    assert resp.status_code == 503  # 429 retried (not processed); a 5xx POST is not replayed
    assert len(server.requests) == 2


def test_gives_up_after_max_attempts_naming_redacted_url(server):
    server.route("GET", "/down", flaky([503] * 10))
    with adapter(server, max_attempts=3) as api, pytest.raises(HTTPStatusError) as ei:
        api.request("GET", "/down", params={"token": "hunter2-secret", "q": "x"})
    msg = str(ei.value)
    assert "/down" in msg and "503" in msg and "3 attempt" in msg
    assert "hunter2-secret" not in msg and "token=***" in msg
    assert ei.value.status_code == 503 and "hunter2" not in (ei.value.url or "")
    assert len(server.requests) == 3


def test_retries_as_an_int_is_max_attempts(server):
    server.route("GET", "/down", flaky([500] * 10))
    cfg = {"adapter": "http", "base_url": server.url, "retries": 1}
    with create_adapter(cfg) as api, pytest.raises(HTTPStatusError):
        api.request("GET", "/down")
    assert len(server.requests) == 1


def test_non_retryable_status_is_returned(server):
    server.route("GET", "/nf", lambda req: (404, {}, {"error": "nope"}))
    with adapter(server) as api:
        resp = api.request("GET", "/nf")
        assert resp.status_code == 404 and not resp.ok
        with pytest.raises(HTTPStatusError, match="404"):
            resp.raise_for_status()
        with pytest.raises(HTTPStatusError, match="/nf"):
            api.request("GET", "/nf", raise_for_status=True)
    assert len(server.requests) == 2


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def test_transport_error_after_retries_names_url_without_secret(plugins):
    url = f"http://user:pa55word-x@127.0.0.1:{_closed_port()}"
    cfg = {"adapter": "http", "base_url": url, "retries": {"max_attempts": 2, "backoff_factor": 0.01}}
    with create_adapter(cfg) as api, pytest.raises(TransportError) as ei:
        api.request("GET", "/x", params={"api_key": "k3y-value"})
    msg = str(ei.value)
    assert "127.0.0.1" in msg and "/x" in msg and "ConnectError" in msg and "attempt 2 of 2" in msg
    assert "pa55word-x" not in msg and "k3y-value" not in msg


def test_non_json_body_names_url_without_secrets(server):
    server.route("GET", "/html", lambda req: (200, {"content-type": "text/html"}, "<html>oops</html>"))
    with adapter(server) as api:
        resp = api.request("GET", "/html", params={"access_token": "t0ken-xyz"})
        assert resp.text == "<html>oops</html>"
        with pytest.raises(ResponseDecodeError) as ei:
            _ = resp.data
    msg = str(ei.value)
    assert "/html" in msg and "text/html" in msg and "t0ken-xyz" not in msg


def test_read_timeout_is_a_transport_error(server):
    def slow(req):
        time.sleep(0.5)
        return 200, {}, {}

    server.route("GET", "/slow", slow)
    cfg = {"adapter": "http", "base_url": server.url, "timeout": {"read": 0.1}, "retries": 1}
    with create_adapter(cfg) as api, pytest.raises(TransportError, match="Timeout"):
        api.request("GET", "/slow")


def test_parse_retry_after():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    when = dt.datetime.fromtimestamp(now + 42, tz=dt.timezone.utc)
    value = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 40 <= (parse_retry_after(value, now=now) or 0) <= 43
    past = dt.datetime.fromtimestamp(now - 100, tz=dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(past, now=now) == 0.0


def test_retry_after_http_date_is_honoured(server):
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)
    server.route("GET", "/f", flaky([503], {"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")}))
    with adapter(server, max_retry_after=0.3) as api:
        t = time.perf_counter()
        assert api.request("GET", "/f").status_code == 200
    assert 0.3 <= time.perf_counter() - t < 3


def test_backoff_grows_and_is_capped_unit():
    # unit test of one class with httpx.MockTransport: count attempts, record the sleeps
    from dc_api_x import enable_plugins

    enable_plugins(entry_points=False)
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(502)

    retries = {"max_attempts": 5, "backoff_factor": 1, "max_backoff": 3, "jitter": False}
    api = create_adapter({"adapter": "http", "base_url": "http://api.test", "retries": retries})
    api._client = httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(handle))
    slept: list[float] = []
    api.sleep = slept.append
    with pytest.raises(HTTPStatusError, match="502 after 5"):
        api.request("GET", "/x")
    assert slept == [1, 2, 3, 3] and len(calls) == 5
    api.close()
