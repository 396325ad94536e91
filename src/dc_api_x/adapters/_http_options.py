"""Options of the HTTP adapter (pydantic models): timeouts, retries, pool limits, streams.

Imported by :mod:`dc_api_x.adapters._http` (the adapter) and reusable by other clients of the
same request path (an async client takes the same options). Imports no HTTP library.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AliasChoices, Field, field_validator

from ..ext.adapters import AdapterOptions

__all__ = ["HttpOptions", "LimitsOptions", "RetryOptions", "StreamOptions", "TimeoutOptions"]


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
    request_sets: list[dict[str, Any]] | dict[str, Any] | None = Field(
        default=None,
        description="independent request sets (query params each, or a range split), read as partitions",
    )
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
    pages_per_batch: int | None = Field(
        default=None, ge=1, description="pages per yielded Batch (default: combined up to 5,000 records)"
    )
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
