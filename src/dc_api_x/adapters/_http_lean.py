"""The lean send path of the HTTP adapter's page requests: what ``httpx.Client.build_request`` +
``Client.send`` do for a plain request, at about half their Python cost per page.

A paginated read sends the same request again and again with other query parameters. Per page,
``build_request`` merges the base URL, the client's headers, cookies and parameters and parses the
URL two or three times, and ``Client.send`` runs the auth flow, the redirect loop, the response hooks
and the cookie extraction — for a W4 page about 130 us of the ~470 us httpx spends in all.
:class:`LeanSender` builds one *template* request per (method, URL, headers) with
``build_request`` (no parameters) and makes each page's request from it (the template's query
merged with the page's parameters, encoded as httpx encodes them), then sends it as
``Client._send_single_request`` does: the client's transport and connection pool, ``elapsed``, the
response bound to its request, httpx's exception mapping.

Only the *plain* case takes it, checked on every request; anything else goes through httpx as
before (:meth:`LeanSender.request` / :meth:`LeanSender.send` give ``None``):

* the client: open, its own ``HTTPTransport`` (no mounts, proxies or replaced transport), no client
  auth, no request hook, no response hook but the adapter's own
  (:func:`~._http_client.drop_credentials_leaving_origin`, which acts on redirects only), an empty
  cookie jar, and httpx's request log off (the ``httpx`` logger below INFO, the default);
* the request: no auth, no body, no keyword but ``params`` / ``headers``, parameters given, no
  user info in the URL;
* the answer: a redirect (3xx with a ``Location``) is closed and the same request is sent again
  through ``Client.send`` (its redirect handling and hooks); a ``Set-Cookie`` header goes to the
  client's jar as httpx puts it there (and the next requests take httpx's path, which sends the
  cookie).

The first lean request of a template is checked against ``build_request``: the same URL and
headers, else that template is not used (a later httpx that encodes differently costs speed, never
a changed request).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from ._httpx import httpx

__all__ = ["LeanSender"]

_httpx_log = logging.getLogger("httpx")


def _internals() -> tuple[Any, ...] | None:
    """httpx's and httpcore's pieces the lean path uses, or ``None`` when this httpx lacks one."""
    try:
        import httpcore
        from httpx._client import BoundSyncStream, ClientState
        from httpx._exceptions import request_context
        from httpx._transports.default import ResponseStream, map_httpcore_exceptions
    except ImportError:  # pragma: no cover - another httpx layout: httpx's own path
        return None
    return (
        httpcore,
        BoundSyncStream,
        ClientState.OPENED,
        request_context,
        ResponseStream,
        map_httpcore_exceptions,
    )


class _Template:
    __slots__ = (
        "checked",
        "client",
        "extensions",
        "head",
        "headers",
        "method",
        "params",
        "ref",
        "stream",
        "usable",
    )

    def __init__(self, request: httpx.Request, client: httpx.Client) -> None:
        #: what the template took from the client: its base URL, parameters and timeout (replaced,
        #: never changed in place, when set) and its headers (which may change in place)
        self.client = _client_state(client)
        self.method = request.method
        self.ref = request.url._uri_reference  # a NamedTuple: ._replace(query=…) is the page's URL
        self.params = request.url.params
        self.headers = request.headers
        self.stream = request.stream
        self.extensions = request.extensions
        self.usable = request.url.userinfo == b"" and hasattr(self.ref, "_replace")
        self.checked = False
        #: the header lines the wire layer sends (:func:`._http_wire.header_block`), made once
        self.head: bytes | None = None


def _client_state(client: httpx.Client) -> tuple[Any, ...]:
    return (client._base_url, client._params, client._timeout, list(client._headers._list))


class LeanSender:
    """The lean path of one adapter's client (see the module docstring)."""

    def __init__(self, hook: Any) -> None:
        #: the one response hook the lean path allows (the adapter's redirect credential guard)
        self.hook = hook
        self.parts = _internals()
        self._templates: dict[Any, _Template] = {}
        self._client: Any = None
        #: the client's wire connections (:mod:`._http_wire`), ``None`` when its pool is not plain
        self._wire: Any = None
        #: whether plain pools take the wire layer (tests and benchmarks compare with httpcore's)
        self.use_wire = True
        #: requests sent the lean way, and answers handed back to httpx (redirects): for tests
        self.sent = 0
        self.handed_back = 0

    def plain(self, client: httpx.Client) -> bool:
        """Whether ``client`` is in the state the lean path reproduces exactly."""
        if self.parts is None or client._state is not self.parts[2]:
            return False
        hooks = client._event_hooks
        response_hooks = hooks["response"]
        if hooks["request"] or any(h is not self.hook for h in response_hooks):
            return False
        if client._mounts or type(client._transport) is not httpx.HTTPTransport or client.auth is not None:
            return False
        if len(client.cookies.jar) or _httpx_log.isEnabledFor(logging.INFO):
            return False
        pool = getattr(client._transport, "_pool", None)
        if client is not self._client:  # a new client (the adapter was reopened): new templates
            self.close()
            self._client = client
            self._templates.clear()
            if self.use_wire:
                from ._http_wire import WireConnections, usable

                self._wire = WireConnections(pool) if usable(pool) else None
        return isinstance(pool, self.parts[0].ConnectionPool)

    def close(self) -> None:
        """Close the wire connections (the adapter closes its client)."""
        wire, self._wire = self._wire, None
        self._client = None
        if wire is not None:
            wire.close()

    def request(self, client: httpx.Client, method: str, url: str, kwargs: Mapping[str, Any]) -> Any:
        """The page's ``httpx.Request`` made from its template, or ``None``: httpx builds it."""
        params = kwargs.get("params")
        if not params or any(k not in ("params", "headers") for k in kwargs) or not self.plain(client):
            return None
        headers = kwargs.get("headers")
        key = (method, url, tuple(headers.items()) if headers else ())
        t = self._templates.get(key)
        if t is not None:
            c = t.client
            if (
                c[0] is not client._base_url
                or c[1] is not client._params
                or c[2] is not client._timeout
                or c[3] != client._headers._list
            ):
                t = None  # the client's base URL, parameters, timeout or headers changed
        if t is None:
            template = client.build_request(method, url, headers=headers)
            client._set_timeout(template)
            t = self._templates[key] = _Template(template, client)
            if not t.usable or template.headers.get("content-length") or template.content:
                t.usable = False
        if not t.usable:
            return None
        merged = t.params.merge(params)
        u = httpx.URL.__new__(httpx.URL)
        u._uri_reference = t.ref._replace(query=str(merged) if merged else None)
        request = httpx.Request(
            t.method, u, headers=t.headers, stream=t.stream, extensions=dict(t.extensions)
        )
        request.read()  # (an empty body: request.content as after build_request)
        if self._wire is not None:
            if t.head is None:
                from ._http_wire import header_block

                t.head = header_block(t.headers.raw) or b""  # b"": not sendable (httpx's path)
            request._lean_head = t.head  # type: ignore[attr-defined]
        if not t.checked:  # the first request of a template: exactly what httpx builds?
            full = client.build_request(method, url, **kwargs)
            client._set_timeout(full)
            same = (
                str(full.url) == str(u)
                and full.url.raw_path == u.raw_path
                and full.headers.raw == request.headers.raw
                and full.extensions == request.extensions
            )
            t.checked = True
            if not same:
                t.usable = False
                return full
        return request

    def send(self, client: httpx.Client, request: Any) -> httpx.Response | None:
        """Send ``request`` (made by :meth:`request`) as ``Client.send(request, stream=True)`` would
        for a plain client; ``None`` when the answer is a redirect (closed: send it through httpx)."""
        wire = self._wire
        ext = request.extensions
        head = getattr(request, "_lean_head", None)
        response = None
        if (
            wire is not None
            and head
            and self.use_wire
            and client is self._client
            and list(ext) == ["timeout"]
        ):
            response = wire.send(request, head)
        if response is None:
            response = self._send_core(client, request)
        if response.has_redirect_location:
            try:
                response.read()  # as httpx reads it before following: the connection stays open
            except httpx.HTTPError:
                pass
            response.close()
            self.handed_back += 1
            return None
        if "set-cookie" in response.headers or "set-cookie2" in response.headers:
            client.cookies.extract_cookies(response)
        response.default_encoding = client._default_encoding
        for hook in client._event_hooks["response"]:
            hook(response)
        response.history = []
        self.sent += 1
        return response

    def _send_core(self, client: httpx.Client, request: Any) -> httpx.Response:
        """``request`` through the client's httpcore pool, as ``Client._send_single_request``."""
        httpcore, bound, _, request_context, response_stream, map_exceptions = self.parts  # type: ignore[misc]
        transport: Any = client._transport
        start = time.perf_counter()
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with request_context(request=request), map_exceptions():
            answer = transport._pool.handle_request(core)
        response = httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=response_stream(answer.stream),
            extensions=answer.extensions,
        )
        response.request = request
        response.stream = bound(response.stream, response=response, start=start)
        return response
