"""The ``csv`` adapter: CSV files through :mod:`pyarrow.csv` (header row; gzip optional); binary values
as base64, nested values as JSON text."""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.types as pt

from ...arrow import (
    ConversionError,
    InexactNumberError,
    _column_to_arrow,
    arrow_to_jsonschema,
    arrow_to_records,
    cast_table,
    rebatch,
)
from ...exceptions import SchemaError
from ...types import JSONSchema, StreamSpec
from ...values import json_default, json_form
from .base import FileAdapter, read_batches
from .writers import Part, StreamWriter

__all__ = ["CSVAdapter"]


def _csv_text_type(t: pa.DataType) -> bool:
    """Types stored as text in CSV and converted by dc-api-x (not by the CSV parser)."""
    return (
        pt.is_binary(t)
        or pt.is_large_binary(t)
        or pt.is_struct(t)
        or pt.is_list(t)
        or pt.is_large_list(t)
        or pt.is_time(t)
    )


class CSVAdapter(FileAdapter):
    """``csv``: CSV files through :mod:`pyarrow.csv` (header row; gzip optional). Binary values are
    written as base64, nested values as JSON text."""

    name = "csv"
    suffixes = (".csv", ".tsv")
    needs_sidecar = True

    def extension(self, compression: str | None) -> str:
        return "csv.gz" if compression == "gzip" else "csv"

    def _open_stream(self, stream: str, path: str) -> Any:
        try:
            raw = self._fs.open_read(path)
        except OSError as exc:
            raise self._file_error(stream, path, "could not be opened", exc) from None
        if self._is_gzip(path):
            return gzip.GzipFile(fileobj=raw, mode="rb")
        return raw

    def _reader(
        self,
        stream: str,
        path: str,
        column_types: Mapping[str, pa.DataType] | None,
        block_size: int | None = None,
    ) -> Any:
        fh = self._open_stream(stream, path)
        read_opts = pacsv.ReadOptions(block_size=block_size or (1 << 22))
        parse = pacsv.ParseOptions(delimiter=self.options.delimiter, newlines_in_values=True)
        conv = pacsv.ConvertOptions(
            column_types=dict(column_types or {}), strings_can_be_null=True, quoted_strings_can_be_null=False
        )
        try:
            return fh, pacsv.open_csv(fh, read_options=read_opts, parse_options=parse, convert_options=conv)
        except Exception as exc:
            fh.close()
            raise self._file_error(stream, path, "is not a readable CSV file", exc) from None

    def _file_schema(self, stream: str, path: str) -> tuple[JSONSchema, dict[str, Any]]:
        fh, reader = self._reader(stream, path, None, block_size=1 << 20)
        try:
            schema = reader.schema
        finally:
            fh.close()
        fields = []
        for f in schema:
            t = f.type
            if pt.is_null(t):
                t = pa.string()
            elif pt.is_timestamp(t):
                t = pa.timestamp("us", tz=t.tz)
            fields.append(pa.field(f.name, t))
        schema_ = arrow_to_jsonschema(pa.schema(fields))
        for name in self._inexact_float_columns(
            stream, path, [f.name for f in fields if pt.is_floating(f.type)]
        ):
            schema_["properties"][name]["format"] = "decimal"  # every digit kept (decimal text)
        return schema_, {}

    def _inexact_float_columns(self, stream: str, path: str, names: list[str]) -> list[str]:
        """The columns of ``names`` (inferred float64 by Arrow from the file's first block) holding a
        number a float64 would change (16+ digits, integers beyond 64 bits): they are inferred as
        decimals instead, so reading never rounds them."""
        if not names:
            return []
        fh, reader = self._reader(stream, path, {n: pa.string() for n in names}, block_size=1 << 20)
        try:
            first = reader.read_next_batch()
        except StopIteration:
            return []
        except Exception as exc:
            raise self._file_error(stream, path, "could not be read", exc) from None
        finally:
            fh.close()
        found = []
        for name in names:
            col = first.column(name)
            try:
                cast_table(pa.table({name: col}), pa.schema([pa.field(name, pa.float64())]))
            except ConversionError as exc:
                if isinstance(exc.__cause__, InexactNumberError):
                    found.append(name)
        return found

    def _iter_tables(self, stream: StreamSpec, path: str, arrow_schema: pa.Schema) -> Iterator[pa.Table]:
        # every column is read as text and converted by cast_table: the JSON-form rules apply
        # (zone-less date-times are UTC, base64, JSON text) and a bad value names its field
        types = {f.name: pa.string() for f in arrow_schema}
        fh, reader = self._reader(stream.name, path, types)
        try:

            def unreadable(exc: Exception) -> Exception:
                return self._file_error(stream.name, path, "could not be read", exc)

            for table in rebatch(read_batches(reader, unreadable), self.options.batch_size, reader.schema):
                yield self._conform(stream, path, table, arrow_schema)
        finally:
            fh.close()

    def _conform(self, stream: StreamSpec, path: str, table: pa.Table, arrow_schema: pa.Schema) -> pa.Table:
        # base64 text → bytes (an Arrow cast string → binary would keep the text itself)
        for f in arrow_schema:
            if (pt.is_binary(f.type) or pt.is_large_binary(f.type)) and f.name in table.column_names:
                i = table.column_names.index(f.name)
                try:
                    arr = _column_to_arrow(table.column(i).to_pylist(), f)
                except (ValueError, TypeError) as exc:
                    raise SchemaError(
                        f"adapter {self.name!r}, stream {stream.name!r}, field {f.name!r}: "
                        f"{self._fs.display(path)!r}: not base64 text: {exc}",
                        adapter=self.name,
                        stream=stream.name,
                    ) from None
                table = table.set_column(i, pa.field(f.name, f.type), arr)
        return super()._conform(stream, path, table, arrow_schema)

    def _open_writer(self, sw: StreamWriter, part: Part) -> None:
        part.raw = self._fs.open_write(part.tmp)
        out: Any = part.raw
        if self._compression() == "gzip":
            out = gzip.GzipFile(fileobj=part.raw, mode="wb", compresslevel=6, mtime=0)
        part.handle = (out, None)

    def _csv_table(self, table: pa.Table) -> pa.Table:
        cols = []
        fields = []
        for f, col in zip(table.schema, table.columns, strict=True):
            if (
                pt.is_binary(f.type)
                or pt.is_large_binary(f.type)
                or pt.is_decimal(f.type)
                or pt.is_time(f.type)
            ):
                # base64, plain-notation decimals (Arrow's cast would write 1E-10), ISO times
                col = pa.array(
                    [None if v is None else json_form(v) for v in col.to_pylist()], type=pa.string()
                )
                f = pa.field(f.name, pa.string())
            elif _csv_text_type(f.type):
                col = pa.array(
                    [
                        None if v is None else orjson.dumps(v, default=json_default).decode()
                        for v in arrow_to_records(pa.table([col], schema=pa.schema([f])))
                        for v in [v[f.name]]
                    ],
                    type=pa.string(),
                )
                f = pa.field(f.name, pa.string())
            cols.append(col)
            fields.append(pa.field(f.name, f.type))
        return pa.Table.from_arrays(cols, schema=pa.schema(fields))

    def _write_chunk(self, sw: StreamWriter, part: Part, table: pa.Table) -> None:
        out, writer = part.handle
        table = self._csv_table(table)
        if writer is None:
            writer = pacsv.CSVWriter(
                out, table.schema, write_options=pacsv.WriteOptions(delimiter=self.options.delimiter)
            )
            part.handle = (out, writer)
        writer.write_table(table)

    def _close_writer(self, part: Part) -> None:
        try:
            if part.handle is not None:
                out, writer = part.handle
                if writer is not None:
                    writer.close()
                if out is not part.raw:
                    out.close()
        finally:
            self._release(part)
