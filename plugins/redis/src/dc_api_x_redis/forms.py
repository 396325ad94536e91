"""Light text helpers (no pyarrow, no redis-py): JSON forms of values, keys and names as text,
SCAN patterns."""

from __future__ import annotations

from typing import Any

import orjson

from dc_api_x.exceptions import SchemaError
from dc_api_x.values import json_default

__all__ = ["dumps", "glob_escape", "show", "text"]


def dumps(value: Any) -> bytes:
    """JSON text of a record or value in the dc-api-x JSON forms (decimals and bytes as strings)."""
    return orjson.dumps(value, default=json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def glob_escape(text: str) -> str:
    """``text`` as a SCAN MATCH pattern that matches only itself."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def show(key: bytes) -> str:
    """A key for an error message."""
    return repr(key.decode(errors="backslashreplace"))


def text(value: bytes | str, stream: str) -> str:
    """UTF-8 text of a key, field name or channel.

    :raises SchemaError: naming the stream, when it is not UTF-8.
    """
    if isinstance(value, str):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise SchemaError(
            f"adapter 'redis', stream {stream!r}: {value[:60]!r} is not UTF-8 text",
            adapter="redis",
            stream=stream,
        ) from None
