"""The Parquet part writer (``adapters/files/parquet.py``): the ``pyarrow._parquet`` writer opened as
``pyarrow.parquet.ParquetWriter`` opens it (the same bytes, without importing ``pyarrow.parquet``), and
the dictionary-column choice counting distinct values with ``unique`` where it equals
``count_distinct`` (issue 15, a 20,000-row sync's main thread)."""

from __future__ import annotations

import datetime as dt
import decimal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow._compute import CountOptions, call_function

from dc_api_x.adapters.files.parquet import _count_distinct, _dictionary_columns, _few_distinct, _ParquetPart


def _table(n: int = 6000) -> pa.Table:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "name": pa.array([f"name {i}" for i in range(n)]),
            "category": pa.array([None if i % 11 == 0 else f"c{i % 7}" for i in range(n)]),
            "amount": pa.array([float(i % 900) / 4 for i in range(n)]),
            "price": pa.array([decimal.Decimal(i % 50) / 100 for i in range(n)], pa.decimal128(10, 2)),
            "flag": pa.array([i % 3 == 0 for i in range(n)]),
            "at": pa.array([base + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")),
            "day": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=i % 3000) for i in range(n)]),
            "tags": pa.array([[f"t{i % 5}", f"t{i % 3}"] for i in range(n)], pa.list_(pa.string())),
            "blob": pa.array([bytes([i % 256, i % 7]) for i in range(n)], pa.binary()),
        }
    ).replace_schema_metadata({b"dcapix.stream": b'{"stream": "x"}'})


def _old_file(path: Path, table: pa.Table, compression: str, chunks: list[pa.Table]) -> bytes:
    """What the adapter wrote before: ``pyarrow.parquet.ParquetWriter`` with the same choices."""
    chosen = _dictionary_columns(chunks[0])  # (the part chooses from its first chunk)
    w = pq.ParquetWriter(str(path), table.schema, compression=compression, use_dictionary=chosen)
    for chunk in chunks:
        w.write_table(chunk, row_group_size=2500)
    w.close()
    return path.read_bytes()


@pytest.mark.parametrize("compression", ["snappy", "zstd", "none"])
def test_part_writes_the_bytes_pyarrow_parquet_writes(tmp_path: Path, compression: str) -> None:
    table = _table()
    chunks = [table.slice(0, 4000), table.slice(4000)]
    want = _old_file(tmp_path / "old.parquet", table, compression, chunks)
    path = tmp_path / "new.parquet"
    part = _ParquetPart(str(path), table.schema, compression)
    for chunk in chunks:
        part.write_table(chunk, row_group_size=2500)
    part.close()
    assert path.read_bytes() == want
    with open(tmp_path / "fileobj.parquet", "wb") as raw:  # a file object (a non-local file system's)
        part = _ParquetPart(raw, table.schema, compression)
        for chunk in chunks:
            part.write_table(chunk, row_group_size=2500)
        part.close()
    assert (tmp_path / "fileobj.parquet").read_bytes() == want
    assert pq.read_table(path).equals(table)


def test_empty_part_is_the_file_pyarrow_parquet_writes(tmp_path: Path) -> None:
    table = _table(10)
    _ParquetPart(str(tmp_path / "new.parquet"), table.schema, "snappy").close()
    w = pq.ParquetWriter(
        str(tmp_path / "old.parquet"), table.schema, compression="snappy", use_dictionary=True
    )
    w.close()
    assert (tmp_path / "new.parquet").read_bytes() == (tmp_path / "old.parquet").read_bytes()


def test_part_refuses_a_table_of_another_schema(tmp_path: Path) -> None:
    table = _table(1200)
    part = _ParquetPart(str(tmp_path / "x.parquet"), table.schema, "snappy")
    part.write_table(table, row_group_size=1000)
    with pytest.raises(ValueError, match="Table schema does not match"):
        part.write_table(table.drop(["id"]), row_group_size=1000)
    part.close()


def _cases() -> dict[str, pa.Array]:
    return {
        "bool": pa.array([True, None, False, True]),
        "int8": pa.array([1, None, 1, 2], pa.int8()),
        "uint64": pa.array([1, None, 1, 2], pa.uint64()),
        "float16": pa.array([1, None, 1, 2], pa.float64()).cast(pa.float16()),
        "float64 nan, -0.0": pa.array([float("nan"), float("nan"), None, 0.0, -0.0, 1.0]),
        "float32": pa.array([1.5, None, 1.5], pa.float32()),
        "decimal128": pa.array([decimal.Decimal("1.1"), None, decimal.Decimal("1.1")]),
        "decimal256": pa.array([decimal.Decimal("1.1"), None, decimal.Decimal("1.2")], pa.decimal256(40, 2)),
        "decimal64": pa.array([decimal.Decimal("1.1"), None, decimal.Decimal("1.1")], pa.decimal64(12, 2)),
        "date32": pa.array([dt.date(2020, 1, 1), None, dt.date(2020, 1, 1)]),
        "date64": pa.array([1, None, 1], pa.date64()),
        "time32": pa.array([1, None, 2], pa.time32("s")),
        "time64": pa.array([1, None, 1], pa.time64("us")),
        "timestamp": pa.array([1, None, 1], pa.timestamp("us", "UTC")),
        "duration": pa.array([1, None, 1], pa.duration("s")),
        "interval": pa.array([pa.MonthDayNano([1, 2, 3]), None, pa.MonthDayNano([1, 2, 3])]),
        "string": pa.array(["a", None, "a", ""]),
        "large_string": pa.array(["a", None, "b"], pa.large_string()),
        "string_view": pa.array(["a", None, "a"], pa.string_view()),
        "binary": pa.array([b"a", None, b"a"]),
        "large_binary": pa.array([b"a", None, b"a"], pa.large_binary()),
        "fixed_size_binary": pa.array([b"a", None, b"a"], pa.binary(1)),
        "dictionary": pa.array(["a", None, "a", "b"]).dictionary_encode(),
        "null": pa.array([None, None], pa.null()),
        "list": pa.array([[1, 2], [1], None, [None]]),
        "large_list": pa.array([["a"], ["a", None]], pa.large_list(pa.string())),
    }


@pytest.mark.parametrize("name", sorted(_cases()))
def test_count_distinct_is_count_distinct_mode_all(name: str) -> None:
    """Every type: the same count as ``count_distinct(mode="all")`` (a list column's of its flattened
    values), or the same error, on one chunk and on several."""
    arr = _cases()[name]
    for values in (pa.chunked_array([arr]), pa.chunked_array([arr, arr[:2], arr])):
        flat = call_function("list_flatten", [values]) if pa.types.is_nested(values.type) else values
        try:
            want: object = call_function("count_distinct", [flat], CountOptions(mode="all")).as_py()
        except pa.ArrowNotImplementedError:
            want = pa.ArrowNotImplementedError
        if want is pa.ArrowNotImplementedError:
            with pytest.raises(pa.ArrowNotImplementedError):
                _count_distinct(values)
        else:
            assert _count_distinct(values) == want


def _around_half() -> dict[str, pa.ChunkedArray]:
    """Columns whose distinct count is at, just under and just over half their length, with the
    distinct values early, late or spread, nulls, NaNs, ±0.0, several chunks, list columns."""
    out: dict[str, pa.ChunkedArray] = {}
    for n in (7, 8, 1000, 1001):
        half = n // 2
        for d in (1, half - 1, half, half + 1, n):
            if d < 1:
                continue
            spread = [i % d for i in range(n)]
            early = [min(i, d - 1) for i in range(n)]
            late = [max(0, i - (n - d)) for i in range(n)]
            for kind, vals in (("spread", spread), ("early", early), ("late", late)):
                out[f"int n={n} d={d} {kind}"] = pa.chunked_array([pa.array(vals)])
                out[f"str n={n} d={d} {kind} chunks"] = pa.chunked_array(
                    [pa.array([str(v) for v in vals[:3]]), pa.array([str(v) for v in vals[3:]])]
                )
            out[f"null n={n} d={d}"] = pa.chunked_array([pa.array([None if v == 0 else v for v in spread])])
            out[f"nan n={n} d={d}"] = pa.chunked_array(
                [pa.array([float("nan") if v == 0 else (-0.0 if v == 1 else float(v)) for v in late])]
            )
            out[f"list n={n} d={d}"] = pa.chunked_array([pa.array([[v, v + 1] for v in early])])
    for name, arr in _cases().items():
        out[name] = pa.chunked_array([arr, arr[:2], arr])
    return out


@pytest.mark.parametrize("name", sorted(_around_half()))
def test_few_distinct_decides_as_counting_every_value(name: str) -> None:
    """The dictionary choice with its early exit is ``count_distinct * 2 <= rows`` for every column
    (or the same error)."""
    values = _around_half()[name]
    try:
        want: object = _count_distinct(values) * 2 <= len(values)
    except pa.ArrowNotImplementedError:
        with pytest.raises(pa.ArrowNotImplementedError):
            _few_distinct(values)
        return
    assert _few_distinct(values) is want


def test_dictionary_columns_are_chosen_as_before() -> None:
    """The choice on a table mixing repeated and distinct values, counted the way it was."""
    table = _table()
    sample = table.slice(0, 6000)
    want = []
    for i, field in enumerate(table.schema):
        values = sample.column(i)
        if pa.types.is_nested(values.type):
            values = call_function("list_flatten", [values])
        distinct = call_function("count_distinct", [values], CountOptions(mode="all")).as_py()
        if distinct * 2 <= len(values):
            want.append(field.name + (".list.element" if pa.types.is_nested(field.type) else ""))
    got = _dictionary_columns(table)
    assert got == want
    assert got == ["category", "amount", "price", "flag", "day", "tags.list.element", "blob"]


def test_writing_parquet_imports_no_pyarrow_parquet(tmp_path: Path) -> None:
    """A part written and closed imports neither ``pyarrow.parquet`` nor ``pyarrow.fs`` (its S3, GCS,
    Azure and HDFS bindings, ``ssl``)."""
    code = (
        "import sys, pyarrow as pa\n"
        "from dc_api_x.adapters.files.parquet import _ParquetPart\n"
        "t = pa.table({'a': list(range(2000)), 'b': ['x'] * 2000})\n"
        f"p = _ParquetPart({str(tmp_path / 'x.parquet')!r}, t.schema, 'snappy')\n"
        "p.write_table(t, 1000); p.close()\n"
        "print(sorted(m for m in ('pyarrow.parquet', 'pyarrow.fs', 'ssl') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert pq.read_table(tmp_path / "x.parquet").num_rows == 2000
