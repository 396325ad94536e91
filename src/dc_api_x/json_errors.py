"""Messages for JSON that does not decode: what is wrong, at which byte, in plain words.

orjson (yyjson) reports a lone *low* surrogate escape (``"\\udc81"``) as "invalid high surrogate"
and positions in characters, not bytes. :func:`describe_json_error` rewrites its message: the
surrogate problems named for what they are (with the escape quoted), and the position as line,
column and byte offset into the input. Used wherever dc-api-x decodes JSON it was given (HTTP
bodies, Singer lines, JSON-lines files). Imports nothing heavy.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["describe_json_error", "json_error_byte", "json_error_what"]

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_POSITION = re.compile(r": line \d+ column \d+ \(char \d+\)$")


def json_error_byte(exc: Any, data: bytes | str) -> int:
    """The byte offset in ``data`` (UTF-8) of the error of ``exc`` (a ``JSONDecodeError``, whose
    ``pos`` counts characters)."""
    pos = int(getattr(exc, "pos", 0) or 0)
    if isinstance(data, (bytes, bytearray, memoryview)):
        text = bytes(data).decode("utf-8", "surrogateescape")
        return len(text[:pos].encode("utf-8", "surrogateescape"))
    return len(data[:pos].encode("utf-8", "surrogatepass"))


def _surrogate(text: str, pos: int, msg: str) -> str | None:
    """The plain description of orjson's surrogate messages, reading the escapes at ``pos``."""
    first = _ESCAPE.match(text, pos)
    if first is None:
        return None
    code = int(first[1], 16)
    if msg.startswith("invalid high surrogate") and 0xDC00 <= code <= 0xDFFF:
        return f"lone low surrogate \\u{first[1]} (no high surrogate before it)"
    if msg.startswith("no low surrogate") and 0xD800 <= code <= 0xDBFF:
        return f"lone high surrogate \\u{first[1]} (no low surrogate after it)"
    if msg.startswith("invalid low surrogate") and 0xD800 <= code <= 0xDBFF:
        second = _ESCAPE.match(text, first.end())
        after = f"\\u{second[1]}" if second else "no \\u escape"
        return f"high surrogate \\u{first[1]} followed by {after}, not by a low surrogate"
    return None


def json_error_what(exc: Any, data: bytes | str) -> str:
    """What is wrong, without the position (orjson's surrogate messages named for what they are:
    a lone low surrogate is not an "invalid high surrogate")."""
    msg = _POSITION.sub("", str(getattr(exc, "msg", None) or exc))
    if "surrogate" in msg:
        pos = int(getattr(exc, "pos", 0) or 0)
        msg = _surrogate(_text(data), pos, msg) or msg
    return msg


def describe_json_error(exc: Any, data: bytes | str) -> str:
    """One line for a JSON decoding error of ``data``: ``"<what> at line L column C (byte K)"``
    (``exc`` is a ``json.JSONDecodeError``; orjson's is one)."""
    pos = int(getattr(exc, "pos", 0) or 0)
    text = _text(data)
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    what = json_error_what(exc, data)
    return f"{what} at line {line} column {column} (byte {json_error_byte(exc, data)})"


def _text(data: bytes | str) -> str:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data).decode("utf-8", "surrogateescape")
    return data
