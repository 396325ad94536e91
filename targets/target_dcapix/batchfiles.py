"""Reading the files of Singer BATCH messages for target-dcapix: JSONL (gzip or not), Parquet and
Arrow IPC (``"format": "arrow"``, what tap-dcapix writes for its own target), each into
:class:`~dc_api_x.types.Batch` objects of at most ``batch_size_rows`` rows.

:class:`BatchFileReading` is a mixin of :class:`~target_dcapix.sinks.DcApiXSink`: the rows of a
file get the check a RECORD message gets (the sink's :meth:`check`), skipped for Arrow data whose
column types alone satisfy the stream's schema (:meth:`BatchFileReading._valid_by_types`); an
error names the file and its line (JSONL) or row (Parquet, Arrow IPC).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from dc_api_x.exceptions import SchemaError
from dc_api_x.json_errors import describe_json_error
from dc_api_x.types import Batch
from dc_api_x.values import json_loads

if TYPE_CHECKING:  # pragma: no cover
    from .sinks import StreamWriter
    from .target import TargetDcApiX

__all__ = ["BatchFileReading", "one_line"]


def one_line(text: Any) -> str:
    """``text`` on one line (whitespace runs become one space), for error messages."""
    return " ".join(str(text).split())


class BatchFileReading:
    """The BATCH-file readers of a sink (a mixin: the attributes below are the sink's)."""

    if TYPE_CHECKING:  # pragma: no cover
        _target: TargetDcApiX
        _shapes: set[tuple[tuple[str, ...], tuple[type, ...]]] | None
        keys: tuple[str, ...]
        limit: int
        schema: dict[str, Any]
        stream_name: str
        writer: StreamWriter

        def check(self, record: Any) -> None: ...

    def _open(self, url: str) -> Any:
        from urllib.parse import unquote, urlparse

        parsed = urlparse(url)
        try:
            if parsed.scheme in ("", "file"):
                path = unquote(parsed.path) if parsed.scheme == "file" else url
                return open(path, "rb")
            import fsspec

            return fsspec.open(url, "rb").open()
        except (OSError, ImportError, ValueError) as exc:
            raise SchemaError(
                f"stream {self.stream_name!r}, {self._target.where()}: cannot open BATCH file {url!r}: "
                f"{one_line(str(exc))}",
                stream=self.stream_name,
            ) from None

    def _checked(self, record: Any, url: str, where: str) -> None:
        try:
            self.check(record)
        except SchemaError as exc:
            raise SchemaError(f"{exc} (BATCH file {url!r} {where})", stream=self.stream_name) from None

    def _valid_by_types(self, table: Any) -> bool:
        """Whether every row of an Arrow ``table`` (a Parquet BATCH file) passes :meth:`check` by its
        column types alone, so its rows need not be checked one by one in their JSON forms: the
        schema constrains nothing but types (the shape cache's condition), every column is a
        property, every required field and key property is a column, nulls only where the property
        allows null, and each column's Arrow type has the JSON form of an allowed type. Anything
        else (nested columns, NaN, a mismatch) takes the per-row check, which names the row. A
        JSON-text column (``dcapix.json``) is checked by the JSON type of each value, told by its
        first character (:func:`_json_text_fits`)."""
        if self._shapes is None:
            return False
        import pyarrow.compute as pc
        import pyarrow.types as pt

        from dc_api_x.arrow import JSON_META, json_types

        props: Mapping[str, Any] = self.schema.get("properties") or {}
        names = set(table.column_names)
        if not names <= set(props) or not set(self.schema.get("required") or ()) | set(self.keys) <= names:
            return False
        for f, col in zip(table.schema, table.columns, strict=True):
            types, nullable = json_types(props[f.name])
            if not types:
                continue  # no type: anything goes
            if col.null_count and not nullable:
                return False
            if col.null_count == len(col):
                continue
            t = f.type
            if (pt.is_string(t) or pt.is_large_string(t)) and (f.metadata or {}).get(JSON_META) == b"true":
                ok = _json_text_fits(col, types, nullable)  # JSON text: its values' JSON types
            elif pt.is_integer(t):
                ok = bool(types & {"integer", "number"})
            elif pt.is_floating(t):
                ok = "number" in types and not pc.any(pc.is_nan(col)).as_py()
            elif pt.is_boolean(t):
                ok = "boolean" in types
            elif (
                pt.is_string(t)
                or pt.is_large_string(t)
                or pt.is_timestamp(t)
                or pt.is_date(t)
                or pt.is_time(t)
                or pt.is_decimal(t)
                or pt.is_binary(t)
                or pt.is_large_binary(t)
            ):
                ok = "string" in types  # their JSON forms are strings
            else:
                ok = False
            if not ok:
                return False
        return True

    def _jsonl_batches(self, url: str, *, gzipped: bool) -> Iterator[Batch]:
        schema = self.writer.spec.schema
        with self._open(url) as raw:
            gzipped = gzipped or raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            lines = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            records: list[dict[str, Any]] = []
            loads = json_loads  # orjson, or the exact decode where orjson would change a number
            for i, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    rec = loads(line)
                except orjson.JSONDecodeError as exc:
                    raise SchemaError(
                        f"stream {self.stream_name!r}, BATCH file {url!r} line {i}: not valid JSON "
                        f"({describe_json_error(exc, line)})",
                        stream=self.stream_name,
                    ) from None
                self._checked(rec, url, f"line {i}")
                records.append(rec)
                if len(records) >= self.limit:
                    yield Batch.from_records(records, schema=schema)
                    records = []
            if records:
                yield Batch.from_records(records, schema=schema)

    def _unreadable(self, url: str, what: str, exc: Exception) -> SchemaError:
        return SchemaError(
            f"stream {self.stream_name!r}, {self._target.where()}: BATCH file {url!r} is not "
            f"readable {what}: {one_line(str(exc))}",
            stream=self.stream_name,
        )

    def _check_columns(self, url: str, names: Sequence[str]) -> None:
        props: Mapping[str, Any] = self.schema.get("properties") or {}
        unknown = [c for c in names if c not in props]
        if unknown and self.schema.get("additionalProperties") is False:
            raise SchemaError(
                f"stream {self.stream_name!r}, BATCH file {url!r}, field {unknown[0]!r}: column not in "
                f"the stream's schema",
                stream=self.stream_name,
            )

    def _table_batches(self, url: str, what: str, tables: Iterator[Any]) -> Iterator[Batch]:
        """The :class:`Batch` of each Arrow table read from a file, checked as :meth:`_valid_by_types`
        says (else row by row in the rows' JSON forms, naming the row)."""
        from dc_api_x.arrow import arrow_to_records
        from dc_api_x.values import json_default

        row = 0
        while True:
            try:
                table = next(tables)
            except StopIteration:
                break
            except Exception as exc:
                raise self._unreadable(url, what, exc) from None
            if not self._valid_by_types(table):
                # the check of a RECORD message, on the rows' JSON forms (what a JSONL file holds)
                forms = orjson.loads(orjson.dumps(arrow_to_records(table), default=json_default))
                for i, rec in enumerate(forms, start=row + 1):
                    self._checked(rec, url, f"row {i}")
            row += table.num_rows
            yield Batch.from_arrow(table, schema=self.writer.spec.schema)

    def _parquet_batches(self, url: str) -> Iterator[Batch]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self._open(url) as raw:
            try:
                pf = pq.ParquetFile(raw)
            except Exception as exc:
                raise self._unreadable(url, "Parquet", exc) from None
            self._check_columns(url, pf.schema_arrow.names)
            tables = (pa.Table.from_batches([rb]) for rb in pf.iter_batches(batch_size=self.limit))
            yield from self._table_batches(url, "Parquet", tables)

    def _arrow_ipc_batches(self, url: str) -> Iterator[Batch]:
        """An Arrow IPC file (the file format; the stream format too): a local file is mapped into
        memory, its record batches gathered into tables of up to ``batch_size_rows`` rows."""
        from urllib.parse import unquote, urlparse

        import pyarrow as pa

        parsed = urlparse(url)
        try:
            if parsed.scheme in ("", "file"):
                source: Any = pa.memory_map(unquote(parsed.path) if parsed.scheme == "file" else url, "r")
            else:
                source = pa.BufferReader(self._open(url).read())
        except (OSError, ValueError) as exc:
            raise SchemaError(
                f"stream {self.stream_name!r}, {self._target.where()}: cannot open BATCH file {url!r}: "
                f"{one_line(str(exc))}",
                stream=self.stream_name,
            ) from None
        with source:
            try:
                try:
                    reader: Any = pa.ipc.open_file(source)
                    n = reader.num_record_batches
                    parts: Iterator[Any] = (reader.get_batch(i) for i in range(n))
                except pa.ArrowInvalid:
                    source.seek(0)
                    reader = pa.ipc.open_stream(source)
                    parts = iter(reader)
                schema = reader.schema
            except Exception as exc:
                raise self._unreadable(url, "Arrow IPC", exc) from None
            self._check_columns(url, schema.names)
            yield from self._table_batches(url, "Arrow IPC", _gather(parts, schema, self.limit))


def _gather(parts: Iterator[Any], schema: Any, limit: int) -> Iterator[Any]:
    """Tables of up to ``limit`` rows from the record batches ``parts`` (zero-copy slices)."""
    import pyarrow as pa

    held: list[Any] = []
    rows = 0
    for rb in parts:
        while rb.num_rows:
            take = min(rb.num_rows, limit - rows)
            held.append(rb.slice(0, take))
            rows += take
            rb = rb.slice(take)
            if rows >= limit:
                yield pa.Table.from_batches(held, schema=schema)
                held, rows = [], 0
    if held:
        yield pa.Table.from_batches(held, schema=schema)


#: The JSON type of a JSON text, by its first non-blank character.
_JSON_FIRST = {"{": "object", "[": "array", '"': "string", "t": "boolean", "f": "boolean", "n": "null"}


def _json_text_fits(col: Any, types: set[str], nullable: bool) -> bool:
    """Whether every value of a JSON-text Arrow column (``dcapix.json``) is a JSON document whose
    type ``types`` allows (``nullable``: JSON ``null`` too), told by the values' first non-blank
    characters in Arrow kernels (no per-row Python). A number needs ``number``, or ``integer`` when
    none of the column's numbers has a fraction or an exponent. Anything unexpected (an empty text,
    another first character) is ``False``: the caller checks such a column row by row."""
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(col)
    first = pc.utf8_slice_codeunits(trimmed, 0, 1)
    for ch in pc.unique(first).to_pylist():
        if ch is None:
            continue
        kind = _JSON_FIRST.get(ch)
        if kind is None and (ch == "-" or ch.isdigit()):
            if "number" in types:
                continue
            if "integer" not in types:
                return False
            nums = pc.filter(trimmed, pc.equal(first, ch))
            if pc.any(pc.match_substring_regex(nums, r"[.eE]")).as_py():
                return False
            continue
        if kind == "null":
            if not nullable:
                return False
            continue
        if kind is None or kind not in types:
            return False
    return True
