"""The httpx plumbing of the HTTP adapter: the client's arguments from the options, shared SSL
contexts, the bridge from an :class:`~dc_api_x.ext.auth.AuthProvider` to ``httpx.Auth``, streamed
responses, and redaction of httpx's own request log.

:func:`client_kwargs` gives the keyword arguments of ``httpx.Client`` *and* ``httpx.AsyncClient``
for :class:`~dc_api_x.adapters._http_options.HttpOptions`, so an asyncio client is configured
exactly like the adapter's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from ..exceptions import ConfigError, ResponseDecodeError
from ..ext.auth import AuthProvider
from ..logs import RedactingFilter, is_secret_key, redact
from ._http_options import HttpOptions
from ._httpx import httpx

__all__ = ["AuthBridge", "StreamedResponse", "client_kwargs", "quiet_httpx_loggers", "ssl_context"]


def quiet_httpx_loggers() -> None:
    """httpx logs every request at INFO with its full URL (API keys in query strings included):
    redact its records and, unless the application set a level, keep it at WARNING (our
    ``logging`` request hook logs requests, redacted, at DEBUG)."""
    for name in ("httpx", "httpcore"):
        lg = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in lg.filters):
            lg.addFilter(RedactingFilter())
        if lg.level == logging.NOTSET:
            lg.setLevel(logging.WARNING)


def drop_credentials_leaving_origin(response: httpx.Response) -> None:
    """Response hook: before httpx follows a redirect to another origin (scheme, host or port), drop
    the request's headers that carry credentials — httpx itself drops only ``Authorization``, and
    would copy an API key header (``X-API-Key``), a token under a custom header name or a cookie to
    the other server. A header goes when its name looks secret (:func:`~dc_api_x.logs.is_secret_key`)
    or its value holds a registered secret or a ``Bearer``/``Basic`` credential. (The request was
    sent already: httpx builds the redirected request from its headers.)"""
    if not response.has_redirect_location:
        return
    req = response.request
    nxt = req.url.join(response.headers["location"])
    if (nxt.scheme, nxt.host, nxt.port) == (req.url.scheme, req.url.host, req.url.port):
        return
    for name, value in list(req.headers.items()):
        low = name.lower()
        if (
            low in ("authorization", "proxy-authorization", "cookie")
            or is_secret_key(low)
            or redact(value) != value
        ):
            del req.headers[name]


async def _adrop_credentials_leaving_origin(response: httpx.Response) -> None:
    drop_credentials_leaving_origin(response)


def client_kwargs(opts: HttpOptions, *, asynchronous: bool = False) -> dict[str, Any]:
    """Keyword arguments of ``httpx.Client`` / ``httpx.AsyncClient`` (``asynchronous``) for
    ``opts``: base URL, headers (a ``dc-api-x/VERSION`` user agent unless set), params, timeouts, TLS
    verification (a shared SSL context), HTTP/2, redirects (credentials never follow one to another
    origin: :func:`drop_credentials_leaving_origin`) and pool limits.

    :raises ConfigError: ``http2`` without the h2 package.
    """
    if opts.http2:
        try:
            import h2  # noqa: F401
        except ImportError:
            raise ConfigError(
                "adapter 'http': option 'http2': needs the h2 package (pip install 'dc-api-x[http2]')",
                plugin="adapter 'http'",
                field="http2",
            ) from None
    t = opts.timeout
    timeout = httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool)
    lim = opts.limits
    headers = dict(opts.headers)
    if opts.user_agent:
        headers["user-agent"] = opts.user_agent
    elif not any(k.lower() == "user-agent" for k in headers):
        from ..plugins import core_version

        headers["user-agent"] = f"dc-api-x/{core_version()}"
    return {
        "base_url": opts.base_url,
        "headers": headers,
        "params": opts.params or None,
        "timeout": timeout,
        "verify": ssl_context(opts.verify),
        "http2": opts.http2,
        "follow_redirects": opts.follow_redirects,
        "event_hooks": {
            "response": [
                _adrop_credentials_leaving_origin if asynchronous else drop_credentials_leaving_origin
            ]
        },
        "limits": httpx.Limits(
            max_connections=lim.max_connections,
            max_keepalive_connections=lim.max_keepalive_connections,
            keepalive_expiry=lim.keepalive_expiry,
        ),
    }


class AuthBridge(httpx.Auth):
    """Presents a :class:`~dc_api_x.ext.auth.AuthProvider` to httpx."""

    def __init__(self, provider: AuthProvider) -> None:
        self.provider = provider
        self.requires_request_body = provider.requires_request_body
        self.requires_response_body = provider.requires_response_body

    def auth_flow(self, request: httpx.Request) -> Any:
        return self.provider.auth_flow(request)

    def async_auth_flow(self, request: httpx.Request) -> Any:  # AsyncApiClient
        from ._http_common import provider_async_flow

        return provider_async_flow(self.provider, request)


class StreamedResponse:
    """What :meth:`HttpAdapter.stream` yields: status, headers, redacted URL; iterate for chunks."""

    def __init__(self, raw: httpx.Response, url: str, chunk_size: int) -> None:
        self.raw = raw
        self.url = url
        self.status_code = raw.status_code
        self.headers = raw.headers
        self.chunk_size = chunk_size

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """The body in chunks. A body cut short raises :class:`ResponseDecodeError` saying
        ``truncated body (got N of M bytes)`` (not retried: the chunks before were handed out)."""
        try:
            yield from self.raw.iter_bytes(chunk_size or self.chunk_size)
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise self._fault(exc) from None

    def iter_lines(self) -> Iterator[str]:
        try:
            yield from self.raw.iter_lines()
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise self._fault(exc) from None

    def _fault(self, exc: Exception) -> ResponseDecodeError:
        from ._http_decode import body_fault

        detail = body_fault(self.raw, exc).detail
        method = self.raw.request.method
        return ResponseDecodeError(f"{method} {self.url}: HTTP {self.status_code}: {detail}", url=self.url)

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_bytes()

    def __repr__(self) -> str:
        return f"<StreamedResponse [{self.status_code}] {self.url}>"


_ssl_contexts: dict[Any, Any] = {}
_ssl_lock = threading.Lock()


def ssl_context(verify: bool | str) -> Any:
    """One shared SSL context per ``verify`` value (building one costs ~25-250 ms)."""
    if verify is False:
        return False
    with _ssl_lock:
        ctx = _ssl_contexts.get(verify)
        if ctx is None:
            if verify is True:
                ctx = httpx.create_ssl_context()
            else:
                import ssl

                ctx = (
                    ssl.create_default_context(cafile=verify)
                    if not _is_dir(verify)
                    else ssl.create_default_context(capath=verify)
                )
            _ssl_contexts[verify] = ctx
        return ctx


def _is_dir(path: str) -> bool:
    import os

    return os.path.isdir(path)
