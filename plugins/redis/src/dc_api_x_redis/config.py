"""The pydantic configuration of the ``redis`` adapter and of the ``redis_cache`` request hook.

Light on purpose (pydantic and the dc-api-x core only): the plugin module imports it while it
registers, so neither ``redis`` nor ``pyarrow`` is imported here.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from dc_api_x.config import OptionsModel
from dc_api_x.ext.adapters import AdapterOptions
from dc_api_x.ext.hooks import HookOptions

__all__ = [
    "DEFAULT_URL",
    "RedisCacheConfig",
    "RedisConfig",
    "RedisStreamConfig",
    "StreamType",
    "default_timeout",
    "default_url",
]

#: The server used when neither the ``url`` option nor an environment variable names one.
DEFAULT_URL = "redis://127.0.0.1:6379/0"

StreamType = Literal["hash", "json", "string", "stream", "pubsub"]


def default_url() -> str:
    """``DC_API_X_REDIS_URL``, else ``REDIS_URL``, else :data:`DEFAULT_URL`."""
    return os.environ.get("DC_API_X_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_URL


def default_timeout() -> float:
    """``DC_API_X_REDIS_TIMEOUT`` (seconds), else 30."""
    raw = os.environ.get("DC_API_X_REDIS_TIMEOUT", "").strip()
    try:
        value = float(raw) if raw else 30.0
    except ValueError:
        raise ValueError(f"DC_API_X_REDIS_TIMEOUT={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ValueError(f"DC_API_X_REDIS_TIMEOUT={raw!r} must be greater than 0")
    return value


class RedisStreamConfig(OptionsModel):
    """One entry of ``streams``: what a stream is in Redis, for reading and for writing."""

    name: str = Field(..., min_length=1, description="the stream name")
    type: StreamType | None = Field(
        None,
        description="hash, json (a JSON document in a string key), string, stream (XADD/XRANGE) or "
        "pubsub; default: the adapter's `type` option",
    )
    key: str | None = Field(
        None,
        description="hash/json/string: the key template, e.g. 'user:{id}' ({field} is a record field, "
        "{_stream} the stream name); stream: the Redis stream key (default: the stream name)",
    )
    pattern: str | None = Field(
        None, description="reading hash/json/string: the SCAN MATCH pattern (default: from `key`)"
    )
    schema_: dict[str, Any] | str | None = Field(
        None,
        alias="schema",
        description="JSON Schema of a record, {field: schema}, or a JSON/YAML file; it types the values "
        "read back (default: the catalog entry a writer left, else a sample: strings)",
    )
    primary_keys: list[str] | None = Field(None, description="primary-key fields of the stream")
    replication_key: str | None = Field(
        None, description="a field to read incrementally by (hash/json/string: full scan, new rows only)"
    )
    ttl: int | None = Field(None, ge=1, description="writing: expire written keys after this many seconds")
    maxlen: int | None = Field(None, ge=1, description="writing a stream: XADD MAXLEN (trim)")
    approximate: bool = Field(True, description="writing a stream: trim with MAXLEN ~ (faster)")
    channels: list[str] = Field(default_factory=list, description="pubsub reading: SUBSCRIBE channels")
    patterns: list[str] = Field(default_factory=list, description="pubsub reading: PSUBSCRIBE patterns")
    channel: str | None = Field(
        None, description="pubsub writing: the channel template (default: the record's _channel field)"
    )
    message_format: Literal["json", "text"] = Field(
        "json", description="pubsub: json (a message is a JSON object: one record) or text"
    )
    max_messages: int | None = Field(None, ge=1, description="pubsub reading: stop after this many messages")
    max_seconds: float | None = Field(None, gt=0, description="pubsub reading: stop after this many seconds")

    @field_validator("primary_keys", mode="before")
    @classmethod
    def _one_key(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class RedisConfig(AdapterOptions):
    """Configuration of the ``redis`` adapter (validated by pydantic: unknown options are errors)."""

    url: str = Field(
        default_factory=default_url,
        description="redis:// or rediss:// URL (default: $DC_API_X_REDIS_URL, $REDIS_URL, "
        "redis://127.0.0.1:6379/0)",
    )
    username: str | None = Field(None, description="ACL user name (or in the URL)")
    password: SecretStr | None = Field(None, description="password (or in the URL)")
    socket_timeout: float = Field(
        default_factory=default_timeout, gt=0, description="seconds (default: $DC_API_X_REDIS_TIMEOUT or 30)"
    )
    streams: list[RedisStreamConfig] = Field(
        default_factory=list, description="the streams (names alone take the defaults below)"
    )
    type: StreamType = Field("hash", description="the type of streams that do not set one")
    key: str | None = Field(
        None,
        description="writing: the key template of streams that do not set one (default: "
        "'{_stream}:' + the primary-key fields, or the record's _key field)",
    )
    ttl: int | None = Field(None, ge=1, description="writing: expire keys after this many seconds")
    key_field: str | None = Field(
        "_key", description="the record field holding the Redis key (null: none is added when reading)"
    )
    value_field: str = Field("value", description="string streams: the record field holding the value")
    id_field: str | None = Field("_id", description="stream entries: the record field holding the entry id")
    channel_field: str | None = Field("_channel", description="pubsub: the record field holding the channel")
    batch_size: int = Field(10_000, ge=1, description="records per read batch and per write pipeline")
    scan_count: int = Field(1_000, ge=1, description="the COUNT hint of each SCAN call")
    catalog_key: str | None = Field(
        "dcapix:streams",
        description="hash where writers record each stream's schema and key template, and readers "
        "discover them (null: off)",
    )
    sample_size: int = Field(100, ge=1, description="keys or entries sampled to discover a schema")
    extra_fields: Literal["error", "ignore"] = Field(
        "error",
        description="reading: a hash field that the stream's schema does not list is an error, or ignored",
    )

    @field_validator("streams", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> RedisConfig:
        seen: set[str] = set()
        for s in self.streams:
            if s.name in seen:
                raise ValueError(f"stream {s.name!r} is configured twice")
            seen.add(s.name)
        return self


class RedisCacheConfig(HookOptions):
    """Configuration of the ``redis_cache`` request hook."""

    url: str = Field(default_factory=default_url, description="the Redis server (as the adapter's `url`)")
    ttl: int = Field(300, ge=1, description="seconds a cached response lives")
    prefix: str = Field("dcapix:http-cache:", description="key prefix of the cached responses")
    methods: list[str] = Field(
        default_factory=lambda: ["GET"], description="methods whose responses are cached"
    )
    statuses: list[int] = Field(default_factory=lambda: [200], description="statuses that are cached")
    vary_headers: list[str] = Field(
        default_factory=lambda: ["accept", "accept-language", "authorization"],
        description="request headers that are part of the cache key",
    )
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=0, description="larger bodies are not cached")
    socket_timeout: float = Field(default_factory=default_timeout, gt=0, description="seconds")

    @field_validator("methods")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [m.upper() for m in v]

    @field_validator("vary_headers")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [h.lower() for h in v]
