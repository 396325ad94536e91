"""Auth providers against the real local HTTP server."""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import pytest

from dc_api_x import ApiClient, AuthError, ConfigError, UnknownPluginError, create_adapter, create_plugin
from dc_api_x.logs import redact

SECRET = "s3cr3t-Value-9f8e7d"


def echo(req) -> tuple[int, dict[str, str], Any]:
    return (
        200,
        {},
        {
            "authorization": req.headers.get("authorization"),
            "x-api-key": req.headers.get("x-api-key"),
            "query": req.query,
        },
    )


def test_bearer(server):
    server.route("GET", "/me", echo)
    with ApiClient(server.url, auth={"type": "bearer", "token": SECRET}, hooks=[]) as api:
        assert api.get("/me").data["authorization"] == f"Bearer {SECRET}"


def test_api_key_header_and_query(server):
    server.route("GET", "/me", echo)
    with ApiClient(
        server.url,
        hooks=[],
        auth={"type": "api_key", "key": SECRET, "name": "X-API-Key", "location": "header"},
    ) as api:
        data = api.get("/me").data
        assert data["x-api-key"] == SECRET and "api_key" not in data["query"]
    with ApiClient(
        server.url, hooks=[], auth={"type": "api_key", "key": SECRET, "name": "api_key", "location": "query"}
    ) as api:
        resp = api.get("/me", params={"q": "1"})
        assert resp.data["query"] == {"api_key": [SECRET], "q": ["1"]}
        assert resp.data["x-api-key"] is None
        assert SECRET not in resp.url and "api_key=***" in resp.url  # the Response URL is redacted


def test_basic(server):
    server.route("GET", "/me", echo)
    auth = {"type": "basic", "username": "ann", "password": SECRET}
    with ApiClient(server.url, hooks=[], auth=auth) as api:
        header = api.get("/me").data["authorization"]
    assert header == "Basic " + base64.b64encode(f"ann:{SECRET}".encode()).decode()


def test_adapter_level_auth_option(server):
    server.route("GET", "/me", echo)
    with create_adapter(
        {"adapter": "http", "base_url": server.url, "auth": {"type": "bearer", "token": SECRET}}
    ) as api:
        assert api.request("GET", "/me").data["authorization"] == f"Bearer {SECRET}"
        # per-request override and opt-out
        assert api.request("GET", "/me", auth=None).data["authorization"] is None
        other = api.request("GET", "/me", auth={"type": "basic", "username": "u", "password": "pw12"})
        assert other.data["authorization"].startswith("Basic ")


class TokenServer:
    """An OAuth2 token endpoint plus an API that accepts only the latest token."""

    def __init__(self, server, *, expires_in: float | None = 3600) -> None:
        self.server = server
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.forms: list[dict[str, list[str]]] = []
        self.lock = threading.Lock()
        server.route("POST", "/oauth/token", self.token)
        server.route("GET", "/api", self.api)

    def token(self, req):
        form = parse_qs(req.body.decode())
        with self.lock:
            self.forms.append(form)
            if form.get("client_secret") != [SECRET] or form.get("grant_type") != ["client_credentials"]:
                return 401, {}, {"error": "invalid_client", "error_description": "bad credentials"}
            tok = f"tok-{len(self.issued) + 1}-abcdef"
            self.issued.append(tok)
        body: dict[str, Any] = {"access_token": tok, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return 200, {}, body

    def api(self, req):
        with self.lock:
            current = self.issued[-1] if self.issued else None
        if current is None or req.headers.get("authorization") != f"Bearer {current}":
            return 401, {}, {"error": "unauthorized"}
        return 200, {}, {"ok": True, "token": current}


def oauth_cfg(server, **kw: Any) -> dict[str, Any]:
    return {
        "type": "oauth2_client_credentials",
        "token_url": f"{server.url}/oauth/token",
        "client_id": "my-client",
        "client_secret": SECRET,
        "scopes": ["read", "write"],
        **kw,
    }


def test_oauth2_client_credentials_fetches_once_and_reuses(server):
    ts = TokenServer(server)
    with ApiClient(server.url, hooks=[], auth=oauth_cfg(server)) as api:
        for _ in range(3):
            assert api.get("/api").data == {"ok": True, "token": "tok-1-abcdef"}
        assert api.auth.fetch_count == 1
    assert ts.forms[0]["scope"] == ["read write"] and ts.forms[0]["client_id"] == ["my-client"]


def test_oauth2_refreshes_before_expiry(server):
    ts = TokenServer(server, expires_in=2.0)
    with ApiClient(server.url, hooks=[], auth=oauth_cfg(server, refresh_margin=0.7)) as api:
        assert api.get("/api").data["token"] == "tok-1-abcdef"
        assert api.get("/api").data["token"] == "tok-1-abcdef"  # still 2 s - 0.7 s margin left
        time.sleep(1.4)
        # now inside the margin: a new token is fetched BEFORE the request (no 401 round-trip)
        assert api.get("/api").data["token"] == "tok-2-abcdef"
    api_statuses = [r for r in server.requests if r.path == "/api"]
    assert len(api_statuses) == 3 and len(ts.issued) == 2


def test_oauth2_short_lived_tokens_are_reused_not_fetched_per_request(server):
    """expires_in (3 s) below the default refresh_margin (60 s): the margin shrinks to half the
    lifetime, so the token endpoint is hit at most once per 1.5 s of run time, not per request."""
    ts = TokenServer(server, expires_in=3)
    provider = create_plugin("auth_providers", oauth_cfg(server))  # default refresh_margin: 60 s
    errors: list[BaseException] = []
    api_calls = [0]
    with ApiClient(server.url, hooks=[], auth=provider) as api:
        started = time.monotonic()
        deadline = started + 3.5

        def work() -> None:
            try:
                while time.monotonic() < deadline:
                    assert api.get("/api").status_code == 200
                    with ts.lock:
                        api_calls[0] += 1
                    time.sleep(0.02)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    provider.close()
    assert not errors
    assert api_calls[0] >= 40  # many requests ...
    fetches = len(ts.issued)
    assert fetches == provider.fetch_count
    assert fetches <= 1 + elapsed / 1.5, (fetches, elapsed)  # ... few tokens
    assert fetches >= 2  # and the token was refreshed before it expired (3.5 s > 3 s lifetime)


def test_oauth2_margin_is_capped_at_half_the_lifetime(plugins):
    provider = create_plugin(
        "auth_providers",
        {
            "type": "oauth2_client_credentials",
            "token_url": "http://127.0.0.1:9/t",
            "client_id": "c",
            "client_secret": SECRET,
            "refresh_margin": 60,
        },
    )
    assert provider.margin_for(3600) == 60
    assert provider.margin_for(3) == 1.5
    assert provider.margin_for(0) == 0


def test_oauth2_concurrent_401s_share_one_refresh(server):
    """Every thread holds a token the server revoked: their 401s cause one token fetch."""
    ts = TokenServer(server, expires_in=None)
    provider = create_plugin("auth_providers", oauth_cfg(server))
    with ApiClient(server.url, hooks=[], auth=provider) as api:
        assert api.get("/api").data["token"] == "tok-1-abcdef"
        with ts.lock:
            ts.issued.append("rotated-elsewhere")  # every request with tok-1 now gets a 401
        barrier = threading.Barrier(6)
        results: list[Any] = []

        def work() -> None:
            barrier.wait()
            results.append(api.get("/api").status_code)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    provider.close()
    assert results == [200] * 6
    assert provider.fetch_count == 2  # the first token and ONE refresh


def test_oauth2_asyncio_tasks_share_one_token_fetch(server):
    """httpx.AsyncClient with the adapter's auth bridge: 20 concurrent tasks, one token request."""
    import asyncio

    import httpx

    from dc_api_x.adapters._http_client import AuthBridge

    ts = TokenServer(server, expires_in=3)
    provider = create_plugin("auth_providers", oauth_cfg(server))

    async def main() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, auth=AuthBridge(provider)) as client:
            answers = await asyncio.gather(*(client.get("/api") for _ in range(20)))
        return [a.status_code for a in answers]

    assert asyncio.run(main()) == [200] * 20
    provider.close()
    assert provider.fetch_count == 1 and len(ts.issued) == 1


def test_oauth2_refreshes_after_401(server):
    ts = TokenServer(server, expires_in=None)
    with ApiClient(server.url, hooks=[], auth=oauth_cfg(server)) as api:
        assert api.get("/api").data["token"] == "tok-1-abcdef"
        with ts.lock:
            ts.issued.append("rotated-elsewhere")  # the server revoked our token
        resp = api.get("/api")
        assert resp.status_code == 200 and resp.data["token"] == "tok-3-abcdef"
    assert api.auth.fetch_count == 2


def test_oauth2_thread_safe_single_fetch(server):
    TokenServer(server)
    provider = create_plugin("auth_providers", oauth_cfg(server))
    with ApiClient(server.url, hooks=[], auth=provider) as api:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(5):
                    assert api.get("/api").status_code == 200
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert provider.fetch_count == 1
    provider.close()


def test_oauth2_threads_share_one_refresh_after_401(server):
    ts = TokenServer(server, expires_in=None)
    issue = server.routes[("POST", "/oauth/token")]

    def slow_token(req):  # every thread gets its 401 while the new token is being fetched
        time.sleep(0.3)
        return issue(req)

    server.route("POST", "/oauth/token", slow_token)
    provider = create_plugin("auth_providers", oauth_cfg(server))
    with ApiClient(server.url, hooks=[], auth=provider) as api:
        assert api.get("/api").data["token"] == "tok-1-abcdef"
        with ts.lock:
            ts.issued.append("rotated-elsewhere")  # the server revoked our token
        barrier = threading.Barrier(8)
        got: list[Any] = []

        def work() -> None:
            barrier.wait()
            got.append(api.get("/api").data)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # eight 401 answers to the same token: one refresh, every thread retried with the new token
    assert [d["token"] for d in got] == ["tok-3-abcdef"] * 8
    assert provider.fetch_count == 2
    provider.close()


def test_oauth2_refused_error_names_url_not_secret(server, caplog):
    TokenServer(server)
    caplog.set_level(logging.DEBUG, logger="dc_api_x")
    auth = oauth_cfg(server, client_secret="wrong-" + SECRET)
    with ApiClient(server.url, auth=auth) as api, pytest.raises(AuthError) as ei:
        api.get("/api")
    msg = str(ei.value)
    assert "/oauth/token" in msg and "401" in msg and "invalid_client" in msg
    assert SECRET not in msg and "wrong-" not in msg
    assert SECRET not in caplog.text


def test_secrets_not_in_repr_logs_or_errors(server, caplog):
    caplog.set_level(logging.DEBUG, logger="dc_api_x")
    server.route("GET", "/fail", lambda req: (500, {}, {"error": "boom"}))
    for cfg in (
        {"type": "bearer", "token": SECRET},
        {"type": "api_key", "key": SECRET, "name": "k", "location": "query"},
        {"type": "basic", "username": "ann", "password": SECRET},
        oauth_cfg(server),
    ):
        provider = create_plugin("auth_providers", cfg)
        assert SECRET not in repr(provider) and SECRET not in str(provider.options)
        assert SECRET not in repr(provider.options.model_dump())
        assert redact(f"x {SECRET} y") == "x *** y"  # registered with the redaction filter
    # a query key under a name that does not look secret is still masked in URLs and errors
    with ApiClient(
        server.url,
        auth={"type": "api_key", "key": SECRET, "name": "k", "location": "query"},
        adapter_options={"retries": {"max_attempts": 2, "backoff_factor": 0.01}},
    ) as api:
        with pytest.raises(Exception) as ei:
            api.get("/fail")
        assert SECRET not in str(ei.value) and "/fail" in str(ei.value)
    assert SECRET not in caplog.text
    assert "/fail" in caplog.text  # the logging hook and retry warnings did log the request


def test_unknown_auth_name_lists_known(plugins):
    with pytest.raises(UnknownPluginError) as ei:
        ApiClient("http://127.0.0.1:9", auth={"type": "bearerr", "token": "x"})
    for name in ("api_key", "basic", "bearer", "oauth2_client_credentials"):
        assert name in str(ei.value)


def test_invalid_auth_option_names_field(plugins):
    with pytest.raises(ConfigError, match="location"):
        create_plugin("auth_providers", {"type": "api_key", "key": "abcd", "location": "cookie"})
    with pytest.raises(ConfigError, match="token"):
        create_plugin("auth_providers", {"type": "bearer"})
    with pytest.raises(ConfigError, match="token_url"):
        create_plugin(
            "auth_providers", {"type": "oauth2_client_credentials", "client_id": "a", "client_secret": "b"}
        )


def test_httpx_own_request_log_is_redacted(server, caplog):
    server.route("GET", "/me", echo)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the application turned httpx's log on
    auth = {"type": "api_key", "key": SECRET, "name": "code", "location": "query"}
    with ApiClient(server.url, auth=auth, hooks=[]) as api:
        assert api.get("/me").data["query"] == {"code": [SECRET]}
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("HTTP Request: GET" in line for line in httpx_lines)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "api_key", "key": SECRET, "name": "X-API-Key", "location": "header"},
        {"type": "bearer", "token": SECRET, "header": "X-Token", "scheme": ""},
        {"type": "bearer", "token": SECRET},
    ],
    ids=["api-key-header", "bearer-custom-header", "bearer"],
)
def test_credentials_do_not_follow_a_redirect_to_another_origin(server, auth) -> None:
    """httpx drops only ``Authorization`` on a cross-origin redirect; an API key header went along
    (found by the reliability suite, case C9)."""
    port = server.url.rsplit(":", 1)[1]
    server.route("GET", "/me", lambda req: (200, {}, {k.lower(): v for k, v in req.headers.items()}))
    server.route("GET", "/away", lambda req: (302, {"location": f"http://localhost:{port}/me"}, {}))
    server.route("GET", "/here", lambda req: (302, {"location": "/me"}, {}))
    with ApiClient(server.url, hooks=[], auth=auth) as api:
        away = api.get("/away").data
        assert away["host"].startswith("localhost:")  # it did go to the other origin
        assert "authorization" not in away and "x-api-key" not in away and "x-token" not in away
        assert SECRET not in str(away)
        here = api.get("/here").data  # the same origin keeps them
        assert SECRET in str(here)


def test_a_redirect_loop_is_one_error_not_retried(server) -> None:
    hits = []

    def loop(req: Any) -> tuple[int, dict[str, str], Any]:
        hits.append(1)
        return 302, {"location": "/loop"}, {}

    server.route("GET", "/loop", loop)
    with ApiClient(server.url, hooks=[]) as api, pytest.raises(Exception, match="more than 20 redirects"):
        api.get("/loop")
    assert len(hits) == 21
