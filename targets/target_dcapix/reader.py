"""A fast Singer message reader: bytes read in bulk, one ``orjson.loads`` per line.

A block of lines (one read of up to 1 MiB) is decoded by ``map(orjson.loads, …)`` and its
messages dispatched with no Python per line: each run of RECORD messages of one stream goes to
the target at once (``on_records``); a block with a line that is not a JSON object with a
``type`` (or one that may hold a long number) is read line by line, which names the line.

singer-sdk's ``SimpleSingerReader`` iterates text lines and decodes them with ``simplejson``; this
reader keeps its interface (``process_lines(file_input, callbacks)`` → ``Counter`` of message types)
and its callbacks, but reads ``stdin`` as bytes in large chunks, decodes with :mod:`orjson`, counts
line numbers (for error messages) and turns every malformed line into one
:class:`SingerInputError` naming the line (and the stream when it can be read).

Exact numbers: orjson decodes every number with a fraction or exponent — and every integer beyond
64 bits — as a float64, which keeps 15 to 17 significant digits. A chunk of input is searched once
(``has_long_digit_run``, a byte translation and a substring search) for a run of 16 or more
digits; only the lines of a chunk that has one are checked one by one, and only those of them
holding a float are decoded again by the exact path (``exact_json_loads``): a number float64 would
change becomes a :class:`~dc_api_x.values.JSONNumber` (a Decimal; an integer stays a Python
``int``), every other number stays a float. The
destination then keeps the digits where it can (decimal columns, JSON text) or refuses the record
naming stream, field and line: nothing is rounded silently.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import IO, Any

import orjson
from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.singerlib.encoding.base import GenericSingerReader

from dc_api_x.exceptions import DcApiXError
from dc_api_x.json_errors import describe_json_error
from dc_api_x.values import exact_json_loads, has_floats, has_inexact_numbers, has_long_digit_run

__all__ = [
    "FastSingerReader",
    "RecordBeforeSchemaError",
    "SingerInputError",
]

#: Most bytes read at once (``read1``: fewer when less is available, e.g. from a slow tap).
READ_CHUNK = 1 << 20
_MESSAGE_TYPES = ("RECORD", "SCHEMA", "STATE", "ACTIVATE_VERSION", "BATCH")


class SingerInputError(DcApiXError):
    """The Singer input is malformed (bad JSON, a missing key, an unknown message type …)."""

    def __init__(self, message: str, *, line: int | None = None, stream: str | None = None) -> None:
        self.line = line
        self.stream = stream
        super().__init__(message)


class RecordBeforeSchemaError(SingerInputError, RecordsWithoutSchemaException):
    """A RECORD (or BATCH, ACTIVATE_VERSION) for a stream whose SCHEMA has not been received."""


def _where(line: int, stream: Any = None) -> str:
    return f"line {line}" + (f", stream {stream!r}" if isinstance(stream, str) else "")


#: Chunks (of up to READ_CHUNK bytes) the read-ahead thread may hold: bounds the memory it uses.
READ_AHEAD_CHUNKS = 16


def _read_ahead(read1: Callable[[int], bytes]) -> Iterator[bytes]:
    """Chunks from ``read1``, read by a background thread so the input keeps flowing while the main
    thread converts and writes a batch (the thread waits in ``read`` without the GIL; a tap writing
    into the pipe is not stalled by the target's drains). Yields ``b""`` at the end; a read error
    is re-raised in the caller."""
    import queue
    import threading

    chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=READ_AHEAD_CHUNKS)
    stop = threading.Event()

    def put(item: bytes | BaseException) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False  # the consumer is gone (an error stopped the run)

    def pump() -> None:
        try:
            while not stop.is_set():
                data = read1(READ_CHUNK)
                if not put(data) or not data:
                    return
        except BaseException as exc:  # handed to the consumer
            put(exc)

    thread = threading.Thread(target=pump, name="target-dcapix-stdin", daemon=True)
    thread.start()
    try:
        while True:
            item = chunks.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if not item:
                return
    finally:
        stop.set()


def _grow_pipe(src: Any) -> None:
    """Ask Linux for a 1 MiB pipe buffer on a piped stdin (default 64 KiB): the tap can write ahead
    while the target writes a batch, with fewer wake-ups. Best effort; nothing changes elsewhere."""
    try:
        import fcntl
        import stat

        fd = src.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), READ_CHUNK)
    except Exception:  # not a real file, not Linux, or above /proc/sys/fs/pipe-max-size
        pass


class FastSingerReader(GenericSingerReader[bytes]):
    """Reads Singer messages as bytes from stdin (or a file) and dispatches them to callbacks."""

    def __init__(self) -> None:
        super().__init__()
        #: The number of the line being processed (1-based), for error messages.
        self.line_number = 0
        #: Lines decoded by the exact path that hold a number a float64 does not keep.
        self.exact_lines = 0
        #: Called with (line number, message) for each such line, before the message's callback.
        self.on_inexact: Callable[[int, dict[Any, Any]], None] | None = None
        #: Called with (stream, messages, line of the first) for each run of consecutive RECORD
        #: messages of one stream in a block of input (instead of the RECORD callback per message),
        #: when set: see :meth:`_bulk_block`.
        self.on_records: Callable[[str, list[dict[Any, Any]], int, int], None] | None = None
        #: Called with (lines, line before the first, callbacks, stats, the chunk's bytes) for each
        #: block of input before anything else, when set: it handles the whole block and returns
        #: its numbers of RECORD messages and of lines, or returns ``None`` having done nothing (the
        #: target's column path, :mod:`target_dcapix.columnar`, which keeps long numbers exact
        #: itself). ``lines`` is ``None`` when the block's lines have not been cut out of its bytes
        #: (:meth:`lines_of` does it once).
        self.on_block: (
            Callable[[list[bytes] | None, int, Any, Counter[str], bytes], tuple[int, int] | None] | None
        ) = None
        self._lines_of: tuple[bytes, list[bytes]] | None = None
        #: Bytes of the line being processed (RECORD messages of the line-by-line path).
        self.line_size = 0
        self._suspect_of: bytes | None = None
        self._suspect = False

    def lines_of(self, data: bytes) -> list[bytes]:
        """The lines of a block's bytes (each ending with a newline but perhaps the last), without
        their newlines; the answer for the last block asked about is kept."""
        kept = self._lines_of
        if kept is not None and kept[0] is data:
            return kept[1]
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()  # b"" after the last newline
        self._lines_of = (data, lines)
        return lines

    def suspect(self, data: bytes) -> bool:
        """Whether a chunk of input holds a long digit run (``has_long_digit_run``: a line of it may
        need the exact path); the answer for the last chunk asked about is kept."""
        if data is not self._suspect_of:
            self._suspect_of = data
            self._suspect = has_long_digit_run(data)
        return self._suspect

    def exact_if_long(self, line: bytes, msg: dict[Any, Any]) -> dict[Any, Any]:
        """``msg`` decoded from ``line`` by orjson, or by the exact path when the line holds a long
        digit run and ``msg`` a float (what the line-by-line path does; ``line_number`` is set)."""
        if has_long_digit_run(line) and has_floats(msg):
            return self._exact(line, msg)
        return msg

    @property
    def default_input(self) -> IO[bytes]:
        return sys.stdin.buffer

    def deserialize_json(self, line: bytes) -> dict[Any, Any]:
        """Decode one line; a malformed line raises :class:`SingerInputError` naming it."""
        try:
            msg = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if "number" in str(exc):  # e.g. 1e400 (valid JSON, beyond a float64): the exact path decides
                with contextlib.suppress(ValueError):
                    exact = exact_json_loads(line)
                    if isinstance(exact, dict):
                        if self.on_inexact is not None and has_inexact_numbers(exact):
                            self.exact_lines += 1
                            self.on_inexact(self.line_number, exact)
                        return exact
            text = (
                line[:80].decode("utf-8", "replace").rstrip()
                if isinstance(line, (bytes, bytearray))
                else str(line)[:80].rstrip()
            )
            raise SingerInputError(
                f"{_where(self.line_number)}: not valid JSON ({describe_json_error(exc, line)}): {text!r}",
                line=self.line_number,
            ) from None
        if not isinstance(msg, dict):
            raise SingerInputError(
                f"{_where(self.line_number)}: a Singer message must be a JSON object, got "
                f"{type(msg).__name__}",
                line=self.line_number,
            )
        return msg

    def _lines(self, file_input: IO[Any] | None) -> Iterator[bytes]:
        """Lines of the input as bytes (without the newline)."""
        for lines, data in self._blocks(file_input):
            if lines is None:
                lines = self.lines_of(data)
            yield from lines

    def _blocks(self, file_input: IO[Any] | None) -> Iterator[tuple[list[bytes] | None, bytes]]:
        """Lists of lines of the input as bytes (without the newline), each with the bytes of its
        chunk (:meth:`suspect` tells whether a line of it may need the exact path); ``None`` for
        the lines of a chunk read from a binary input (:meth:`lines_of` cuts them out when they are
        needed: the compiled column path reads the chunk's bytes).

        Binary input is read with ``read1``: it returns what is available (up to ``READ_CHUNK``
        bytes) without waiting for a full chunk, so a slow tap's messages (and the STATEs that
        follow them) are handled as they arrive, while a fast one is read in large blocks.
        """
        src: Any = file_input if file_input is not None else self.default_input
        binary = getattr(src, "buffer", None)
        if binary is not None:
            src = binary
        read1 = getattr(src, "read1", None)
        if read1 is None:  # a text stream without a binary buffer (e.g. io.StringIO in tests)
            for line in src:
                data = line.encode() if isinstance(line, str) else line
                yield [data.rstrip(b"\n")], data
            return
        _grow_pipe(src)
        rest = b""
        for chunk in _read_ahead(read1):
            if not chunk:
                if rest:
                    yield [rest], rest
                return
            if isinstance(chunk, str):
                chunk = chunk.encode()
            cut = chunk.rfind(b"\n") + 1
            if not cut:  # no line ends in this chunk
                rest += chunk
                continue
            # the lines that end in this chunk, copied once (rest + chunk, then a slice, was two
            # copies of the whole input)
            if rest:
                data = b"".join((rest, memoryview(chunk)[:cut]))
            else:
                data = chunk if cut == len(chunk) else chunk[:cut]
            rest = chunk[cut:]
            yield None, data

    def process_lines(  # type: ignore[override]
        self,
        file_input: IO[Any] | None,
        callbacks: dict[str, Callable[[dict[Any, Any]], None]],
    ) -> Counter[str]:
        """Read every line, decode it and call the callback of its message type.

        RECORD messages go straight to ``callbacks["RECORD"]`` with no other work per line.
        """
        gc_enabled = gc.isenabled()
        # Records are plain acyclic dicts: the cyclic GC only burns CPU re-scanning the buffered
        # batch (it halves the throughput). It is off while reading; the target collects the young
        # generations after each drain, and the previous setting is restored at the end.
        gc.disable()
        try:
            return self._process_lines(file_input, callbacks)
        finally:
            if gc_enabled:
                gc.enable()

    def _process_lines(
        self,
        file_input: IO[Any] | None,
        callbacks: dict[str, Callable[[dict[Any, Any]], None]],
    ) -> Counter[str]:
        cbs = {str(getattr(k, "value", k)): v for k, v in callbacks.items()}
        record_cb = cbs["RECORD"]
        loads = orjson.loads
        stats: Counter[str] = Counter()
        records = 0
        lineno = 0
        bulk = self.on_records
        on_block = self.on_block
        for maybe_block, data in self._blocks(file_input):
            if on_block is not None:
                handled = on_block(maybe_block, lineno, cbs, stats, data)
                if handled is not None:
                    records += handled[0]
                    lineno += handled[1]
                    continue
            block = maybe_block if maybe_block is not None else self.lines_of(data)
            suspect = self.suspect(data)
            if bulk is not None and not suspect:
                done = self._bulk_block(block, lineno, bulk, cbs, stats)
                if done is not None:
                    records += done
                    lineno += len(block)
                    continue
            for line in block:
                lineno += 1
                try:
                    msg = loads(line)
                    mtype = msg["type"]
                except Exception:
                    self.line_number = lineno
                    if not line.strip():
                        continue  # blank lines (e.g. a trailing newline) carry no message
                    msg = self.deserialize_json(line)
                    mtype = msg.get("type")
                    if mtype is None:
                        raise SingerInputError(
                            f"{_where(lineno, msg.get('stream'))}: message has no 'type'",
                            line=lineno,
                            stream=msg.get("stream"),
                        ) from None
                if suspect and has_long_digit_run(line) and has_floats(msg):
                    # orjson made a float of a number with 16+ digits: decode the line exactly
                    self.line_number = lineno
                    msg = self._exact(line, msg)
                    mtype = msg.get("type")
                if mtype == "RECORD":
                    self.line_number = lineno
                    self.line_size = len(line)
                    record_cb(msg)
                    records += 1
                    continue
                self.line_number = lineno
                if not isinstance(mtype, str) or mtype.upper() not in cbs:
                    raise SingerInputError(
                        f"{_where(lineno, msg.get('stream'))}: unknown message type {mtype!r} "
                        f"(expected one of {', '.join(_MESSAGE_TYPES)})",
                        line=lineno,
                        stream=msg.get("stream"),
                    )
                mtype = mtype.upper()
                cbs[mtype](msg)
                stats[mtype] += 1
        self.line_number = lineno
        if records:
            stats["RECORD"] += records
        return stats

    def _bulk_block(
        self,
        block: list[bytes],
        lineno: int,
        on_records: Callable[[str, list[dict[Any, Any]], int, int], None],
        cbs: dict[str, Callable[[dict[Any, Any]], None]],
        stats: Counter[str],
    ) -> int | None:
        """Dispatch a block of lines (after line ``lineno``) with no Python per line: decoded by
        ``map(orjson.loads, …)``, message types read by ``itemgetter``, each run of RECORD
        messages of one stream handed to ``on_records`` at once. ``None`` (nothing dispatched)
        when a line is not a JSON object with a ``type``: the caller then goes line by line and
        names the line. Other messages go to their callbacks in order; the number of RECORD
        messages is returned."""
        from operator import itemgetter

        try:
            msgs = list(map(orjson.loads, block))
            types = list(map(itemgetter("type"), msgs))
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
            return None
        n = len(msgs)
        specials = [i for i, t in enumerate(types) if t != "RECORD"]
        for i in specials:  # checked before anything is dispatched
            mtype = types[i]
            if not isinstance(mtype, str) or mtype.upper() not in cbs:
                return None
        records = 0
        start = 0
        for end in [*specials, n]:
            if end > start:
                records += self._record_run(msgs, start, end, lineno, on_records, cbs, block)
            if end < n:
                self.line_number = lineno + end + 1
                mtype = types[end].upper()
                cbs[mtype](msgs[end])
                stats[mtype] += 1
            start = end + 1
        self.line_number = lineno + n
        return records

    def _record_run(
        self,
        msgs: list[dict[Any, Any]],
        start: int,
        end: int,
        lineno: int,
        on_records: Callable[[str, list[dict[Any, Any]], int, int], None],
        cbs: dict[str, Callable[[dict[Any, Any]], None]],
        block: list[bytes],
    ) -> int:
        """RECORD messages ``msgs[start:end]`` (lines ``block[start:end]``): runs of one stream to
        ``on_records``; a message without a string ``stream`` to the RECORD callback (which names
        the line)."""
        from operator import itemgetter

        run = msgs[start:end]
        try:
            streams = list(map(itemgetter("stream"), run))
        except KeyError:
            streams = []
        first = streams[0] if streams else None
        if isinstance(first, str) and streams.count(first) == len(streams):
            on_records(first, run, lineno + start + 1, sum(map(len, block[start:end])))
            return len(run)
        record_cb = cbs["RECORD"]
        for i, msg in enumerate(run, start=lineno + start + 1):  # several streams, or a bad one
            stream = msg.get("stream")
            self.line_number = i
            self.line_size = len(block[i - lineno - 1])
            if isinstance(stream, str):
                on_records(stream, [msg], i, self.line_size)
            else:
                record_cb(msg)
        return len(run)

    def _exact(self, line: bytes, fallback: dict[Any, Any]) -> dict[Any, Any]:
        """The exact decode of a line orjson accepted (:func:`~dc_api_x.values.exact_json_loads`)."""
        try:
            msg = exact_json_loads(line)
        except ValueError:  # orjson accepted the line: keep its result (cannot happen for valid JSON)
            return fallback
        if not isinstance(msg, dict):
            return fallback
        if has_inexact_numbers(msg):
            self.exact_lines += 1
            if self.on_inexact is not None:
                self.on_inexact(self.line_number, msg)
        return msg
