"""The HTTP adapter (httpx): requests with retries and auth, paginated incremental stream reads.

Reached through the registry only (``create_adapter({"adapter": "http", …})``); the plugin module
:mod:`dc_api_x.adapters.http` registers it lazily so that httpx is imported on first use.

The adapter is split by concept: its options are in :mod:`._http_options`, the httpx plumbing
(client arguments, SSL contexts, the auth bridge, streamed responses) in :mod:`._http_client`, the
retry policy (what is retried, how long to wait, retry counters) in :mod:`._http_retry`, reading
and decoding bodies (truncated bodies, JSON errors) in :mod:`._http_decode`, the incremental
bookmark in :mod:`._http_bookmark`, the paginated read loop (pages combined into batches) in
:mod:`._http_read`, partitions (page windows, independent request sets) in :mod:`.http_partitions`.
This module holds the adapter class — one httpx client shared by the request side (what
``ApiClient`` uses: the send loop with its retries) and the read side — and the small helpers used
by it only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from ..exceptions import HTTPStatusError
from ..ext.adapters import ProtocolAdapter, Response
from ..ext.auth import AuthProvider
from ..ext.pagination import PageRequest, Paginator, extract_records, split_path
from ..ext.partitions import Partition, merge_unordered_bookmarks
from ..inference import infer_schema as _infer
from ..logs import is_secret_key, redact, register_secret
from ..types import Batch, JSONSchema, Record, StreamSpec
from ._http_client import (
    AuthBridge,
    StreamedResponse,
    client_kwargs,
    drop_credentials_leaving_origin,
    quiet_httpx_loggers,
)
from ._http_columns import PageColumns
from ._http_common import BEFORE_SENDING
from ._http_decode import decode_json, is_json, read_body
from ._http_lean import LeanSender
from ._http_options import HttpOptions, LimitsOptions, RetryOptions, StreamOptions, TimeoutOptions
from ._http_retry import RETRIES_EXTENSION, Attempts, BodyFault, RetryCounters, RetryPolicy, parse_retry_after
from ._httpx import httpx
from .http_limits import host_limiter

__all__ = [
    "HttpAdapter",
    "HttpOptions",
    "LimitsOptions",
    "RetryOptions",
    "StreamOptions",
    "StreamedResponse",
    "TimeoutOptions",
    "infer_schema",
    "parse_retry_after",
]

log = logging.getLogger("dc_api_x.http")


quiet_httpx_loggers()


# ------------------------------------------------------------------------------------ helpers
def infer_schema(records: Sequence[Mapping[str, Any]]) -> JSONSchema:
    """A JSON Schema inferred from sample records (:func:`dc_api_x.inference.infer_schema`, the
    HTTP flavour): every field is nullable (fields come and go between pages) and nested objects
    and arrays are ``x-json`` blobs; integers, numbers, booleans, strings with ``date-time`` /
    ``date`` detection (naive date-times get ``x-timezone: false``); conflicting types become an
    ``x-json`` blob (nothing is coerced)."""
    return _infer(records, nested=False, all_nullable=True)


_NO_AUTH: Any = object()

#: Seconds a stream's first page fetched by discovery (or for the page windows' total) is kept for
#: the read that follows: that read does not ask for it a second time.
FIRST_PAGE_REUSE = 30.0


# ------------------------------------------------------------------------------------ adapter
class HttpAdapter(ProtocolAdapter):
    """HTTP/JSON APIs over httpx.

    Request side: :meth:`request` (retries, auth, redacted URLs) and :meth:`stream`.
    ETL side: :meth:`discover` lists the configured ``streams``; :meth:`read` follows the stream's
    paginator and yields one :class:`Batch` per page (or per ``pages_per_batch`` pages), with the
    incremental bookmark set.
    """

    name = "http"
    Options = HttpOptions
    secret_options = ("auth", "headers")

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        opts: HttpOptions = self.options
        self.retry_policy = RetryPolicy(opts.retries)
        #: Retries made by this adapter, by reason (``retry_counters.snapshot()``).
        self.retry_counters = RetryCounters()
        self._stream_retries: dict[str, RetryCounters] = {}
        self._stream_retries_lock = threading.Lock()
        for key, value in opts.headers.items():
            if is_secret_key(key):
                register_secret(value.split(" ", 1)[-1])
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._lean: LeanSender | None = None  # the page requests' lean send path (_http_lean.py)
        self._auth_cache: dict[str, Any] = {}
        self._providers: list[AuthProvider] = []
        self._schemas: dict[str, JSONSchema] = {}
        #: the last first page looked at (_fetch_page's probe): key, when, response, records
        self._first_page: tuple[Any, float, Response, list[Record]] | None = None
        self.sleep = time.sleep  #: the sleep function used between retries (tests may replace it)
        # validate auth / pagination names early (unknown names list the known ones)
        if opts.auth is not None:
            self._auth_for(opts.auth)
        if opts.pagination is not None:
            self._paginator(opts.pagination)
        for s in opts.streams:
            if s.auth is not None:
                self._auth_for(s.auth)
            if s.pagination is not None:
                self._paginator(s.pagination)

    # -- client ------------------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        """The underlying ``httpx.Client`` (created on first use)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> httpx.Client:
        if self._closed:
            raise self.error("the adapter is closed")
        if self.options.verify is False:
            log.warning(
                "adapter 'http': TLS certificate verification is OFF (verify: false) for %s",
                redact(self.options.base_url) or "every URL",
            )
        return httpx.Client(**client_kwargs(self.options))

    def async_session(self) -> Any:
        """The async request side on these options, auth providers and retry policy (what
        :class:`~dc_api_x.AsyncApiClient` uses): one ``httpx.AsyncClient``
        (:class:`~dc_api_x.adapters._http_async.AsyncHttpSession`), closed by its own ``aclose()``."""
        from ._http_async import AsyncHttpSession

        return AsyncHttpSession(self)

    def close(self) -> None:
        if self._lean is not None:
            self._lean.close()  # its wire connections (_http_wire.py)
        if self._client is not None:
            self._client.close()
            self._client = None
        for p in self._providers:
            p.close()
        self._providers.clear()
        self._auth_cache.clear()
        super().close()

    # -- plugins -----------------------------------------------------------------------------------
    def _auth_for(self, spec: Any) -> httpx.Auth | None:
        """An httpx auth for ``spec``: a ``{type, …}`` dict, a name, an AuthProvider or httpx.Auth."""
        if spec is None:
            return None
        if isinstance(spec, httpx.Auth):
            return spec
        if isinstance(spec, AuthProvider):
            return AuthBridge(spec)
        key = (
            spec
            if isinstance(spec, str)
            else orjson.dumps(spec, option=orjson.OPT_SORT_KEYS, default=str).decode()
        )
        cached = self._auth_cache.get(key)
        if cached is None:
            from ..plugins import create_plugin

            provider = create_plugin("auth_providers", spec)
            self._providers.append(provider)
            cached = self._auth_cache[key] = (
                AuthBridge(provider) if isinstance(provider, AuthProvider) else provider
            )
        return cached  # type: ignore[no-any-return]

    def _default_auth(self, stream: StreamOptions | None = None) -> httpx.Auth | None:
        if stream is not None and stream.auth is not None:
            return self._auth_for(stream.auth)
        return self._auth_for(self.options.auth)

    @staticmethod
    def _paginator(spec: Any) -> Paginator[Any]:
        if isinstance(spec, Paginator):
            return spec
        from ..plugins import create_plugin

        return create_plugin("paginators", spec or "single_page")  # type: ignore[no-any-return]

    # -- sending -----------------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        url: str,
        *,
        auth: Any = None,
        stream: bool = False,
        where: str = "",
        decode: bool | None = False,
        counters: RetryCounters | None = None,
        decoder: Any = None,
        lean: bool = False,
        **kwargs: Any,
    ) -> tuple[httpx.Response, Any]:
        """Send with retries; returns the final ``httpx.Response`` (any non-retryable status) and,
        with ``decode``, its JSON body decoded (for a 2xx answer; else ``...``); ``decode=None``:
        decoded when the ``Content-Type`` says JSON.

        The body is read inside the retry loop (unless ``stream``): a 2xx body cut short or, with
        ``decode``, JSON that does not decode is retried like a transport error (see
        :mod:`._http_retry`). Retries are counted in ``counters`` (default: the adapter's).
        ``decoder``: tried first on a 2xx body to decode (a page plan's ``decode``, giving
        :class:`~dc_api_x.adapters._http_columns.PageColumns`); when it gives ``None`` the body is
        decoded as JSON as usual. ``lean``: a page request, sent by the lean path
        (:mod:`._http_lean`) when the client and the request are plain.

        :raises TransportError: a transport error that is not retryable or persisted.
        :raises HTTPStatusError: a retryable status (429, 5xx) still there after the last attempt.
        :raises ResponseDecodeError: a truncated or undecodable body after the last attempt.
        """
        client = self.client
        policy = self.retry_policy
        method = method.upper()
        tries = Attempts(policy, counters or self.retry_counters, where or f"adapter {self.name!r}", method)
        sender = None
        if lean and auth is None and not stream:
            sender = self._lean
            if sender is None:
                sender = self._lean = LeanSender(drop_credentials_leaving_origin)
        while True:
            tries.attempt += 1
            request = sender.request(client, method, url, kwargs) if sender is not None else None
            quick = request is not None
            if request is None:
                request = client.build_request(method, url, **kwargs)
            limiter = host_limiter(request.url)  # shared by every worker of the process (http_limits.py)
            limiter.acquire(self.options.rate_limit)
            try:
                resp = sender.send(client, request) if quick else None  # type: ignore[union-attr]
                if resp is None:  # httpx's path (or a redirect answered on the lean one)
                    resp = client.send(request, auth=auth, stream=True)
            except httpx.TooManyRedirects:  # not retried: the same redirects would follow
                tries.redirects_failed(redact(str(request.url)), client.max_redirects)
            except httpx.TransportError as exc:
                connect = isinstance(exc, BEFORE_SENDING)
                self.sleep(tries.transport_failed(exc, redact(str(request.url)), connect=connect))
                continue
            status = resp.status_code
            if policy.status_retryable(status, method):
                resp.close()
                delay, asked = tries.status_failed(status, resp.headers, redact(str(request.url)))
                if asked:
                    limiter.pause(delay)  # the other workers of this host wait too
                self.sleep(delay)
                continue
            if tries.made:
                resp.extensions[RETRIES_EXTENSION] = tuple(tries.made)
            if stream:
                return resp, ...
            data: Any = ...
            try:
                content = read_body(resp)
                if 200 <= status < 300 and (decode or (decode is None and is_json(resp.headers))):
                    if decoder is not None:
                        data = decoder(content)
                    if data is ... or data is None:
                        data = decode_json(content, resp.headers)
            except BodyFault as fault:
                self.sleep(tries.body_failed(fault, redact(str(request.url)), status))
                continue
            return resp, data

    def stream_retry_counters(self, stream: str) -> RetryCounters:
        """The retries made reading ``stream`` (part of :attr:`retry_counters`)."""
        counters = self._stream_retries.get(stream)
        if counters is None:
            with self._stream_retries_lock:
                counters = self._stream_retries.setdefault(stream, RetryCounters(self.retry_counters))
        return counters

    def read_metrics(self, stream: str) -> dict[str, Any]:
        """What reading ``stream`` cost beyond its records, so far: ``{"retries", "retries_by_reason",
        "exhausted"}`` (the runner reports the retries of each stream)."""
        return self.stream_retry_counters(stream).snapshot()

    @staticmethod
    def _response(resp: httpx.Response, method: str, data: Any = ..., url: str | None = None) -> Response:
        return Response(
            status_code=resp.status_code,
            headers=resp.headers,
            content=resp.content,
            url=url if url is not None else redact(str(resp.request.url)),
            method=method,
            data=data,
            raw=resp,
            elapsed=resp.elapsed.total_seconds() if hasattr(resp, "_elapsed") else None,
        )

    # -- request side ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        content: bytes | str | None = None,
        files: Any = None,
        timeout: float | None = None,
        auth: Any = _NO_AUTH,
        raise_for_status: bool = False,
        **extra: Any,
    ) -> Response:
        """Send one request (retried on 429/5xx/transport errors) and return a
        :class:`~dc_api_x.ext.adapters.Response` (redacted ``url``; ``data`` decodes JSON).

        :param auth: ``None`` for no auth; by default the adapter's ``auth`` option; else a
            ``{type, …}`` dict, a provider name, an :class:`AuthProvider` or an ``httpx.Auth``.
        :param raise_for_status: raise :class:`HTTPStatusError` on a 4xx/5xx answer.
        :param extra: more ``httpx.Client.build_request`` arguments (``cookies``, ``extensions``).
        """
        kwargs: dict[str, Any] = dict(extra)
        if params:
            kwargs["params"] = dict(params)
        if headers:
            kwargs["headers"] = dict(headers)
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        if content is not None:
            kwargs["content"] = content
        if files is not None:
            kwargs["files"] = files
        if timeout is not None:
            kwargs["timeout"] = timeout
        resolved = self._default_auth() if auth is _NO_AUTH else self._auth_for(auth)
        resp, data = self._send(method, path, auth=resolved, decode=None, **kwargs)
        out = self._response(resp, method.upper(), data)
        if raise_for_status:
            out.raise_for_status()
        return out

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
        auth: Any = _NO_AUTH,
        **kwargs: Any,
    ) -> Iterator[StreamedResponse]:
        """A streamed request: ``with adapter.stream("GET", "/big") as r: for chunk in r: …``.

        The body is not loaded in memory. A 4xx/5xx answer raises :class:`HTTPStatusError` unless
        ``raise_for_status=False``.
        """
        resolved = self._default_auth() if auth is _NO_AUTH else self._auth_for(auth)
        resp, _ = self._send(method, path, auth=resolved, stream=True, **kwargs)
        try:
            shown = redact(str(resp.request.url))
            if raise_for_status and resp.status_code >= 400:
                raise HTTPStatusError(
                    f"adapter {self.name!r}: {method.upper()} {shown}: HTTP {resp.status_code}",
                    url=shown,
                    status_code=resp.status_code,
                )
            yield StreamedResponse(resp, shown, chunk_size)
        finally:
            resp.close()

    # -- ETL side ----------------------------------------------------------------------------------
    def partitions(
        self, stream: StreamSpec, *, state: Mapping[str, Any] | None = None, max_partitions: int = 4
    ) -> list[Partition] | None:
        """Independent request sets (the stream's ``request_sets``), else windows of pages
        (offset / page-number pagination with a known total), see
        :mod:`dc_api_x.adapters.http_partitions`."""
        from .http_partitions import http_partitions

        return http_partitions(self, stream, state, max_partitions)

    def read_partition(
        self,
        stream: StreamSpec,
        partition: Partition,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """The pages of one window (one :class:`Batch` per page), or one request set read from
        ``state`` (its batches carry the set's bookmark)."""
        from .http_partitions import read_window

        return read_window(self, stream, partition, state=state, columns=columns, limit=limit)

    def merge_partition_bookmarks(
        self,
        stream: StreamSpec,
        base: Mapping[str, Any] | None,
        bookmarks: Sequence[Mapping[str, Any] | None],
        done: Sequence[bool],
    ) -> dict[str, Any] | None:
        """Page windows: ordered ranges (the default); request sets: the stream's bookmark until
        every set finished, then the greatest of theirs
        (:func:`~dc_api_x.ext.partitions.merge_unordered_bookmarks`, as for files)."""
        if self._stream_options(stream).request_sets:
            return merge_unordered_bookmarks(base, bookmarks, done)
        return super().merge_partition_bookmarks(stream, base, bookmarks, done)

    def _stream_options(self, stream: StreamSpec | str) -> StreamOptions:
        name = stream if isinstance(stream, str) else stream.name
        for s in self.options.streams:
            if s.name == name:
                return s  # type: ignore[no-any-return]
        if isinstance(stream, StreamSpec) and stream.options.get("path") is not None:
            from ..config import validate_options

            opts = {
                k: v
                for k, v in stream.options.items()
                if k in StreamOptions.model_fields or k in ("schema", "primary_key", "key_properties")
            }
            return validate_options(
                StreamOptions, {"name": name, **opts}, plugin=f"adapter 'http', stream {name!r}"
            )
        known = ", ".join(s.name for s in self.options.streams) or "(none)"
        raise self.error(f"unknown stream {name!r}; known: {known}", stream=name)

    def discover(self) -> list[StreamSpec]:
        """The configured ``streams``; a stream without ``schema`` gets one inferred from the
        records of its first page (one request)."""
        specs = []
        for s in self.options.streams:
            schema = s.json_schema or self._schemas.get(s.name)
            if schema is None:
                schema = self._infer_stream_schema(s)
            rk = s.replication_key
            specs.append(
                StreamSpec(
                    name=s.name,
                    schema=schema,
                    key_properties=tuple(s.primary_keys),
                    replication_key=rk,
                    replication_keys=(rk,) if rk else (),
                    options=s.model_dump(exclude_none=True, exclude_defaults=True) | {"path": s.path},
                )
            )
        return specs

    def _infer_stream_schema(self, s: StreamOptions) -> JSONSchema:
        paginator = self._paginator(s.pagination if s.pagination is not None else self.options.pagination)
        where = f"adapter {self.name!r}, stream {s.name!r}"
        sets: list[dict[str, Any]] = [{}]
        if s.request_sets:  # the first page of the first set that has records
            from .http_partitions import expand_request_sets

            sets = expand_request_sets(s.request_sets, where)
        records: list[Record] = []
        for params in sets:
            paginator.reset()
            pr = self._first_request(s)
            pr.params.update(params)
            paginator.prepare(pr)
            _, records = self._fetch_page(pr, self._default_auth(s), s, where, probe=True)
            if records:
                break
        schema = infer_schema(records)
        self._schemas[s.name] = schema
        return schema

    def _first_request(self, s: StreamOptions) -> PageRequest:
        return PageRequest(
            method=s.method, url=s.path, params=dict(s.params), headers=dict(s.headers), json=s.body
        )

    def _fetch_page(
        self, pr: PageRequest, auth: Any, s: StreamOptions, where: str, plan: Any = None, probe: bool = False
    ) -> tuple[Response, list[Record]]:
        """One page: its response and records. With ``plan`` (a
        :class:`~dc_api_x.adapters._http_columns.PagePlan`) a body the plan decodes gives its
        :class:`~dc_api_x.adapters._http_columns.PageColumns` as the records (``Response.data`` then
        holds the body's other keys).

        ``probe``: a look at a stream's first page (schema discovery, page windows' total) that the
        read following it within :data:`FIRST_PAGE_REUSE` seconds takes instead of asking again
        (the same request: method, URL, params, headers, body); a read takes it once."""
        key = (
            s.name,
            pr.method,
            pr.url,
            sorted(pr.params.items()),
            sorted(pr.headers.items()),
            repr(pr.json),
        )
        kept = self._first_page
        if kept is not None and kept[0] == key and time.monotonic() - kept[1] <= FIRST_PAGE_REUSE:
            if not probe:
                self._first_page = None
            return kept[2], kept[3]
        response, records = self._fetch(pr, auth, s, where, plan)
        if probe:
            self._first_page = (key, time.monotonic(), response, records)
        return response, records

    def _fetch(
        self, pr: PageRequest, auth: Any, s: StreamOptions, where: str, plan: Any
    ) -> tuple[Response, list[Record]]:
        kwargs: dict[str, Any] = {}
        if pr.params:
            kwargs["params"] = pr.params
        if pr.headers:
            kwargs["headers"] = pr.headers
        if pr.json is not None:
            kwargs["json"] = pr.json
        counters = self.stream_retry_counters(s.name)
        resp, body = self._send(
            pr.method,
            pr.url,
            auth=auth,
            where=where,
            decode=True,
            counters=counters,
            decoder=plan.decode if plan is not None else None,
            lean=True,
            **kwargs,
        )
        shown = redact(str(resp.request.url))
        if resp.status_code >= 400:
            snippet = redact(resp.text[:200].replace("\n", " ")) if resp.content else ""
            raise HTTPStatusError(
                f"{where}: {pr.method} {shown}: HTTP {resp.status_code} {snippet}".rstrip(),
                url=shown,
                status_code=resp.status_code,
            )
        if body is ...:  # a 1xx/3xx answer (redirects not followed): decoded as before
            body = decode_json(resp.content, resp.headers) if resp.content else None
        elif plan is not None and type(body) is PageColumns:
            return self._response(resp, pr.method, body.data, shown), body  # type: ignore[return-value]
        records = extract_records(body, s.records_path, where=f"{where}: {pr.method} {shown}")
        return self._response(resp, pr.method, body, shown), records

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """Yield the stream's records, pages combined into batches of about
        :data:`~._http_read.BATCH_ROWS` records (``pages_per_batch``: that many pages each).

        Incremental streams (``replication_key``): the bookmark of ``state`` (or
        ``replication_start``) is sent as ``replication_param`` and records at or before it that
        were already delivered are dropped (``keys_at_value`` lists the primary keys delivered at
        exactly the bookmark value, or for a stream without primary keys the row hashes; without it
        every record ``<=`` the bookmark is dropped, except for keyless streams, which re-read
        the records at the value).
        ``Batch.bookmark`` is ``{"replication_key", "replication_key_value", "keys_at_value"}``;
        for streams not declared ``is_sorted`` only the last batch carries it. A stream with
        ``request_sets`` reads every set in turn (:mod:`.http_partitions`).
        """
        s = self._stream_options(stream)
        if s.request_sets:
            from .http_partitions import read_request_sets

            return read_request_sets(self, stream, state=state, columns=columns, limit=limit)
        from ._http_read import read_stream

        return read_stream(self, stream, state=state, columns=columns, limit=limit)


__all__ += ["extract_records", "split_path"]
