"""The HTTP adapter (httpx): requests with retries and auth, paginated incremental stream reads.

Reached through the registry only (``create_adapter({"adapter": "http", …})``); the plugin module
:mod:`dc_api_x.adapters.http` registers it lazily so that httpx is imported on first use.

Why one module of about 900 lines: it is one concept, the HTTP adapter. Its request side (what
``ApiClient`` uses) and its read side (paginated, incremental streams) share one httpx client, the
retry policy, auth, redaction and the options models; half the module is the :class:`HttpAdapter`
class itself, and the pieces around it (options, the retry-after parser, the bookmark wrapper on
:class:`~dc_api_x.bookmarks.BoundaryBookmark`) are small and used by it only.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
from pydantic import AliasChoices, Field, field_validator

from ..bookmarks import BoundaryBookmark, OrderError
from ..exceptions import AdapterError, ConfigError, HTTPStatusError, ResponseDecodeError, TransportError
from ..ext.adapters import AdapterOptions, ProtocolAdapter, Response
from ..ext.auth import AuthProvider
from ..ext.pagination import MISSING, PageRequest, Paginator, extract_records, split_path
from ..ext.partitions import Partition
from ..inference import infer_schema as _infer
from ..logs import RedactingFilter, is_secret_key, redact, register_secret
from ..prefetch import Prefetcher
from ..types import Batch, JSONSchema, Record, StreamSpec
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


def _quiet_httpx_loggers() -> None:
    """httpx logs every request at INFO with its full URL (API keys in query strings included):
    redact its records and, unless the application set a level, keep it at WARNING (our
    ``logging`` request hook logs requests, redacted, at DEBUG)."""
    for name in ("httpx", "httpcore"):
        lg = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in lg.filters):
            lg.addFilter(RedactingFilter())
        if lg.level == logging.NOTSET:
            lg.setLevel(logging.WARNING)


_quiet_httpx_loggers()


# ------------------------------------------------------------------------------------ options
class TimeoutOptions(AdapterOptions):
    """Timeouts in seconds (``None``: no limit)."""

    connect: float | None = Field(default=10.0, gt=0)
    read: float | None = Field(default=60.0, gt=0)
    write: float | None = Field(default=60.0, gt=0)
    pool: float | None = Field(default=10.0, gt=0)


class RetryOptions(AdapterOptions):
    """Retries of 429 / 5xx answers and transport errors, with exponential backoff and jitter."""

    max_attempts: int = Field(default=5, ge=1, description="attempts in total (1: no retry)")
    backoff_factor: float = Field(default=0.5, ge=0, description="first backoff (s), doubled each time")
    max_backoff: float = Field(default=30.0, ge=0)
    jitter: bool = Field(default=True, description="multiply each backoff by a random factor in [0.5, 1)")
    max_retry_after: float = Field(default=120.0, ge=0, description="cap of a server's Retry-After wait")
    statuses: list[int] = Field(default_factory=lambda: [429, 500, 502, 503, 504])
    methods: list[str] = Field(
        default_factory=lambda: ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"],
        description="methods retried on 5xx and read errors (429 and connect errors: every method)",
    )

    @field_validator("methods")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [m.upper() for m in v]


class LimitsOptions(AdapterOptions):
    """Connection-pool limits."""

    max_connections: int | None = Field(default=20, ge=1)
    max_keepalive_connections: int | None = Field(default=10, ge=0)
    keepalive_expiry: float | None = Field(default=5.0, ge=0)


class StreamOptions(AdapterOptions):
    """One stream of the ``streams`` option."""

    name: str = Field(min_length=1)
    path: str = Field(default="", description="path relative to base_url, or an absolute URL")
    method: str = "GET"
    params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(default=None, description="JSON body (for POST searches)")
    records_path: str = Field(default="", description="dotted path of the record list ('' = the body)")
    primary_keys: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("primary_keys", "primary_key", "key_properties")
    )
    replication_key: str | None = None
    replication_param: str | None = Field(default=None, description="query param receiving the bookmark")
    replication_start: Any = Field(default=None, description="lower bound when there is no state yet")
    is_sorted: bool = Field(default=False, description="records come sorted by replication_key")
    pagination: dict[str, Any] | str | None = None
    auth: dict[str, Any] | str | None = None
    json_schema: dict[str, Any] | None = Field(
        default=None, validation_alias=AliasChoices("schema", "json_schema")
    )
    pages_per_batch: int | None = Field(default=None, ge=1)
    transforms: list[Any] = Field(default_factory=list, description="applied by callers (runner, tap)")

    @field_validator("primary_keys", mode="before")
    @classmethod
    def _one_key(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        return v.upper()


class HttpOptions(AdapterOptions):
    """Options of the ``http`` adapter."""

    base_url: str = Field(default="", description="prefix of relative paths (http:// or https://)")
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict, description="query params sent with every request")
    timeout: TimeoutOptions = Field(default_factory=TimeoutOptions, description="seconds, or per phase")
    retries: RetryOptions = Field(default_factory=RetryOptions, description="max attempts, or options")
    http2: bool = False
    verify: bool | str = Field(default=True, description="verify TLS (or a CA bundle path)")
    follow_redirects: bool = True
    limits: LimitsOptions = Field(default_factory=LimitsOptions)
    auth: dict[str, Any] | str | None = Field(default=None, description="{type: NAME, …} of an auth provider")
    pagination: dict[str, Any] | str | None = Field(default=None, description="default paginator of streams")
    streams: list[StreamOptions] = Field(default_factory=list)
    pages_per_batch: int = Field(default=1, ge=1, description="pages per yielded Batch")
    prefetch: bool = Field(
        default=True,
        description="fetch the next page while the current one is consumed "
        "when its request does not depend on the body",
    )
    user_agent: str | None = None
    rate_limit: float | None = Field(
        default=None, gt=0, description="requests per second per host, shared by all workers of the process"
    )

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"connect": v, "read": v, "write": v, "pool": v}
        return v

    @field_validator("retries", mode="before")
    @classmethod
    def _retries(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return {"max_attempts": v}
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.match(r"(?i)^https?://", v):
            raise ValueError("must start with http:// or https://")
        return v

    @field_validator("streams")
    @classmethod
    def _unique(cls, v: list[StreamOptions]) -> list[StreamOptions]:
        seen: set[str] = set()
        for s in v:
            if s.name in seen:
                raise ValueError(f"duplicate stream name {s.name!r}")
            seen.add(s.name)
        return v


# ------------------------------------------------------------------------------------ helpers
def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP-date); ``None`` if absent
    or unreadable. Never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def infer_schema(records: Sequence[Mapping[str, Any]]) -> JSONSchema:
    """A JSON Schema inferred from sample records (:func:`dc_api_x.inference.infer_schema`, the
    HTTP flavour): every field is nullable (fields come and go between pages) and nested objects
    and arrays are ``x-json`` blobs; integers, numbers, booleans, strings with ``date-time`` /
    ``date`` detection (naive date-times get ``x-timezone: false``); conflicting types become an
    ``x-json`` blob (nothing is coerced)."""
    return _infer(records, nested=False, all_nullable=True)


class _AuthBridge(httpx.Auth):
    """Presents a :class:`~dc_api_x.ext.auth.AuthProvider` to httpx."""

    def __init__(self, provider: AuthProvider) -> None:
        self.provider = provider
        self.requires_request_body = provider.requires_request_body
        self.requires_response_body = provider.requires_response_body

    def auth_flow(self, request: httpx.Request) -> Any:
        return self.provider.auth_flow(request)


class StreamedResponse:
    """What :meth:`HttpAdapter.stream` yields: status, headers, redacted URL; iterate for chunks."""

    def __init__(self, raw: httpx.Response, url: str, chunk_size: int) -> None:
        self.raw = raw
        self.url = url
        self.status_code = raw.status_code
        self.headers = raw.headers
        self.chunk_size = chunk_size

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        yield from self.raw.iter_bytes(chunk_size or self.chunk_size)

    def iter_lines(self) -> Iterator[str]:
        yield from self.raw.iter_lines()

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_bytes()

    def __repr__(self) -> str:
        return f"<StreamedResponse [{self.status_code}] {self.url}>"


_NO_AUTH: Any = object()
_ssl_contexts: dict[Any, Any] = {}
_ssl_lock = threading.Lock()


def _ssl_context(verify: bool | str) -> Any:
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
        self._retry: RetryOptions = opts.retries
        for key, value in opts.headers.items():
            if is_secret_key(key):
                register_secret(value.split(" ", 1)[-1])
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._auth_cache: dict[str, Any] = {}
        self._providers: list[AuthProvider] = []
        self._schemas: dict[str, JSONSchema] = {}
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
        opts: HttpOptions = self.options
        if self._closed:
            raise self.error("the adapter is closed")
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
        return httpx.Client(
            base_url=opts.base_url,
            headers=headers,
            params=opts.params or None,
            timeout=timeout,
            verify=_ssl_context(opts.verify),
            http2=opts.http2,
            follow_redirects=opts.follow_redirects,
            limits=httpx.Limits(
                max_connections=lim.max_connections,
                max_keepalive_connections=lim.max_keepalive_connections,
                keepalive_expiry=lim.keepalive_expiry,
            ),
        )

    def close(self) -> None:
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
            return _AuthBridge(spec)
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
                _AuthBridge(provider) if isinstance(provider, AuthProvider) else provider
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
    def _backoff(self, attempt: int) -> float:
        r = self._retry
        delay = min(r.max_backoff, r.backoff_factor * (2 ** (attempt - 1)))
        if r.jitter:
            delay *= 0.5 + random.random() * 0.5
        return delay

    def _send(
        self,
        method: str,
        url: str,
        *,
        auth: Any = None,
        stream: bool = False,
        where: str = "",
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with retries; returns the final ``httpx.Response`` (any non-retryable status).

        :raises TransportError: a transport error that is not retryable or persisted.
        :raises HTTPStatusError: a retryable status (429, 5xx) still there after the last attempt.
        """
        client = self.client
        r = self._retry
        method = method.upper()
        idempotent = method in r.methods
        attempt = 0
        prefix = where or f"adapter {self.name!r}"
        while True:
            attempt += 1
            request = client.build_request(method, url, **kwargs)
            limiter = host_limiter(request.url)  # shared by every worker of the process (http_limits.py)
            limiter.acquire(self.options.rate_limit)
            try:
                resp = client.send(request, auth=auth, stream=stream)
            except httpx.TransportError as exc:
                shown = redact(str(request.url))
                connect = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
                if (connect or idempotent) and attempt < r.max_attempts:
                    delay = self._backoff(attempt)
                    log.warning(
                        "%s: %s %s: %s; retry %d/%d in %.2fs",
                        prefix,
                        method,
                        shown,
                        type(exc).__name__,
                        attempt,
                        r.max_attempts - 1,
                        delay,
                    )
                    self.sleep(delay)
                    continue
                raise TransportError(
                    f"{prefix}: {method} {shown}: {type(exc).__name__}: {redact(exc) or 'no detail'} "
                    f"(attempt {attempt} of {r.max_attempts})",
                    url=shown,
                ) from None
            status = resp.status_code
            if status in r.statuses and (status == 429 or idempotent):
                shown = redact(str(request.url))
                if attempt >= r.max_attempts:
                    if stream:
                        resp.close()
                    raise HTTPStatusError(
                        f"{prefix}: {method} {shown}: HTTP {status} after {attempt} attempt(s)",
                        url=shown,
                        status_code=status,
                    )
                wait = parse_retry_after(resp.headers.get("retry-after"))
                delay = min(wait, r.max_retry_after) if wait is not None else self._backoff(attempt)
                if wait is not None:
                    limiter.pause(delay)  # the other workers of this host wait too
                resp.close()
                log.warning(
                    "%s: %s %s: HTTP %d; retry %d/%d in %.2fs",
                    prefix,
                    method,
                    shown,
                    status,
                    attempt,
                    r.max_attempts - 1,
                    delay,
                )
                self.sleep(delay)
                continue
            return resp

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
        resp = self._send(method, path, auth=resolved, **kwargs)
        out = self._response(resp, method.upper())
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
        resp = self._send(method, path, auth=resolved, stream=True, **kwargs)
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
        """Windows of pages (offset / page-number pagination with a known total), see
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
        """The pages of one window, one :class:`Batch` per page."""
        from .http_partitions import read_window

        return read_window(self, stream, partition, columns=columns, limit=limit)

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
        pr = self._first_request(s)
        paginator.prepare(pr)
        _, records = self._fetch_page(pr, self._default_auth(s), s, where)
        schema = infer_schema(records)
        self._schemas[s.name] = schema
        return schema

    def _first_request(self, s: StreamOptions) -> PageRequest:
        return PageRequest(
            method=s.method, url=s.path, params=dict(s.params), headers=dict(s.headers), json=s.body
        )

    def _fetch_page(
        self, pr: PageRequest, auth: Any, s: StreamOptions, where: str
    ) -> tuple[Response, list[Record]]:
        kwargs: dict[str, Any] = {}
        if pr.params:
            kwargs["params"] = pr.params
        if pr.headers:
            kwargs["headers"] = pr.headers
        if pr.json is not None:
            kwargs["json"] = pr.json
        resp = self._send(pr.method, pr.url, auth=auth, where=where, **kwargs)
        shown = redact(str(resp.request.url))
        if resp.status_code >= 400:
            snippet = redact(resp.text[:200].replace("\n", " ")) if resp.content else ""
            raise HTTPStatusError(
                f"{where}: {pr.method} {shown}: HTTP {resp.status_code} {snippet}".rstrip(),
                url=shown,
                status_code=resp.status_code,
            )
        content = resp.content
        try:
            body = orjson.loads(content) if content else None
        except orjson.JSONDecodeError as exc:
            ctype = resp.headers.get("content-type", "?")
            raise ResponseDecodeError(
                f"{where}: {pr.method} {shown}: expected JSON, got {ctype!r} ({len(content)} bytes): {exc}",
                url=shown,
            ) from None
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
        """Yield the stream's records, one :class:`Batch` per page (``pages_per_batch``).

        Incremental streams (``replication_key``): the bookmark of ``state`` (or
        ``replication_start``) is sent as ``replication_param`` and records at or before it that
        were already delivered are dropped (``keys_at_value`` lists the primary keys delivered at
        exactly the bookmark value, or for a stream without primary keys the row hashes; without it
        every record ``<=`` the bookmark is dropped, except for keyless streams, which re-read
        the records at the value).
        ``Batch.bookmark`` is ``{"replication_key", "replication_key_value", "keys_at_value"}``;
        for streams not declared ``is_sorted`` only the last batch carries it.
        """
        s = self._stream_options(stream)
        name = s.name
        where = f"adapter {self.name!r}, stream {name!r}"
        rk = (
            stream.replication_key
            if isinstance(stream, StreamSpec) and stream.replication_key
            else s.replication_key
        )
        pks = (
            tuple(stream.key_properties)
            if isinstance(stream, StreamSpec) and stream.key_properties
            else tuple(s.primary_keys)
        )
        schema: JSONSchema | None = None
        if isinstance(stream, StreamSpec) and stream.schema.get("properties"):
            schema = stream.schema
        else:
            schema = s.json_schema or self._schemas.get(name)
        # an inferred schema (no explicit `schema` option) grows with fields first seen later:
        # a field missing from the batch schema would be dropped by the Arrow view
        widen = s.json_schema is None
        cols = list(columns) if columns is not None else None
        if cols is not None and schema is not None:
            props = schema.get("properties") or {}
            schema = {**schema, "properties": {c: props[c] for c in cols if c in props}}

        paginator = self._paginator(s.pagination if s.pagination is not None else self.options.pagination)
        paginator.reset()
        auth = self._default_auth(s)
        base = self._first_request(s)

        # -- incremental setup
        tracker = _Bookmark(rk, pks, where, s.is_sorted) if rk else None
        if tracker is not None:
            tracker.start(state, s.replication_start)
            if s.replication_param and tracker.lower is not MISSING:
                base.params[s.replication_param] = tracker.lower

        per_batch = s.pages_per_batch or self.options.pages_per_batch
        remaining = limit
        pending: list[Record] = []
        pages_in = 0
        held: list[Batch] = []  # unsorted incremental streams: the bookmark goes on the last batch

        def emit(records: list[Record]) -> Iterator[Batch]:
            if not records:
                return
            if tracker is None:
                yield Batch(records=records, schema=schema)
            elif tracker.sorted:
                yield Batch(records=records, schema=schema, bookmark=tracker.bookmark())
            else:
                if held:
                    yield held.pop()
                held.append(Batch(records=records, schema=schema))

        if remaining is not None and remaining <= 0:
            return
        for _response, page in self._pages(
            paginator, base, auth, s, where, max_records=limit if tracker is None else None
        ):
            # the limit is applied inside filter(): the bookmark must not count undelivered records
            records = tracker.filter(page, remaining) if tracker is not None else page
            if remaining is not None:
                if len(records) > remaining:
                    records = records[:remaining]
                remaining -= len(records)
            if cols is not None:
                records = [{c: r[c] for c in cols if c in r} for r in records]
            if schema is None and records:
                schema = infer_schema(records)
                if cols is None:  # a projection is not the stream's schema
                    self._schemas[name] = schema
            elif widen and records and cols is None:
                schema = _widen(schema, records, where)
            if pending:
                pending.extend(records)
            else:
                pending = records
            pages_in += 1
            done = remaining is not None and remaining <= 0
            if pages_in >= per_batch or done:
                yield from emit(pending)
                pending, pages_in = [], 0
            if done:
                break
        yield from emit(pending)
        if held:
            assert tracker is not None
            last = held.pop()
            last.bookmark = tracker.bookmark()
            yield last

    def _pages(
        self,
        paginator: Paginator[Any],
        base: PageRequest,
        auth: Any,
        s: StreamOptions,
        where: str,
        max_records: int | None = None,
    ) -> Iterator[tuple[Response, list[Record]]]:
        """Drive ``paginator``: yields ``(response, records)`` per page (records cut to max_items).

        With the ``prefetch`` option the pages are fetched by a producer thread, one or two pages
        ahead of the consumer (in order; errors re-raised here). ``max_records``: stop fetching
        once that many records were produced (a ``limit`` with no filtering).
        """
        if not self.options.prefetch:
            yield from self._page_loop(paginator, base, auth, s, where, max_records)
            return
        yield from Prefetcher(
            lambda: self._page_loop(paginator, base, auth, s, where, max_records),
            depth=2,
            name=f"dcapix-http-{s.name}",
        )

    def _page_loop(
        self,
        paginator: Paginator[Any],
        base: PageRequest,
        auth: Any,
        s: StreamOptions,
        where: str,
        max_records: int | None,
    ) -> Iterator[tuple[Response, list[Record]]]:
        produced = 0
        while not paginator.finished:
            pr = PageRequest(base.method, base.url, dict(base.params), dict(base.headers), base.json)
            paginator.prepare(pr)
            response, records = self._fetch_page(pr, auth, s, where)
            records = paginator.clip(records)
            paginator.advance(response, records)
            yield response, records
            produced += len(records)
            if max_records is not None and produced >= max_records:
                return


def _widen(schema: JSONSchema | None, records: list[Record], where: str) -> JSONSchema | None:
    """``schema`` plus the fields of ``records`` it does not have (types inferred from them)."""
    if schema is None:
        return None
    props = schema.get("properties") or {}
    if set().union(*records) <= props.keys():  # C-level: ~0.1 us per record
        return schema
    new = infer_schema([{k: v for k, v in r.items() if k not in props} for r in records])["properties"]
    log.info("%s: new field(s) %s added to the inferred schema", where, ", ".join(sorted(new)))
    return {**schema, "properties": {**props, **new}}


class _Bookmark:
    """Incremental-read bookkeeping of the HTTP adapter on the shared
    :class:`~dc_api_x.bookmarks.BoundaryBookmark`: records with a null replication value are kept,
    a state without ``keys_at_value`` drops every record at its value (keyless streams: keeps
    them; their ``keys_at_value`` are row hashes), ``replication_start`` is an inclusive lower
    bound, ``is_sorted`` streams must not go backwards."""

    def __init__(self, rk: str, pks: tuple[str, ...], where: str, is_sorted: bool) -> None:
        self.rk = rk
        self.pks = pks
        self.where = where
        self.sorted = is_sorted
        self.lower: Any = MISSING  # value sent to the server / lower bound
        self.core = BoundaryBookmark(rk, pks, ties="drop")

    def start(self, state: Mapping[str, Any] | None, replication_start: Any) -> None:
        # without primary keys the keys are row hashes; a keyless state without them (written
        # before row hashes) re-delivers the records at its value (at-least-once, never a loss)
        self.core = BoundaryBookmark.from_state(state, self.rk, self.pks, ties="drop")
        if self.core.has_start:
            self.lower = self.core.start_value
        elif replication_start is not None:
            self.lower = replication_start
            self.core.set_lower_bound(replication_start)

    def filter(self, records: list[Record], limit: int | None = None) -> list[Record]:
        """The records not delivered before (at most ``limit``), tracking the max value."""
        try:
            return self.core.filter_records(records, limit, keep_nulls=True, strict_order=self.sorted)
        except OrderError as exc:
            raise AdapterError(
                f"{self.where}, field {self.rk!r}: records are not sorted (value {exc.value!r} after "
                f"{exc.previous!r}) but the stream is declared is_sorted; set is_sorted: false"
            ) from None
        except TypeError as exc:
            raise AdapterError(
                f"{self.where}, field {self.rk!r}: replication values cannot be compared: {exc}"
            ) from None

    def bookmark(self) -> dict[str, Any] | None:
        return self.core.to_state()


__all__ += ["extract_records", "split_path"]
