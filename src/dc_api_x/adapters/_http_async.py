"""The async request side of the ``http`` adapter (``httpx.AsyncClient``), used by
:class:`~dc_api_x.AsyncApiClient`.

An :class:`AsyncHttpSession` is made by :meth:`HttpAdapter.async_session
<dc_api_x.adapters._http.HttpAdapter.async_session>` and works on that adapter's validated options
(base URL, headers, params, timeouts, TLS, ``http2``, pool limits), its auth providers (the same
instances: an OAuth2 token is fetched once for sync and async requests) and its retry policy (the
decisions of :class:`~dc_api_x.adapters._http_retry.RetryPolicy`). Only the I/O differs: the
client is an ``httpx.AsyncClient``, waits are ``anyio.sleep``, auth goes through the providers'
async flow (:meth:`~dc_api_x.ext.auth.AuthProvider.aapply`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from ..ext.adapters import Response
from ..logs import redact
from ._http_client import client_kwargs
from ._http_common import BEFORE_SENDING, request_kwargs, stream_status_error
from ._http_decode import body_fault, decode_json, is_json
from ._http_retry import RETRIES_EXTENSION, Attempts, BodyFault
from ._httpx import httpx
from .http_limits import host_limiter

if TYPE_CHECKING:  # pragma: no cover
    from ._http import HttpAdapter

__all__ = ["AsyncHttpSession", "AsyncStreamedResponse"]

_NO_AUTH: Any = object()


class AsyncStreamedResponse:
    """What :meth:`AsyncHttpSession.stream` yields: status, headers, redacted URL, the HTTP version;
    ``async for chunk in r`` for the body (never held in memory)."""

    def __init__(self, raw: httpx.Response, url: str, chunk_size: int) -> None:
        self.raw = raw
        self.url = url
        self.status_code = raw.status_code
        self.headers = raw.headers
        self.http_version = raw.http_version
        self.chunk_size = chunk_size

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self.raw.aiter_bytes(chunk_size or self.chunk_size):
            yield chunk

    async def aiter_lines(self) -> AsyncIterator[str]:
        async for line in self.raw.aiter_lines():
            yield line

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.aiter_bytes()

    def __repr__(self) -> str:
        return f"<AsyncStreamedResponse [{self.status_code}] {self.url}>"


class AsyncHttpSession:
    """Async ``request`` / ``stream`` over an :class:`HttpAdapter`'s options; ``await aclose()``."""

    def __init__(self, adapter: HttpAdapter) -> None:
        self.adapter = adapter
        self.name = adapter.name
        self._client: httpx.AsyncClient | None = None
        self.sleep = anyio.sleep  #: the async sleep between retries (tests may replace it)

    @property
    def client(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` (created on first use, in the running event loop)."""
        if self._client is None:
            if self.adapter._closed:
                raise self.adapter.error("the adapter is closed")
            self._client = httpx.AsyncClient(**client_kwargs(self.adapter.options, asynchronous=True))
        return self._client

    def _resolve_auth(self, auth: Any) -> Any:
        return self.adapter._default_auth() if auth is _NO_AUTH else self.adapter._auth_for(auth)

    async def _send(
        self, method: str, url: str, *, auth: Any = None, stream: bool = False, **kwargs: Any
    ) -> tuple[httpx.Response, Any]:
        """Send with the adapter's retry policy (:class:`~dc_api_x.adapters._http_retry.RetryPolicy`,
        the decisions ``HttpAdapter._send`` makes; retries counted in the adapter's counters) and
        its per-host pacing (``rate_limit``; a ``Retry-After`` pauses every worker and task of the
        host: :mod:`~dc_api_x.adapters.http_limits`). Unless ``stream``, the body is read inside the
        loop, and a 2xx body cut short or JSON (by its ``Content-Type``) that does not decode is
        retried like a transport error, as by the sync client; returns the response and its decoded
        JSON (``...`` when not decoded)."""
        client = self.client
        policy = self.adapter.retry_policy
        rate = self.adapter.options.rate_limit
        method = method.upper()
        tries = Attempts(policy, self.adapter.retry_counters, f"adapter {self.name!r}", method)
        while True:
            tries.attempt += 1
            request = client.build_request(method, url, **kwargs)
            limiter = host_limiter(request.url)  # shared with the sync workers of the process
            await limiter.aacquire(rate)
            try:
                # streamed: the body is read below, and retried when cut short
                resp = await client.send(request, auth=auth, stream=True)
            except httpx.TooManyRedirects:
                tries.redirects_failed(redact(str(request.url)), client.max_redirects)
            except httpx.TransportError as exc:
                connect = isinstance(exc, BEFORE_SENDING)
                await self.sleep(tries.transport_failed(exc, redact(str(request.url)), connect=connect))
                continue
            status = resp.status_code
            if policy.status_retryable(status, method):
                await resp.aclose()
                delay, asked = tries.status_failed(status, resp.headers, redact(str(request.url)))
                if asked:
                    limiter.pause(delay)  # the other workers and tasks of this host wait too
                await self.sleep(delay)
                continue
            if tries.made:
                resp.extensions[RETRIES_EXTENSION] = tuple(tries.made)
            if stream:
                return resp, ...
            try:
                data = await self._read(resp)
            except BodyFault as fault:
                await self.sleep(tries.body_failed(fault, redact(str(request.url)), status))
                continue
            return resp, data

    @staticmethod
    async def _read(resp: httpx.Response) -> Any:
        """Read the body of ``resp`` (the send loop streams it); a body cut short raises
        :class:`BodyFault` (the response is closed). The decoded JSON of a 2xx JSON answer, else
        ``...``."""
        try:
            content = await resp.aread()
        except (httpx.TransportError, httpx.DecodingError) as exc:
            await resp.aclose()
            raise body_fault(resp, exc) from None
        if 200 <= resp.status_code < 300 and is_json(resp.headers):
            return decode_json(content, resp.headers)
        return ...

    async def request(
        self, method: str, path: str, *, auth: Any = _NO_AUTH, raise_for_status: bool = False, **kwargs: Any
    ) -> Response:
        """:meth:`HttpAdapter.request <dc_api_x.adapters._http.HttpAdapter.request>`, awaited (the
        same arguments: ``params``, ``headers``, ``json``, ``data``, ``content``, ``files``,
        ``timeout``, ``auth``, ``raise_for_status`` and more ``build_request`` arguments)."""
        resp, data = await self._send(method, path, auth=self._resolve_auth(auth), **request_kwargs(**kwargs))
        out = self.adapter._response(resp, method.upper(), data)
        if raise_for_status:
            out.raise_for_status()
        return out

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
        auth: Any = _NO_AUTH,
        **kwargs: Any,
    ) -> AsyncIterator[AsyncStreamedResponse]:
        """``async with session.stream("GET", "/big") as r: async for chunk in r: …`` (a 4xx/5xx
        answer raises :class:`~dc_api_x.exceptions.HTTPStatusError` unless
        ``raise_for_status=False``)."""
        resp, _ = await self._send(method, path, auth=self._resolve_auth(auth), stream=True, **kwargs)
        try:
            shown = redact(str(resp.request.url))
            if raise_for_status and resp.status_code >= 400:
                raise stream_status_error(self.name, method, resp.status_code, shown)
            yield AsyncStreamedResponse(resp, shown, chunk_size)
        finally:
            await resp.aclose()

    async def aclose(self) -> None:
        """Close the async client (the adapter, its sync client and its auth providers are closed
        by the adapter's ``close()``)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
