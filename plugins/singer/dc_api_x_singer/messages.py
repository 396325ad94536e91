"""Singer message lines: exact decoding of what a tap writes, fast encoding of what a target reads.

Decoding keeps every value: integers of any size stay exact ``int`` (``orjson`` would turn one past
64 bits into a float), and a number literal that a ``float`` cannot hold exactly becomes a
``Decimal`` (a literal of at most 15 characters without exponent always fits; a longer one is a
float only when it is the shortest text of that float). Encoding writes RECORD lines with
``orjson`` (``datetime`` as RFC 3339, ``Decimal`` as the exact text: a JSON number in fields the
schema types as numbers, a string elsewhere, ``bytes`` as base64); NaN and infinities, which JSON
cannot carry, are an error naming the field instead of a silent ``null``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import orjson

from dc_api_x.exceptions import SchemaError

__all__ = ["RecordEncoder", "decode_line", "exact_number"]


def exact_number(text: str) -> float | Decimal:
    """A JSON number literal with a fraction or exponent, as a ``float`` when that is exact."""
    if len(text) < 16 and "e" not in text and "E" not in text:
        return float(text)  # at most 15 significant digits, no overflow: the float holds it
    value = float(text)
    try:
        if math.isfinite(value) and Decimal(repr(value)) == Decimal(text):
            return value
    except InvalidOperation:  # pragma: no cover - msgspec only passes valid literals
        pass
    return Decimal(text)


_decoder = msgspec.json.Decoder(float_hook=exact_number)


def decode_line(line: bytes) -> Any:
    """One decoded JSON line (raises ``msgspec.DecodeError`` when it is not JSON)."""
    return _decoder.decode(line)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} cannot be written as JSON")
        return format(value, "f")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def _plain(value: Any) -> Any:
    """A JSON-native copy of ``value`` for the slow path (Decimal kept: encoded as a number)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    return value


_slow_encoder = msgspec.json.Encoder(decimal_format="number")


def _numeric_fields(schema: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Top-level properties typed as numbers (and not as strings): their Decimals stay numbers."""
    out = []
    for name, prop in ((schema or {}).get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            continue
        t = prop.get("type")
        types = {t} if isinstance(t, str) else set(t or ())
        if types & {"number", "integer"} and "string" not in types:
            out.append(name)
    return tuple(out)


class RecordEncoder:
    """RECORD lines of one stream: ``encode(records)`` → bytes (one message per line)."""

    def __init__(
        self, stream: str, schema: Mapping[str, Any] | None, *, where: str, version: int | None = None
    ) -> None:
        self.stream = stream
        self.where = where
        head = b'{"type":"RECORD","stream":' + orjson.dumps(stream)
        if version is not None:  # the table version of an ACTIVATE_VERSION (full replace)
            head += b',"version":' + str(int(version)).encode()
        self._head = head + b',"record":'
        self._numeric = _numeric_fields(schema)

    def _prepare(self, rec: Mapping[str, Any]) -> Mapping[str, Any]:
        """``rec`` with Decimals of numeric fields as raw JSON numbers; non-finite numbers refused."""
        copy: dict[str, Any] | None = None
        for name in self._numeric:
            v = rec.get(name)
            cls = v.__class__
            if cls is float:
                if not math.isfinite(v):  # type: ignore[arg-type]
                    raise self._not_json(name, v)
            elif cls is Decimal:
                if not v.is_finite():  # type: ignore[union-attr]
                    raise self._not_json(name, v)
                if copy is None:
                    copy = dict(rec)
                copy[name] = orjson.Fragment(format(v, "f"))
        return rec if copy is None else copy

    def _not_json(self, name: str, value: Any) -> SchemaError:
        return SchemaError(
            f"{self.where}, field {name!r}: {value} cannot be written as JSON (no NaN or infinity "
            "in Singer messages)",
            adapter="singer",
            stream=self.stream,
        )

    def encode(self, records: Sequence[Mapping[str, Any]]) -> bytes:
        head, tail = self._head, b"}\n"
        dumps, prepare, numeric = orjson.dumps, self._prepare, self._numeric
        parts: list[bytes] = []
        append = parts.append
        for rec in records:
            append(head)
            try:
                append(dumps(prepare(rec) if numeric else rec, default=_json_default))
            except TypeError:
                append(self._slow(rec))
            append(tail)
        return b"".join(parts)

    def _slow(self, rec: Mapping[str, Any]) -> bytes:
        """Integers past 64 bits (and other values orjson refuses): msgspec, exact."""
        plain = {}
        for k, v in rec.items():
            if isinstance(v, Decimal) and k not in self._numeric:
                plain[k] = format(v, "f")
            else:
                plain[k] = _plain(v)
        try:
            return _slow_encoder.encode(plain)
        except (TypeError, ValueError, msgspec.EncodeError) as exc:
            raise SchemaError(
                f"{self.where}: a record cannot be written as JSON: {exc}",
                adapter="singer",
                stream=self.stream,
            ) from None
