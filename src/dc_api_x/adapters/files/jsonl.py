"""The ``jsonl`` adapter: JSON Lines files (gzip optional): Arrow's JSON reader where the schema
allows it, orjson line by line otherwise; values in their JSON forms (:mod:`dc_api_x.values`)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import IO, Any, ClassVar

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt

from ...arrow import (
    JSON_META,
    NUMBER_META,
    ConversionError,
    arrow_to_records,
    cast_table,
    json_bytes,
    json_text_default,
    rebatch,
)
from ...exceptions import SchemaError
from ...inference import infer_schema
from ...json_errors import describe_json_error
from ...types import JSONSchema, StreamSpec
from ...values import json_loads, may_change_numbers
from .base import FileAdapter, read_batches
from .writers import Part, StreamWriter

#: rows converted to Python and serialised at a time: target-dcapix, 100,000 rows of 1 KB to JSONL,
#: peaked at 352 MB RSS with 8,192, 275 with 2,048, 255 with 1,024 (and 30 % less CPU), 240 with 256
_SLICE_ROWS = 1024

__all__ = ["JSONLAdapter"]

_orjson_loads = orjson.loads


class JSONLAdapter(FileAdapter):
    """``jsonl``: one JSON object per line (orjson), gzip optional. Values in their JSON forms:
    ISO date-times, decimals as strings, bytes as base64."""

    name = "jsonl"
    suffixes = (".jsonl", ".ndjson", ".json")
    needs_sidecar = True
    exact_number_text = True
    #: bytes per block of Arrow's JSON reader
    _json_block_size: ClassVar[int] = 1 << 22

    def extension(self, compression: str | None) -> str:
        return "jsonl.gz" if compression == "gzip" else "jsonl"

    def _open_text(self, stream: str, path: str) -> IO[bytes]:
        try:
            raw = self._fs.open_read(path)
        except OSError as exc:
            raise self._file_error(stream, path, "could not be opened", exc) from None
        if self._is_gzip(path):
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        return raw

    #: bytes read at once by the per-line path (each chunk is checked for long digit runs in one go)
    _chunk_size: ClassVar[int] = 1 << 20

    def _lines(self, stream: str, path: str) -> Iterator[tuple[int, bytes, bool]]:
        """Non-blank lines with their numbers, each with whether its chunk holds a number orjson may change
        (:func:`~dc_api_x.values.may_change_numbers`: only such lines may need the exact decode)."""
        fh = self._open_text(stream, path)
        try:
            lineno = 0
            rest = b""
            while True:
                try:
                    data = fh.read(self._chunk_size)
                except (OSError, EOFError) as exc:
                    raise self._file_error(stream, path, "could not be read", exc) from None
                if not data:
                    if rest.strip():
                        yield lineno + 1, rest, may_change_numbers(rest)
                    break
                if rest:
                    data = rest + data
                cut = data.rfind(b"\n") + 1
                data, rest = data[:cut], data[cut:]
                if not data:
                    continue
                suspect = may_change_numbers(data)
                lines = data.split(b"\n")
                lines.pop()  # b"" after the last newline
                for line in lines:
                    lineno += 1
                    if line.strip():
                        yield lineno, line, suspect
        finally:
            fh.close()

    def _parse(
        self, stream: str, path: str, lineno: int, line: bytes, suspect: bool = True
    ) -> dict[str, Any]:
        try:
            try:
                # a chunk without a number orjson may change: orjson alone (1e400 fails → exact path)
                rec = json_loads(line) if suspect else _orjson_loads(line)
            except ValueError:
                rec = json_loads(line)
        except ValueError as exc:
            raise self.error(
                f"{self._fs.display(path)!r} line {lineno}: invalid JSON: {describe_json_error(exc, line)}",
                stream=stream,
            ) from None
        if not isinstance(rec, dict):
            raise self.error(
                f"{self._fs.display(path)!r} line {lineno}: expected a JSON object, got {type(rec).__name__}",
                stream=stream,
            )
        return rec

    def _file_schema(self, stream: str, path: str) -> tuple[JSONSchema, dict[str, Any]]:
        sample = []
        for lineno, line, suspect in self._lines(stream, path):
            sample.append(self._parse(stream, path, lineno, line, suspect))
            if len(sample) >= self.options.sample_size:
                break
        return infer_schema(sample), {}

    def _iter_tables(self, stream: StreamSpec, path: str, arrow_schema: pa.Schema) -> Iterator[pa.Table]:
        """Arrow's JSON reader (block-wise, no per-value Python) for flat schemas; on anything it does
        not parse the way the JSON-form rules do, the file continues through orjson per line."""
        done = 0
        if _arrow_json_schema(arrow_schema) is not None:
            try:
                for table in self._arrow_tables(stream, path, arrow_schema):
                    done += table.num_rows
                    yield table
                return
            except _FallBack:
                pass
        yield from self._orjson_tables(stream, path, arrow_schema, skip=done)

    def _arrow_tables(self, stream: StreamSpec, path: str, arrow_schema: pa.Schema) -> Iterator[pa.Table]:
        import pyarrow.json as pajson

        read_schema = _arrow_json_schema(arrow_schema)
        fh = self._open_text(stream.name, path)
        try:
            try:
                reader = pajson.open_json(
                    fh,
                    read_options=pajson.ReadOptions(block_size=self._json_block_size),
                    parse_options=pajson.ParseOptions(
                        explicit_schema=read_schema, unexpected_field_behavior="ignore"
                    ),
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                raise _FallBack() from None

            def fall_back(exc: Exception) -> Exception:
                if isinstance(exc, (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)):
                    return _FallBack()
                return exc

            for table in rebatch(read_batches(reader, fall_back), self.options.batch_size, read_schema):
                yield self._json_conform(stream, path, table, arrow_schema)
        finally:
            fh.close()

    def _json_conform(
        self, stream: StreamSpec, path: str, table: pa.Table, arrow_schema: pa.Schema
    ) -> pa.Table:
        try:
            return cast_table(table, arrow_schema)
        except ConversionError:
            raise _FallBack() from None  # the per-line path decides (and names the line)

    def _orjson_tables(
        self, stream: StreamSpec, path: str, arrow_schema: pa.Schema, skip: int = 0
    ) -> Iterator[pa.Table]:
        size = self.options.batch_size
        records: list[dict[str, Any]] = []
        first = 0
        for lineno, line, suspect in self._lines(stream.name, path):
            if skip:
                skip -= 1
                continue
            if not records:
                first = lineno
            records.append(self._parse(stream.name, path, lineno, line, suspect))
            if len(records) >= size:
                yield self._to_table(stream, path, records, arrow_schema, first)
                records = []
        if records:
            yield self._to_table(stream, path, records, arrow_schema, first)

    def _to_table(
        self,
        stream: StreamSpec,
        path: str,
        records: list[dict[str, Any]],
        arrow_schema: pa.Schema,
        first: int,
    ) -> pa.Table:
        from ...arrow import records_to_arrow_exact

        try:
            return records_to_arrow_exact(records, arrow_schema)
        except ConversionError as exc:
            raise SchemaError(
                f"adapter {self.name!r}, stream {stream.name!r}, field {exc.field!r}: "
                f"{self._fs.display(path)!r} (lines {first}-{first + len(records) - 1}): "
                f"{str(exc).split(': ', 1)[-1]}",
                adapter=self.name,
                stream=stream.name,
            ) from None

    def _open_writer(self, sw: StreamWriter, part: Part) -> None:
        part.raw = self._fs.open_write(part.tmp)
        if self._compression() == "gzip":
            part.handle = gzip.GzipFile(fileobj=part.raw, mode="wb", compresslevel=6, mtime=0)
        else:
            part.handle = part.raw

    def _write_chunk(self, sw: StreamWriter, part: Part, table: pa.Table) -> None:
        for f, col in zip(table.schema, table.columns, strict=True):
            # JSON has no NaN/Infinity: orjson would write null, silently changing the value
            if (
                pt.is_floating(f.type)
                and col.null_count < len(col)
                and (pc.any(pc.invert(pc.is_finite(col))).as_py())
            ):
                raise SchemaError(
                    f"adapter {self.name!r}, stream {sw.stream.name!r}, field {f.name!r}: "
                    "NaN/Infinity cannot be written as JSON",
                    adapter=self.name,
                    stream=sw.stream.name,
                )
        dumps = orjson.dumps
        opt = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
        # in slices: the Python records and their JSON of a whole chunk cost ~10x its Arrow size
        for start in range(0, max(table.num_rows, 1), _SLICE_ROWS):
            piece = table.slice(start, _SLICE_ROWS)
            records = arrow_to_records(_json_form_table(piece), sw.json_schema)
            _keep_long_numbers(piece, records)
            try:
                text = b"".join([dumps(r, default=json_text_default, option=opt) for r in records])
            except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits inside a JSON value
                text = b"".join([json_bytes(r, option=opt) for r in records])
            part.handle.write(text)

    def _close_writer(self, part: Part) -> None:
        try:
            if part.handle is not None and part.handle is not part.raw:
                part.handle.close()
        finally:
            self._release(part)


def _keep_long_numbers(table: pa.Table, records: list[dict[str, Any]]) -> None:
    """Numbers a float64 would round, written with every digit (``orjson.Fragment``): the values of
    JSON number text columns (:data:`NUMBER_META`), and JSON text values holding a long number (decoded
    by orjson to floats above: the text is kept instead, once checked to be valid JSON)."""
    from ...values import exact_json_loads

    fragment = orjson.Fragment
    for f, col in zip(table.schema, table.columns, strict=True):
        meta = f.metadata or {}
        name = f.name
        if meta.get(NUMBER_META) == b"true":
            for r in records:
                if r[name] is not None:
                    r[name] = fragment(r[name])
        elif meta.get(JSON_META) == b"true" and pt.is_string(f.type) and col.null_count < len(col):
            long_runs = pc.match_substring_regex(col, r"[0-9.]{16}")
            if not pc.any(long_runs).as_py():
                continue
            for i, hit in enumerate(long_runs.to_pylist()):
                if hit:
                    text = col[i].as_py()
                    exact_json_loads(text)  # valid JSON (it was written by orjson or checked on read)
                    records[i][name] = fragment(text)


class _FallBack(Exception):
    """Arrow's JSON reader met something the orjson path must handle."""


def _arrow_json_schema(arrow_schema: pa.Schema) -> pa.Schema | None:
    """The schema Arrow's JSON reader should parse with (JSON-form text for date-times, dates and
    decimals), or ``None`` when the stream has types only the orjson path handles."""
    fields = []
    for f in arrow_schema:
        t = f.type
        if f.metadata:
            return None  # JSON blobs, unsized decimals
        if pt.is_boolean(t) or pt.is_string(t) or t == pa.int64():
            fields.append(pa.field(f.name, t))  # Arrow refuses 2.0, "3", true … → orjson path decides
        elif pt.is_timestamp(t) or pt.is_date(t) or pt.is_decimal(t):
            fields.append(pa.field(f.name, pa.string()))
        else:
            # floats: Arrow rounds 2**53 + 1 silently where the orjson path refuses; nested/binary/
            # time: per value
            return None
    return pa.schema(fields)


def _json_form_table(table: pa.Table) -> pa.Table:
    """Top-level timestamps, dates and times turned into their JSON text forms by Arrow
    (column-wise), so that writing JSON does not build a Python object per value."""
    cols = []
    fields = []
    changed = False
    for f, col in zip(table.schema, table.columns, strict=True):
        t = f.type
        if pt.is_timestamp(t) and t.unit in ("s", "ms", "us") and (t.tz is None or t.tz in _UTC):
            # datetime.isoformat(): 6 fractional digits, none when the microseconds are 0
            text = pc.strftime(col.cast(pa.timestamp("us")), format="%Y-%m-%dT%H:%M:%S")
            text = pc.replace_substring_regex(text, pattern=r"\.000000$", replacement="")
            if t.tz is not None:
                text = pc.binary_join_element_wise(text, "+00:00", "")
            col, f, changed = text, pa.field(f.name, pa.string()), True
        elif pt.is_date(t) or pt.is_time(t):  # not decimals: Arrow writes 1E-10 where JSON wants 0.0000000001
            col, f, changed = col.cast(pa.string()), pa.field(f.name, pa.string()), True
        cols.append(col)
        fields.append(f)
    return pa.Table.from_arrays(cols, schema=pa.schema(fields)) if changed else table


_UTC = ("UTC", "utc", "+00:00", "Z", "Etc/UTC", "GMT")
