"""The ``parquet`` adapter: Parquet files through :mod:`pyarrow.parquet` (real types: timestamps with
zone, decimals, nested structs and lists)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.types as pt

from ...arrow import (
    arrow_to_jsonschema,
    jsonschema_to_arrow,
)
from ...exceptions import ConfigError
from ...types import JSONSchema, StreamSpec
from .base import FileAdapter
from .fs import STREAM_META
from .writers import Part, StreamWriter

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow.parquet as pq

__all__ = ["ParquetAdapter"]


_PARQUET_CODECS = ("snappy", "zstd", "gzip", "lz4", "brotli", "none")


class ParquetAdapter(FileAdapter):
    """``parquet``: Parquet files through :mod:`pyarrow.parquet` (real types: timestamps with zone,
    decimals, nested structs and lists)."""

    name = "parquet"
    suffixes = (".parquet", ".parq", ".pq")

    def _check_compression(self) -> None:
        c = self.options.compression
        if c is not None and c.lower() not in _PARQUET_CODECS:
            raise ConfigError(
                f"adapter 'parquet': option 'compression': {c!r} is not supported "
                f"(valid: {', '.join(_PARQUET_CODECS)})",
                plugin="adapter 'parquet'",
                field="compression",
            )

    def _compression(self) -> str | None:
        c = (self.options.compression or "snappy").lower()
        return None if c == "none" else c

    def extension(self, compression: str | None) -> str:
        return "parquet"

    def _data_file(self, path: str) -> bool:
        return path.lower().endswith(self.suffixes)

    def _open_parquet(self, stream: str, path: str) -> pq.ParquetFile:
        import pyarrow.parquet as pq  # (reading only: a run that writes Parquet does not import it)

        try:
            source: Any = path if self._fs.local else self._fs.open_read(path)
            return pq.ParquetFile(source)
        except Exception as exc:
            raise self._file_error(stream, path, "is not a readable Parquet file", exc) from None

    def _file_schema(self, stream: str, path: str) -> tuple[JSONSchema, dict[str, Any]]:
        pf = self._open_parquet(stream, path)
        try:
            arrow_schema = pf.schema_arrow
        finally:
            pf.close()
        stored: dict[str, Any] = {}
        raw = (arrow_schema.metadata or {}).get(STREAM_META)
        if raw:
            with contextlib.suppress(Exception):
                stored = orjson.loads(raw)
        schema = stored.get("schema")
        if not (isinstance(schema, dict) and _same_types(jsonschema_to_arrow(schema), arrow_schema)):
            schema = arrow_to_jsonschema(arrow_schema)
        return schema, stored

    def _discover_schema(self, stream: str, files: list[str]) -> tuple[JSONSchema, dict[str, Any]]:
        """The union of the schemas of every file (footers only), oldest first: a column added by a
        later run (schema evolution) is part of the stream, and a later file's type of a column wins."""
        if len(files) == 1:
            return self._file_schema(stream, files[0])
        ordered = files
        if self._fs.local:
            ordered = sorted(files, key=lambda f: (os.path.getmtime(f), f))
        props: dict[str, Any] = {}
        stored: dict[str, Any] = {}
        base: JSONSchema = {}
        for f in ordered:
            schema, meta = self._file_schema(stream, f)
            base = schema
            props.update(schema.get("properties") or {})
            if meta:
                stored = meta
        return {**base, "properties": props}, stored

    def _iter_tables(self, stream: StreamSpec, path: str, arrow_schema: pa.Schema) -> Iterator[pa.Table]:
        pf = self._open_parquet(stream.name, path)
        try:
            present = set(pf.schema_arrow.names)
            cols = [f.name for f in arrow_schema if f.name in present]
            it = pf.iter_batches(batch_size=self.options.batch_size, columns=cols)
            while True:
                try:
                    rb = next(it)
                except StopIteration:
                    break
                except Exception as exc:
                    raise self._file_error(stream.name, path, "could not be read", exc) from None
                yield self._conform(stream, path, pa.Table.from_batches([rb]), arrow_schema)
        finally:
            pf.close()

    def _open_writer(self, sw: StreamWriter, part: Part) -> None:
        comp = self._compression() or "none"
        if self._fs.local:
            # the Arrow FileOutputStream the writer would open for the path, opened here so its
            # descriptor is known: the part is written behind (StreamWriter, fs.WriteBehind)
            part.raw = pa.OSFile(part.tmp, "wb")
        else:
            part.raw = self._fs.open_write(part.tmp)
        part.handle = _ParquetPart(part.raw, sw.file_schema, comp)

    def _write_chunk(self, sw: StreamWriter, part: Part, table: pa.Table) -> None:
        part.handle.write_table(table, row_group_size=self.options.row_group_size)

    def _close_writer(self, part: Part) -> None:
        try:
            if part.handle is not None:
                part.handle.close()
        finally:
            self._release(part)


#: rows of a part's first chunk looked at to choose the dictionary-encoded columns; a column is
#: dictionary-encoded when at most half of its sampled values are distinct (fewer sampled rows:
#: every column)
_DICT_SAMPLE = 16_384
_DICT_MIN_ROWS = 1_000


def _leaf_path(field: pa.Field) -> str | None:
    """The Parquet column path of ``field``'s one leaf (what ``use_dictionary`` names): the name of
    a flat column, ``name.list.element`` for a list of flat values (the writer's default
    ``use_compliant_nested_type``); ``None`` for other nested shapes (several leaves)."""
    t = field.type
    if not pt.is_nested(t):
        return field.name
    if (pt.is_list(t) or pt.is_large_list(t)) and not pt.is_nested(t.value_type):
        return f"{field.name}.list.element"
    return None


def _dictionary_columns(table: pa.Table) -> bool | list[str]:
    """The ``use_dictionary`` setting for a Parquet file whose first chunk is ``table``.

    Dictionary encoding pays for repeated values; for mostly distinct ones (ids, timestamps, free
    text) the writer builds a dictionary, finds it too big and falls back to plain encoding, which
    costs time and space (1M rows of the W2 benchmark: 0.66 s / 70.5 MB with every column
    dictionary-encoded, 0.29 s / 59.1 MB with only the low-cardinality ones). A list of flat values
    is judged by its values (``name.list.element``: 50,000 LDAP entries with 50 such columns, 0.14
    → 0.09 CPU-s); other nested columns keep the default (every column). Only the encoding
    changes: the file's types and values are the same."""
    n = min(table.num_rows, _DICT_SAMPLE)
    if n < _DICT_MIN_ROWS:
        return True
    leaves = [_leaf_path(f) for f in table.schema]
    paths = [p for p in leaves if p is not None]
    if len(paths) < len(leaves):
        return True
    sample = table.slice(0, n)
    chosen = []
    for i, path in enumerate(paths):
        values = sample.column(i)
        try:
            few = _few_distinct(values)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            chosen.append(path)
            continue
        if few:
            chosen.append(path)
    return chosen


def _few_distinct(values: pa.ChunkedArray) -> bool:
    """``_count_distinct(values) * 2 <= len(values)`` (the dictionary choice), hashing only the first
    half of a column whose values are (almost) all distinct.

    At most ``limit = len(values) // 2`` distinct values are allowed. Where ``unique`` counts as
    ``count_distinct`` does (:func:`_unique_counts`), the first ``limit + 1`` (flattened) values are
    hashed first: more than ``limit`` distinct among them is more than ``limit`` in all, and the
    column is decided (ids, timestamps, free text: half the hashing, issue 15). Otherwise the distinct
    values of that head and the rest are hashed together: ``unique`` of their concatenation is the
    set of all distinct values (a null or NaN once, as in one pass). The answer is the same as
    counting every value at once."""
    from pyarrow._compute import call_function

    limit = len(values) // 2
    flat = call_function("list_flatten", [values]) if pt.is_nested(values.type) else values
    if not _unique_counts(flat.type):
        return _count_distinct(values) <= limit
    head = limit + 1
    if len(flat) <= head:
        return len(call_function("unique", [flat])) <= limit
    first = call_function("unique", [flat.slice(0, head)])
    if len(first) > limit:
        return False
    rest = flat.slice(head)
    both = pa.chunked_array([first, *rest.chunks], type=flat.type)
    return len(call_function("unique", [both])) <= limit


def _count_distinct(values: pa.ChunkedArray) -> int:
    """``count_distinct(values, mode="all")`` (a null counts as one value), a list column's by its
    flattened values. For the types where both kernels hash the same way (numbers, booleans,
    decimals, dates and times, strings and binaries: a NaN or a null counts once in both, 0.0 and
    -0.0 twice) it is the length of ``unique(values)``: one hash table, where ``count_distinct``
    fills one and then merges it into another (20,000 rows of the W2 table: 102 M → ~60 M
    instructions, issue 15). Any other type keeps ``count_distinct``, and raises as it did."""
    # pyarrow.compute's kernels called through pyarrow._compute: importing pyarrow.compute wraps its
    # ~300 functions in Python (~60 ms of CPU, a fifth of a small run's; issue 15)
    from pyarrow._compute import CountOptions, call_function

    if pt.is_nested(values.type):
        values = call_function("list_flatten", [values])
    if _unique_counts(values.type):
        return len(call_function("unique", [values]))
    return int(call_function("count_distinct", [values], CountOptions(mode="all")).as_py())


def _unique_counts(t: pa.DataType) -> bool:
    """Whether ``len(unique(x))`` is ``count_distinct(x, mode="all")`` for a column of type ``t``:
    the types ``count_distinct`` supports and ``unique`` hashes alike (not the dictionary, view, null
    and 32/64-bit decimal types, where one of the two kernels is missing)."""
    return bool(
        pt.is_integer(t)
        or pt.is_floating(t)
        or pt.is_boolean(t)
        or pt.is_decimal128(t)
        or pt.is_decimal256(t)
        or pt.is_date(t)
        or pt.is_time(t)
        or pt.is_timestamp(t)
        or pt.is_duration(t)
        or t == pa.month_day_nano_interval()
        or pt.is_string(t)
        or pt.is_large_string(t)
        or pt.is_binary(t)
        or pt.is_large_binary(t)
        or pt.is_fixed_size_binary(t)
    )


#: what ``pyarrow.parquet.ParquetWriter`` passes to the ``pyarrow._parquet`` writer it wraps (pyarrow
#: 15-26: version "2.6", statistics on, the V2 engine, data page version 1.0); the other arguments
#: it passes are that writer's own defaults
_WRITER_DEFAULTS: dict[str, Any] = {
    "version": "2.6",
    "write_statistics": True,
    "use_deprecated_int96_timestamps": False,
    "writer_engine_version": "V2",
    "data_page_version": "1.0",
}


def _open_parquet_writer(
    sink: Any, schema: pa.Schema, compression: str, use_dictionary: bool | list[str]
) -> Any:
    """``pyarrow.parquet.ParquetWriter(sink, schema, compression=…, use_dictionary=…)``'s writer: the
    ``pyarrow._parquet`` one it wraps, opened as it opens it — a local path as an Arrow
    ``FileOutputStream`` (``LocalFileSystem.open_output_stream``'s), a file object as it is — so the
    file's bytes are the same. Importing :mod:`pyarrow.parquet` imports ``pyarrow.fs`` and with it
    the S3, GCS, Azure and HDFS bindings and :mod:`ssl` (~45 M instructions, a sixth of a 20,000-row
    run's main thread; issue 15). A pyarrow whose writer does not take these arguments gets
    ``pyarrow.parquet``'s."""
    from pyarrow import _parquet

    try:
        return _parquet.ParquetWriter(
            sink, schema, compression=compression, use_dictionary=use_dictionary, **_WRITER_DEFAULTS
        )
    except TypeError:  # pragma: no cover - another pyarrow's private signature
        import pyarrow.parquet as pq

        return pq.ParquetWriter(sink, schema, compression=compression, use_dictionary=use_dictionary)


class _ParquetPart:
    """A Parquet writer opened at the first chunk, whose data choose the dictionary-encoded
    columns (:func:`_dictionary_columns`); a part closed without data is still a valid, empty file."""

    def __init__(self, sink: Any, schema: pa.Schema, compression: str) -> None:
        self.sink, self.schema, self.compression = sink, schema, compression
        self.writer: Any = None

    def _open(self, use_dictionary: bool | list[str]) -> Any:
        self.writer = _open_parquet_writer(self.sink, self.schema, self.compression, use_dictionary)
        return self.writer

    def write_table(self, table: pa.Table, row_group_size: int) -> None:
        writer = self.writer or self._open(_dictionary_columns(table))
        if not table.schema.equals(self.schema, check_metadata=False):  # (pq.ParquetWriter's check)
            raise ValueError(
                "Table schema does not match schema used to create file: \n"
                f"table:\n{table.schema!s} vs. \nfile:\n{self.schema!s}"
            )
        writer.write_table(table, row_group_size=row_group_size)

    def close(self) -> None:
        (self.writer or self._open(True)).close()


def _same_types(a: pa.Schema, b: pa.Schema) -> bool:
    if a.names != b.names:
        return False
    return all(fa.type == fb.type for fa, fb in zip(a, b, strict=True))
