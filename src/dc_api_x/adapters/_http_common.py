"""What the async HTTP request path shares with the sync one beyond :mod:`._http_retry` (the
retry decisions) and :mod:`._http_client` (client arguments): request arguments, the status check
of streamed answers and the providers' async auth flow.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import HTTPStatusError
from ._httpx import httpx

if TYPE_CHECKING:  # pragma: no cover
    from ..ext.auth import AuthProvider

__all__ = [
    "provider_async_flow",
    "request_kwargs",
    "stream_status_error",
]

#: Transport errors raised before the request reached the server: retried for every method.
BEFORE_SENDING = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


#: Request arguments left out when ``None`` (any other is passed to ``build_request`` as given).
_OPTIONAL = frozenset({"json", "data", "content", "files", "timeout"})


def request_kwargs(
    params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """The ``httpx`` ``build_request`` arguments of one request: empty ``params`` / ``headers``
    and unset ``json`` / ``data`` / ``content`` / ``files`` / ``timeout`` left out."""
    out = {k: v for k, v in kwargs.items() if v is not None or k not in _OPTIONAL}
    if params:
        out["params"] = dict(params)
    if headers:
        out["headers"] = dict(headers)
    return out


async def provider_async_flow(
    provider: AuthProvider, request: httpx.Request
) -> AsyncGenerator[httpx.Request, httpx.Response]:
    """An :class:`~dc_api_x.ext.auth.AuthProvider`'s async auth flow as httpx drives it, with
    the request / response bodies read first when the provider says it needs them."""
    if provider.requires_request_body:
        await request.aread()
    flow = provider.async_auth_flow(request)
    request = await flow.__anext__()
    while True:
        response = yield request
        if provider.requires_response_body:
            await response.aread()
        try:
            request = await flow.asend(response)
        except StopAsyncIteration:
            break


def stream_status_error(adapter: str, method: str, status: int, shown_url: str) -> HTTPStatusError:
    """The error of a streamed request answered 4xx/5xx (``shown_url`` already redacted)."""
    return HTTPStatusError(
        f"adapter {adapter!r}: {method.upper()} {shown_url}: HTTP {status}",
        url=shown_url,
        status_code=status,
    )
