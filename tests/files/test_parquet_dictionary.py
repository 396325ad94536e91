"""The Parquet writer's dictionary choice (``_dictionary_columns``) for tables with list columns:
chosen per leaf, values read back unchanged."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from dc_api_x.adapters.files.parquet import _dictionary_columns, _ParquetPart


def _dictionary_paths(path) -> set[str]:  # type: ignore[no-untyped-def]
    rg = pq.ParquetFile(path).metadata.row_group(0)
    return {
        rg.column(i).path_in_schema
        for i in range(rg.num_columns)
        if any("DICTIONARY" in e for e in rg.column(i).encodings)
    }


def test_list_columns_are_judged_by_their_values(tmp_path) -> None:
    """A table with list columns (an LDAP page: DN, multi-valued attributes) no longer has every
    column dictionary-encoded: each leaf is chosen by its own values, and the file reads back equal."""
    n = 4000
    table = pa.table(
        {
            "dn": pa.array([f"uid=u{i},ou=people" for i in range(n)]),
            "mail": pa.array([[f"u{i}@example.com", f"u{i}@example.org"] for i in range(n)]),
            "objectClass": pa.array([["top", "person", "inetOrgPerson"] for _ in range(n)]),
            "photo": pa.array([None] * n, pa.list_(pa.binary())),
            "counts": pa.array([[i % 5, None] if i % 3 else None for i in range(n)], pa.list_(pa.int64())),
            "big": pa.array([[b"\x00" + bytes([i % 256]) * 3] for i in range(n)], pa.large_list(pa.binary())),
            "shell": pa.array(["/bin/sh" if i % 2 else None for i in range(n)]),
        }
    )
    chosen = _dictionary_columns(table)
    assert chosen == [
        "objectClass.list.element",
        "photo.list.element",
        "counts.list.element",
        "big.list.element",
        "shell",
    ]
    path = tmp_path / "ldap.parquet"
    part = _ParquetPart(str(path), table.schema, "snappy")
    part.write_table(table.slice(0, 2500), row_group_size=10_000)
    part.write_table(table.slice(2500), row_group_size=10_000)
    part.close()
    assert pq.read_table(path).equals(table)
    # the paths named are the writer's: exactly those leaves are dictionary-encoded
    assert _dictionary_paths(path) >= {"objectClass.list.element", "counts.list.element", "shell"}
    assert not _dictionary_paths(path) & {"dn", "mail.list.element"}


def test_other_nested_columns_keep_every_column_encoded(tmp_path) -> None:
    """Structs, maps and lists of structs have several leaves: the default (every column) stays."""
    n = 2000
    rows = pa.array([{"a": i, "b": "x"} for i in range(n)])
    for col in (rows, pa.array([[{"a": i}] for i in range(n)])):
        table = pa.table({"id": pa.array(range(n)), "nested": col})
        assert _dictionary_columns(table) is True
        path = tmp_path / "nested.parquet"
        part = _ParquetPart(str(path), table.schema, "snappy")
        part.write_table(table, row_group_size=10_000)
        part.close()
        assert pq.read_table(path).equals(table)
