"""Reading and decoding HTTP response bodies: a body cut short or JSON that does not decode is a
:class:`~dc_api_x.adapters._http_retry.BodyFault` (transient: the send loop retries it), whose
message says what happened — ``truncated body (got N of M bytes)`` or ``invalid JSON at byte K``.

Used by the HTTP adapter's send loop; an asyncio client uses :func:`body_fault` and
:func:`decode_json` around its own ``await response.aread()``.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

from ..json_errors import json_error_byte, json_error_what
from ..values import json_loads
from ._http_retry import BodyFault
from ._httpx import httpx

__all__ = ["body_fault", "decode_json", "is_json", "read_body"]


def body_fault(resp: httpx.Response, exc: Exception) -> BodyFault:
    """The :class:`BodyFault` for an error raised while reading ``resp``'s body: the connection
    dropped or stalled before the body was complete (``truncated_body``), or its content encoding
    did not decode (``undecodable_body``)."""
    if isinstance(exc, httpx.DecodingError):
        enc = resp.headers.get("content-encoding", "?")
        return BodyFault("undecodable_body", f"undecodable body (content-encoding {enc!r}): {exc}")
    got = resp.num_bytes_downloaded
    expected = resp.headers.get("content-length")
    if expected and expected.strip().isdigit():
        detail = f"truncated body (got {got} of {int(expected)} bytes)"
    else:
        detail = f"truncated body (got {got} bytes before the connection failed)"
    return BodyFault("truncated_body", f"{detail}: {type(exc).__name__}")


def read_body(resp: httpx.Response) -> bytes:
    """``resp.read()``; a body cut short raises :class:`BodyFault` (the response is closed). An
    answer of the lean path's wire layer is read at once and decoded by httpx's content decoder
    (:func:`~._http_wire.read_response`), without ``Response.read``'s stream layers."""
    try:
        if type(resp.stream) is _wire_stream() and not resp.is_stream_consumed:
            from ._http_wire import read_response

            return read_response(resp)
        return resp.read()
    except (httpx.TransportError, httpx.DecodingError) as exc:
        resp.close()
        raise body_fault(resp, exc) from None


def _wire_stream() -> type:
    """The wire layer's stream class, when its module is loaded (``_Never`` before: no answer can
    be one). Another thread may be importing the module right now (the partition workers' first
    requests), its class not defined yet: then no answer is one either."""
    wire = sys.modules.get("dc_api_x.adapters._http_wire")
    return getattr(wire, "WireStream", _Never)  # type: ignore[no-any-return]


class _Never:
    pass


def is_json(headers: Any) -> bool:
    """Whether a ``Content-Type`` says JSON (``application/json``, ``…+json``)."""
    ctype = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    return ctype == "application/json" or ctype.endswith("+json")


def decode_json(content: bytes, headers: Any) -> Any:
    """The decoded JSON body (``None`` when empty); JSON that does not decode raises
    :class:`BodyFault` ``invalid_json`` naming the byte, and whether the body ends early."""
    if not content or content.isspace():
        return None
    try:
        return json_loads(content)  # orjson; numbers a float64 would change keep every digit
    except orjson.JSONDecodeError as exc:
        size = len(content)
        at = json_error_byte(exc, content)
        what = json_error_what(exc, content)
        declared = headers.get("content-length")
        if at >= len(content.rstrip()):
            of = f", Content-Length {declared}" if declared else ""
            note = f"the body ends early: {size} bytes{of}"
        else:
            note = f"content-type {headers.get('content-type', '?')!r}, {size} bytes"
        raise BodyFault("invalid_json", f"invalid JSON at byte {at}: {what} ({note})") from None
