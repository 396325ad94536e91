"""Value forms, in one place (bottom layer: the standard library and orjson; pyarrow only lazily).

* **JSON forms** — how a Python value that JSON has no type for is written:

  ==========================================  ============================================
  Python value                                JSON form
  ==========================================  ============================================
  ``datetime`` / ``date`` / ``time``          ISO 8601 text (``value.isoformat()``)
  ``Decimal``                                 plain notation, never an exponent
                                              (``Decimal("1E-10")`` → ``"0.0000000001"``)
  ``bytes`` / ``bytearray`` / ``memoryview``  base64 text
  ``uuid.UUID``                               its canonical text
  ==========================================  ============================================

  :func:`json_form` converts one value (bookmarks, primary keys at a bookmark, row hashes);
  :func:`json_default` is the ``default=`` of :func:`json.dumps` / :func:`orjson.dumps` for the JSON
  the toolkit *stores or writes as data* (state, JSON columns, JSONL files);
  :func:`singer_json_default` is the one for the RECORD messages the tap *emits*, which also
  accepts the Python types a source may yield that have no exact JSON form (see its docstring).
  The two differ on purpose and only there.

* **ISO date-time text** — :func:`parse_datetime` and :func:`parse_time` read ISO 8601 text with
  ``Z`` and ``z`` alike and refuse digits below the microsecond that are not zero (Python's
  ``fromisoformat`` would drop them silently).

* **Decimals** — :data:`DECIMAL_CONTEXT` (exact arithmetic and rescaling up to 160 digits: Python's
  default context has 28 and would round) and :func:`fit_decimal` (a decimal at a column's scale, or
  an error: never rounded).

* **Exact JSON numbers** — orjson decodes a number with a fraction or an exponent (and an integer
  beyond 64 bits) as a float64, which keeps 15 to 17 significant digits. :func:`has_long_digit_run`
  finds cheaply (a byte translation and a substring search) whether some bytes may hold a number
  with more; :func:`exact_json_loads` decodes such a document keeping every digit (a
  :class:`JSONNumber`, a Decimal, where a float64 would change the number, ``int`` at any size), and
  :func:`has_inexact_numbers` says whether a decoded value holds such a number; :func:`json_loads`
  is orjson with that check (the decode every JSON reader of the project uses).

* **Arrow errors** — :func:`arrow_errors` is the tuple of exceptions Arrow (and the Python values
  handed to it) raise for a value that does not fit; :func:`error_line` turns one into the single
  line a message quotes.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import json
import re
import uuid
from decimal import Decimal
from typing import Any

__all__ = [
    "DECIMAL_CONTEXT",
    "JSONNumber",
    "arrow_errors",
    "decimal_text",
    "error_line",
    "exact_json_loads",
    "fit_decimal",
    "has_floats",
    "has_inexact_numbers",
    "has_long_digit_run",
    "json_default",
    "json_form",
    "json_loads",
    "may_change_numbers",
    "needs_exact_decode",
    "parse_datetime",
    "parse_time",
    "singer_json_default",
]

#: Decimal context for exact arithmetic and rescaling: decimal256 holds 76 digits, and Python's default
#: context (28 digits) would round silently. Inexact results trap instead of rounding.
DECIMAL_CONTEXT = decimal.Context(
    prec=160, traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
)


# ------------------------------------------------------------------------------------ exact JSON numbers
#: Digits and "." → b"0", every other byte → b" ": a number token with 16+ significant digits leaves
#: a run of at least 16 b"0" (a run inside a string only costs an exact decode of its line).
_DIGITS = bytes(0x30 if (0x30 <= b <= 0x39 or b == 0x2E) else 0x20 for b in range(256))
_LONG_RUN = b"0" * 16
#: A number token with an exponent of three or more digits (``1e-400`` decodes to ``0.0``, ``1e400``
#: overflows): such a number may be beyond a float64's range however few digits it has.
_BIG_EXPONENT = re.compile(rb"[0-9.][eE][-+]?[0-9]{3}")
_EXPONENT_TOKEN = re.compile(rb"-?[0-9.]+[eE][-+]?[0-9]{3,}")
#: The largest magnitude below which every integer is exact in a float64.
_FLOAT_EXACT_INT = 2**53
#: :data:`_DIGITS`, except that "e" / "E" → b"e": one translation answers both scans — a run of 16+
#: b"0" (:data:`_LONG_RUN`), and b"0e" (a digit or "." before an exponent mark), without which
#: :data:`_BIG_EXPONENT` cannot match (its regex search costs 3x orjson's decode of the same bytes;
#: the substring search a twentieth of it).
_SCAN = bytes(0x65 if b in b"eE" else _DIGITS[b] for b in range(256))


def _big_exponent(data: bytes, scanned: bytes) -> bool:
    """:data:`_BIG_EXPONENT` found in ``data`` (``scanned``: ``data.translate(_SCAN)``)."""
    return b"0e" in scanned and _BIG_EXPONENT.search(data) is not None


def has_long_digit_run(data: bytes | str) -> bool:
    """Whether ``data`` holds 16 or more digits (a "." may sit among them) in a row, or a number with
    an exponent of three or more digits: a number that float64 may not hold exactly can only be
    written so (one translation + one substring search, one regex search: about a third of the time
    orjson takes to decode the same bytes)."""
    if isinstance(data, str):
        data = data.encode()
    scanned = data.translate(_SCAN)
    return _LONG_RUN in scanned or _big_exponent(data, scanned)


class JSONNumber(Decimal):
    """A JSON number a float64 does not hold, with every digit (made by :func:`exact_json_loads`).

    A :class:`~decimal.Decimal` in every respect, except that JSON text written from it keeps it a
    JSON *number* (``arrow.json_text_default``) where a plain Decimal takes its JSON form (text).
    ``text``: the number as the JSON document wrote it (``1e400`` stays ``1e400``), when decoded."""

    __slots__ = ("text",)
    text: str


def _exact_number(text: str) -> float | Decimal:
    """``parse_float`` of the exact path: a float when float64 holds the number's digits, else a Decimal."""
    value = float(text)
    if len(text) <= 16 and value - value == 0.0 and not _BIG_EXPONENT.search(text.encode()):
        return value  # at most 15 digits (a float literal has a "." or an exponent) in range: exact
    exact = JSONNumber(text)
    if value - value == 0.0 and Decimal(repr(value)) == exact:
        return value
    exact.text = text
    return exact


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def exact_json_loads(line: bytes | str) -> Any:
    """Decode one JSON document keeping every digit: numbers float64 would change become
    :class:`JSONNumber` (a Decimal), integers stay ``int`` (at any size); NaN/Infinity are refused
    as by orjson."""
    return json.loads(line, parse_float=_exact_number, parse_constant=_no_constant)


def has_floats(value: Any) -> bool:
    """Whether a decoded JSON value holds a float (orjson's result for every non-integer number,
    and for integers beyond 64 bits)."""
    t = type(value)
    if t is dict:
        return any(has_floats(v) for v in value.values())
    if t is list:
        return any(has_floats(v) for v in value)
    return t is float


#: Bytes of a JSON number token → b"0", every other byte → b" " (bounds of the tokens of long runs).
_NUMBER_CHARS = bytes(0x30 if b in b"0123456789.eE+-" else 0x20 for b in range(256))


#: Bytes of a JSON number token kept, every other byte → b" " (a chunk's tokens: Arrow's whitespace split).
_NUMBER_BYTES = bytes(b if b in b"0123456789.eE+-" else 0x20 for b in range(256))


def _float_holds(token: bytes) -> bool:
    """Whether orjson's decode of the number ``token`` is exact: an integer within 64 bits (kept as
    ``int``), or a float whose shortest form is the token's value."""
    try:
        if not (b"." in token or b"e" in token or b"E" in token):
            return -(2**63) <= int(token) < 2**63
        value = float(token)
        if repr(value).encode() == token:  # the common case: written by a float64's repr
            return True
        return value - value == 0.0 and Decimal(repr(value)) == Decimal(token.decode())
    except (ValueError, ArithmeticError):
        return False  # e.g. "1.2.3.4…" inside a string: the exact decode decides


def _long_tokens(data: bytes) -> list[bytes]:
    """The number tokens of ``data`` (sign and exponent included) holding a run of 16+ digits."""
    digits = data.translate(_DIGITS)
    i = digits.find(_LONG_RUN)
    if i < 0:
        return []
    chars = data.translate(_NUMBER_CHARS)
    tokens = []
    while i >= 0:
        start = chars.rfind(b" ", 0, i) + 1
        end = chars.find(b" ", i)
        end = len(data) if end < 0 else end
        tokens.append(data[start:end])
        i = digits.find(_LONG_RUN, end)
    return tokens


def may_change_numbers(data: bytes | str) -> bool:
    """Whether orjson's decode of ``data`` (one document or a chunk of lines) may change a number: a
    token with a run of 16+ digits that a float64 (or orjson's 64-bit int) does not hold exactly.

    One byte translation and substring search when there is no such run; otherwise the long tokens
    of a chunk are cut and checked at C speed through Arrow (parsed as float64, printed in their
    shortest form, compared: a full-precision float such as ``0.30000000000000004`` is held), and
    in Python only when written otherwise (integers, other notations) or in a short document."""
    if isinstance(data, str):
        data = data.encode()
    scanned = data.translate(_SCAN)
    if _big_exponent(data, scanned) and not all(map(_float_holds, _EXPONENT_TOKEN.findall(data))):
        return True  # e.g. 1e-400 (orjson: 0.0)
    if _LONG_RUN not in scanned:
        return False
    if len(data) < 4096:
        tokens = _long_tokens(data)
        return bool(tokens) and not all(map(_float_holds, tokens))
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array([data.translate(_NUMBER_BYTES)], type=pa.binary()).cast(pa.string())
    parts = pc.list_flatten(pc.ascii_split_whitespace(text))
    long = parts.filter(pc.greater_equal(pc.binary_length(parts), 16))
    try:
        same = pc.equal(long, long.cast(pa.float64()).cast(pa.string()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        tokens = _long_tokens(data)  # a token Arrow does not parse (e.g. inside a string): each one
    else:
        if pc.all(same).as_py():
            return False
        tokens = [t.encode() for t in long.filter(pc.invert(same)).to_pylist()]
    return not all(map(_float_holds, tokens))


def needs_exact_decode(data: bytes | str, value: Any) -> bool:
    """Whether ``value`` (orjson's decode of ``data``) may have changed a number of ``data``
    (:func:`may_change_numbers`, and a float among its values)."""
    return may_change_numbers(data) and has_floats(value)


def json_loads(data: bytes | str, *, suspect: bool = True) -> Any:
    """``orjson.loads``, except that a document holding a number a float64 would change (16+ digits,
    an integer beyond 64 bits, ``1e400``) is decoded by :func:`exact_json_loads`, every digit kept.

    Ordinary documents cost one orjson decode plus a scan for long number tokens
    (:func:`needs_exact_decode`); a caller that checked
    a whole chunk of lines at once passes ``suspect=False`` for lines of chunks without a long run.
    Invalid JSON raises orjson's :class:`orjson.JSONDecodeError` (a :class:`ValueError`)."""
    import orjson

    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "number" not in str(exc):
            raise
        try:  # e.g. 1e400: valid JSON beyond a float64's range
            return exact_json_loads(data)
        except ValueError:
            raise exc from None
    if suspect and needs_exact_decode(data, value):
        return exact_json_loads(data)
    return value


def has_inexact_numbers(value: Any) -> bool:
    """Whether a decoded value holds a number a float64 does not keep (a Decimal, an int beyond 2**53)."""
    t = type(value)
    if t is dict:
        return any(has_inexact_numbers(v) for v in value.values())
    if t is list:
        return any(has_inexact_numbers(v) for v in value)
    if t is JSONNumber or t is Decimal:
        return True
    return t is int and not -_FLOAT_EXACT_INT <= value <= _FLOAT_EXACT_INT


# ------------------------------------------------------------------------------------ JSON forms
def decimal_text(value: Decimal) -> str:
    """A decimal in plain notation, every digit kept: ``1E-10`` → ``0.0000000001``, ``1.50`` → ``1.50``."""
    return format(value, "f")


def json_form(value: Any) -> Any:
    """The JSON form of one value (see the module docstring); any other value is returned unchanged."""
    if isinstance(value, _dt.date | _dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def json_default(value: Any) -> Any:
    """``default=`` for :func:`json.dumps` / :func:`orjson.dumps` of stored data (state, JSON
    columns, JSON files): :func:`json_form`; any other type raises :class:`TypeError`."""
    out = json_form(value)
    if out is value:
        raise TypeError(f"cannot serialise a {type(value).__name__} value as JSON")
    return out


def singer_json_default(value: Any) -> Any:
    """``default=`` for the RECORD messages the tap emits: :func:`json_default`, plus two Python
    types a source may yield that JSON has no exact form for.

    Different from :func:`json_default` on purpose: a Singer record must carry every value a source
    produced, so an interval (``timedelta``, e.g. a PostgreSQL ``interval`` read by a driver) is
    written as its number of seconds and a set as a list. Stored data (state, bookmarks) never
    takes such a lossy form: :func:`json_default` refuses them.
    """
    out = json_form(value)
    if out is not value:
        return out
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot serialise a {type(value).__name__} value as JSON")


# ------------------------------------------------------------------------------- date-time text
def _microseconds(text: str, start: int, original: str) -> str:
    """``text`` with the fraction that starts after the ``.`` at ``start`` cut to 6 digits, when the
    digits below the microsecond are zeros; otherwise :class:`ValueError`."""
    end = start + 1
    while end < len(text) and text[end].isdigit():
        end += 1
    digits = text[start + 1 : end]
    if len(digits) <= 6:
        return text
    if digits[6:].strip("0"):
        raise ValueError(f"{original!r} has sub-microsecond precision (would be truncated)")
    return text[: start + 7] + text[end:]


def parse_datetime(value: str) -> _dt.datetime:
    """An ISO 8601 date-time (``T`` or a space between date and time; ``Z``, ``z`` or an offset; no
    zone gives a naive value). More than 6 fractional digits are refused unless the extra ones are
    zeros. Raises :class:`ValueError`."""
    text = value.strip()
    dot = text.find(".", 10)
    if dot != -1:
        text = _microseconds(text, dot, value)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return _dt.datetime.fromisoformat(text)


def parse_time(value: str) -> _dt.time:
    """An ISO 8601 time of day; more than 6 fractional digits are refused unless the extra ones are
    zeros. Raises :class:`ValueError`."""
    text = value.strip()
    dot = text.find(".")
    if dot != -1:
        text = _microseconds(text, dot, value)
    return _dt.time.fromisoformat(text)


# -------------------------------------------------------------------------------------- decimals
def fit_decimal(value: Decimal, scale: int, precision: int | None = None) -> Decimal:
    """``value`` with exactly ``scale`` decimal places (``1.5`` at scale 2 is ``1.50``).

    Raises :class:`ValueError` when that would round it (more than ``scale`` significant decimal
    places), when it is not finite, or when it has more digits than ``precision``. The message
    does not repeat the value: ``f"{value!r} {exc}"`` reads as a sentence.
    """
    if not value.is_finite():
        raise ValueError("is not a finite decimal")
    try:
        fitted = value.quantize(Decimal(1).scaleb(-scale), context=DECIMAL_CONTEXT)
    except decimal.InvalidOperation:
        raise ValueError(f"does not fit decimal({precision or '?'},{scale})") from None
    if fitted != value:
        raise ValueError(f"has more than {scale} decimal places (would be rounded)")
    if precision is not None and fitted and len(fitted.as_tuple().digits) > precision:
        raise ValueError(f"does not fit decimal({precision},{scale})")
    return fitted


# ------------------------------------------------------------------------------------ Arrow errors
_ARROW_ERRORS: tuple[type[BaseException], ...] | None = None


def arrow_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "this value does not fit this Arrow type": Arrow's ``ArrowInvalid``,
    ``ArrowTypeError`` and ``ArrowNotImplementedError``, and the ``TypeError`` / ``ValueError`` /
    ``OverflowError`` (JSON decoding errors included) of the Python values handed to Arrow. Imports
    pyarrow on first call."""
    global _ARROW_ERRORS
    if _ARROW_ERRORS is None:
        import pyarrow as pa

        _ARROW_ERRORS = (
            pa.ArrowInvalid,
            pa.ArrowTypeError,
            pa.ArrowNotImplementedError,
            TypeError,
            ValueError,  # includes json / orjson decoding errors
            OverflowError,
        )
    return _ARROW_ERRORS


def error_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type name when it has none), at most ``limit``
    characters: what a one-line error message quotes."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
