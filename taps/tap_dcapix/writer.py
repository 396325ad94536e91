"""A fast Singer message writer: orjson, one bytes buffer, explicit flushes.

The SDK's ``SimpleSingerWriter`` serialises every message with ``json``/``simplejson`` and flushes
``sys.stdout`` after each line; for RECORD messages that costs more than reading the source. This
writer keeps the SDK interface (``write_message(Message)``) for SCHEMA / STATE / ACTIVATE_VERSION
messages and adds :meth:`FastSingerWriter.write_records`, which serialises a whole batch of records
with orjson into one buffer. Every message goes through the same buffer, so the order of lines is
exactly the order of calls. The buffer is written to ``sys.stdout`` (its binary ``buffer`` when it
has one, looked up at flush time so redirected streams work) when it grows past
:attr:`FastSingerWriter.flush_bytes`, after every STATE message and on :meth:`flush`.
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from singer_sdk.singerlib.encoding.simple import Message, StateMessage

from dc_api_x.values import singer_json_default as json_default

__all__ = ["FastSingerWriter"]


_OPTS = orjson.OPT_NON_STR_KEYS


class FastSingerWriter(GenericSingerWriter[bytes, Message]):
    """Singer message writer on orjson with a shared bytes buffer (see the module docstring)."""

    #: Write the buffer out when it grows past this many bytes.
    flush_bytes = 1 << 20

    def __init__(self) -> None:
        self._buf = bytearray()

    # -- SDK interface -----------------------------------------------------------------------------
    def serialize_message(self, message: Message) -> bytes:
        return orjson.dumps(message.to_dict(), default=json_default, option=_OPTS)

    def write_message(self, message: Message) -> None:
        self._buf += self.serialize_message(message)
        self._buf += b"\n"
        if isinstance(message, StateMessage) or len(self._buf) >= self.flush_bytes:
            self.flush()

    # -- fast path ---------------------------------------------------------------------------------
    def write_records(
        self,
        stream: str,
        records: Sequence[dict[str, Any]] | Iterable[dict[str, Any]],
        *,
        time_extracted: _dt.datetime | None = None,
        version: int | None = None,
    ) -> int:
        """Append one RECORD line per record (``stream``, ``record``, optional ``version`` and
        ``time_extracted``), serialised with orjson; returns the number of lines."""
        head, tail = self.record_affixes(stream, time_extracted=time_extracted, version=version)
        dumps = orjson.dumps
        buf = self._buf
        n = 0
        for rec in records:
            buf += head
            buf += dumps(rec, default=json_default, option=_OPTS)
            buf += tail
            n += 1
            if len(buf) >= self.flush_bytes:
                self.flush()
        return n

    def write_batch(
        self,
        stream: str,
        encoding: dict[str, Any],
        manifest: Sequence[str],
        *,
        version: int | None = None,
    ) -> None:
        """Append one singer-sdk BATCH message (``encoding`` ``{"format", "compression"}``, the
        ``manifest`` of file URLs, the stream version when there is one)."""
        msg: dict[str, Any] = {
            "type": "BATCH",
            "stream": stream,
            "encoding": {k: v for k, v in encoding.items() if v is not None},
            "manifest": list(manifest),
        }
        if version is not None:
            msg["version"] = version
        self._buf += orjson.dumps(msg, option=_OPTS)
        self._buf += b"\n"
        if len(self._buf) >= self.flush_bytes:
            self.flush()

    @staticmethod
    def record_affixes(
        stream: str,
        *,
        time_extracted: _dt.datetime | None = None,
        version: int | None = None,
    ) -> tuple[bytes, bytes]:
        """The bytes before and after the record object of a RECORD line (``tail`` ends with a
        newline)."""
        head = b'{"type":"RECORD","stream":' + orjson.dumps(stream) + b',"record":'
        tail = b""
        if version is not None:
            tail += b',"version":' + orjson.dumps(version)
        if time_extracted is not None:
            te = time_extracted.astimezone(_dt.timezone.utc) if time_extracted.tzinfo else time_extracted
            tail += b',"time_extracted":' + orjson.dumps(te)
        return head, tail + b"}\n"

    def write_raw(self, data: bytes) -> None:
        """Append pre-serialised lines (must end with a newline). A large block goes straight to
        stdout (after what is buffered), without a copy into the buffer."""
        if len(data) >= self.flush_bytes:
            self.flush()
            self._write_out(data)
            return
        self._buf += data
        if len(self._buf) >= self.flush_bytes:
            self.flush()

    @staticmethod
    def _write_out(data: bytes | bytearray) -> None:
        out = sys.stdout
        out.flush()
        raw = getattr(out, "buffer", None)
        if raw is not None:
            raw.write(data)
            raw.flush()
        else:
            out.write(bytes(data).decode("utf-8"))
            out.flush()

    def flush(self) -> None:
        """Write the buffer to stdout and flush it."""
        if not self._buf:
            return
        self._write_out(self._buf)
        self._buf.clear()

    def discard(self) -> None:
        """Drop what is buffered (used when a sync fails: no half batch reaches the target)."""
        self._buf.clear()
