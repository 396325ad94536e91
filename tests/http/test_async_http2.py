"""HTTP/2 against a real HTTP/2 server: Hypercorn (h2) on 127.0.0.1 over TLS with a throwaway
certificate authority made by the test (trustme); the protocol is negotiated by ALPN and asserted
on every response."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from dc_api_x import ApiClient, AsyncApiClient
from dc_api_x.exceptions import ConfigError
from tests.support.asgiserver import HypercornServer

ROWS = [{"id": i, "name": f"row-{i}"} for i in range(95)]
BIG = bytes(range(256)) * 8192  # 2 MiB, streamed in 64 KiB chunks


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/proto``: the protocol and client port the server saw; ``/items``: offset pages;
    ``/big``: a 2 MiB body sent in pieces."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    query = dict(part.split("=", 1) for part in scope["query_string"].decode().split("&") if "=" in part)
    headers = [(b"content-type", b"application/json")]
    if path == "/proto":
        body = orjson.dumps({"http_version": scope["http_version"], "client_port": scope["client"][1]})
    elif path == "/items":
        off, lim = int(query.get("offset", 0)), int(query.get("limit", 10))
        body = orjson.dumps({"records": ROWS[off : off + lim], "total": len(ROWS)})
    elif path == "/big":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x/bin")]})
        for i in range(0, len(BIG), 100_000):
            await send({"type": "http.response.body", "body": BIG[i : i + 100_000], "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    else:
        await send({"type": "http.response.start", "status": 404, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"error":"not found"}'})
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def h2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HypercornServer, str]]:
    trustme = pytest.importorskip("trustme", reason="trustme (a dev dependency) makes the test CA")
    pytest.importorskip("hypercorn", reason="hypercorn (a dev dependency) is the HTTP/2 server")
    pytest.importorskip("h2", reason="h2 comes with the http2 extra: pip install 'dc-api-x[http2]'")
    d: Path = tmp_path_factory.mktemp("h2")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(d / "server.pem"))
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    with HypercornServer(app, certfile=str(d / "server.pem"), keyfile=str(d / "server.pem")) as srv:
        yield srv, str(d / "ca.pem")


def test_async_client_negotiates_http2(h2_server: tuple[HypercornServer, str], plugins) -> None:
    srv, ca = h2_server

    async def main() -> list[Any]:
        async with AsyncApiClient(srv.url, http2=True, verify=ca, hooks=[]) as api:
            responses = await asyncio.gather(*(api.get("/proto") for _ in range(12)))
        return responses

    responses = asyncio.run(main())
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert {r.data["http_version"] for r in responses} == {"2"}  # what the server saw
    # twelve concurrent requests were multiplexed over one TCP connection (one client port)
    assert len({r.data["client_port"] for r in responses}) == 1


def test_without_http2_the_same_server_answers_http11(h2_server: tuple[HypercornServer, str], plugins):
    srv, ca = h2_server

    async def main() -> Any:
        async with AsyncApiClient(srv.url, verify=ca, hooks=[]) as api:
            return await api.get("/proto")

    r = asyncio.run(main())
    assert r.http_version == "HTTP/1.1"
    assert r.data["http_version"] == "1.1"


def test_http2_pagination_and_streaming(h2_server: tuple[HypercornServer, str], plugins) -> None:
    srv, ca = h2_server

    async def main() -> tuple[list[Any], list[str | None], bytes, str]:
        async with AsyncApiClient(srv.url, http2=True, verify=ca, hooks=[]) as api:
            pages = [
                p
                async for p in api.pages(
                    "/items",
                    paginator={"type": "offset", "limit": 20, "total_path": "total"},
                    records_path="records",
                )
            ]
            chunks = []
            async with api.stream("GET", "/big", chunk_size=65536) as r:
                version = r.http_version
                async for chunk in r:
                    chunks.append(chunk)
                    assert len(chunk) <= 65536
        return (
            [rec for p in pages for rec in p.records],
            [p.response.http_version for p in pages],
            b"".join(chunks),
            version,
        )

    records, versions, body, version = asyncio.run(main())
    assert records == ROWS
    assert versions == ["HTTP/2"] * 5
    assert body == BIG
    assert version == "HTTP/2"


def test_sync_client_http2_too(h2_server: tuple[HypercornServer, str], plugins) -> None:
    srv, ca = h2_server
    with ApiClient(srv.url, http2=True, verify=ca, hooks=[]) as api:
        r = api.get("/proto")
    assert r.http_version == "HTTP/2"
    assert r.data["http_version"] == "2"


def test_untrusted_certificate_is_one_clear_error(h2_server: tuple[HypercornServer, str], plugins) -> None:
    from dc_api_x.exceptions import TransportError

    srv, _ca = h2_server

    async def main() -> None:
        async with AsyncApiClient(srv.url, http2=True, hooks=[], retries=1) as api:
            await api.get("/proto")

    shown = r"GET https://127\.0\.0\.1:\d+/proto: ConnectError: .*CERTIFICATE"
    with pytest.raises(TransportError, match=shown):
        asyncio.run(main())


def test_http2_option_is_validated() -> None:
    with pytest.raises(ConfigError, match="http2"):
        AsyncApiClient("http://127.0.0.1:1", http2="sometimes")
