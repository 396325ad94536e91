"""``AsyncApiClient``: :class:`~dc_api_x.ApiClient` for asyncio (the roadmap's async httpx row).

::

    from dc_api_x import AsyncApiClient

    async with AsyncApiClient("https://api.example.com", auth={"type": "bearer", "token": "…"},
                              http2=True) as api:
        me = (await api.get("/me")).raise_for_status().data
        async for item in api.paginate("/items", paginator={"type": "cursor"}, records_path="data"):
            ...
        async with api.stream("GET", "/export.csv") as r:
            async for chunk in r:
                ...

It takes the same arguments as :class:`~dc_api_x.ApiClient` and builds the adapter the same way
(through the registry). An adapter that offers an async request side — the ``http`` adapter's
``async_session()``: ``httpx.AsyncClient`` on the adapter's options, auth providers and retry
policy — is awaited directly; any other adapter's ``request()`` runs in a worker thread, so every
adapter works through this client. Hooks, auth and the pagination state machine are the sync
client's (:class:`~dc_api_x.client._ClientCore`, :class:`~dc_api_x.client.PageWalk`).

HTTP/2: ``http2=True`` (the ``http`` adapter's option; needs ``pip install 'dc-api-x[http2]'``).
Concurrency: run requests as tasks (``asyncio.gather``); they share the adapter's connection pool
(``limits``) and one OAuth2 token (one token request however many tasks need it).

Importing this module imports no HTTP library.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .client import Page, PageOptions, _ClientCore
from .ext.adapters import Response

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self, Unpack


__all__ = ["AsyncApiClient"]


async def _in_thread(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a worker thread (anyio when installed, else asyncio)."""
    call = functools.partial(fn, *args, **kwargs)
    try:
        import anyio.to_thread
    except ImportError:  # pragma: no cover - anyio comes with httpx
        import asyncio

        return await asyncio.to_thread(call)
    return await anyio.to_thread.run_sync(call)


class AsyncApiClient(_ClientCore):
    """An asyncio client for one API; the parameters are :class:`~dc_api_x.ApiClient`'s.

    Use it as ``async with AsyncApiClient(...) as api:`` or call :meth:`aclose`.
    """

    def _setup(self) -> None:
        make = getattr(self.adapter, "async_session", None)
        #: The adapter's async request side (``None``: its ``request()`` runs in a worker thread).
        self.session: Any = make() if callable(make) else None

    # -- requests ------------------------------------------------------------------------------
    async def request(self, method: str, path: str = "", **kwargs: Any) -> Response:
        """Send one request with the hooks around it; always a :class:`Response` (see
        :meth:`ApiClient.request <dc_api_x.ApiClient.request>`)."""
        info = self._before(method, path, kwargs)
        try:
            if info.response is not None:  # answered by a hook (a cache hit): nothing is sent
                response: Any = info.response
            else:
                args, kw = self._send_args(info)
                if self.session is not None:
                    response = await self.session.request(*args, **kw)
                else:
                    response = await _in_thread(self.adapter.request, *args, **kw)
        except Exception as exc:
            self._failed(info, exc)
            raise
        return self._after(info, response)

    async def get(self, path: str = "", **kwargs: Any) -> Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str = "", **kwargs: Any) -> Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str = "", **kwargs: Any) -> Response:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str = "", **kwargs: Any) -> Response:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str = "", **kwargs: Any) -> Response:
        return await self.request("DELETE", path, **kwargs)

    async def head(self, path: str = "", **kwargs: Any) -> Response:
        return await self.request("HEAD", path, **kwargs)

    def stream(self, method: str, path: str = "", **kwargs: Any) -> Any:
        """A streamed request, for bodies too large for memory::

            async with api.stream("GET", "/export") as r:   # r.status_code, r.headers, r.url
                async for chunk in r:                       # or r.aiter_lines()
                    ...

        The client's ``auth`` is used unless ``auth=`` is given; hooks are not called. A 4xx/5xx
        answer raises :class:`~dc_api_x.exceptions.HTTPStatusError` unless
        ``raise_for_status=False``. Needs an adapter with an async request side.
        """
        if self.session is None:
            from .exceptions import NotSupportedError

            name = getattr(self.adapter, "name", "?")
            raise NotSupportedError(
                f"adapter {name!r} does not support streaming with AsyncApiClient", adapter=name
            )
        return self._stream_of_adapter(self.session, kwargs)(method, path, **kwargs)

    # -- pagination ------------------------------------------------------------------------------
    async def pages(self, path: str = "", **options: Unpack[PageOptions]) -> AsyncIterator[Page]:
        """``async for page in api.pages(...)``: every :class:`~dc_api_x.client.Page` of
        ``path`` (response, records, number); the options are :meth:`paginate`'s."""
        walk = self._walk(path, **options)
        while not walk.finished:
            pr, kwargs = walk.next_request()
            yield walk.receive(await self.request(pr.method, pr.url, **kwargs))

    async def paginate(self, path: str = "", **options: Unpack[PageOptions]) -> AsyncIterator[Any]:
        """``async for record in api.paginate(...)``: the records of every page of ``path``
        (the options are :class:`~dc_api_x.client.PageOptions`, as for
        :meth:`ApiClient.paginate <dc_api_x.ApiClient.paginate>`)."""
        async for page in self.pages(path, **options):
            for record in page.records:
                yield record

    # -- lifecycle -------------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the async session, the adapter and the auth provider this client created."""
        if self.session is not None:
            await self.session.aclose()
        close = getattr(self.adapter, "close", None)
        if close is not None:
            close()
        if self._own_auth and self.auth is not None:
            self.auth.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
