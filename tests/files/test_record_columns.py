"""dc_api_x.arrow.RecordColumns / ColumnarBatch: records transposed page by page give the same
Arrow table as the records themselves (values, types, missing fields, fields first seen later)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dc_api_x.arrow import ColumnarBatch, ConversionError, RecordColumns, records_to_arrow
from dc_api_x.types import Batch

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": ["integer", "null"]},
        "at": {"type": ["string", "null"], "format": "date-time"},
        "day": {"type": ["string", "null"], "format": "date"},
        "attrs": {"type": ["object", "null"]},
        "amount": {"type": ["number", "null"]},
    },
}


def pages() -> list[list[dict]]:
    return [
        [
            {"id": 1, "at": "2020-01-01T00:00:00+00:00", "day": "2020-01-02", "attrs": {"k": [1, 2]}},
            {"id": 2, "at": None, "day": "2021-03-04", "attrs": None, "amount": 1.5},
        ],
        [{"id": 3, "amount": 2.25}],  # fields missing from every record of a page
        [],
        [{"id": 4, "at": "2022-05-06T07:08:09Z", "day": None, "attrs": "text", "amount": 3}],
    ]


def columnar(page_list: list[list[dict]], names_of=lambda i: SCHEMA["properties"]) -> ColumnarBatch:
    cols = RecordColumns()
    records: list[dict] = []
    for i, page in enumerate(page_list):
        cols.add(page, names_of(i))
        records.extend(page)
    return ColumnarBatch(records=records, columns=cols, schema=SCHEMA)


def test_columns_give_the_table_of_the_records() -> None:
    batch = columnar(pages())
    records = [r for p in pages() for r in p]
    expected = records_to_arrow(records, SCHEMA)
    table = batch.to_arrow()
    assert table.equals(expected)
    assert table.column("attrs").to_pylist() == ['{"k":[1,2]}', None, None, '"text"']
    assert table.column("amount").to_pylist() == [None, 1.5, 2.25, 3.0]
    assert batch.records == records  # the dict view is the records as read
    assert len(batch) == 4


def test_a_field_first_seen_on_a_later_page_is_none_before_it() -> None:
    # the read loop's names grow when the inferred schema widens: earlier rows hold None
    names = [["id"], ["id"], ["id"], ["id", "at", "day", "attrs", "amount"]]
    batch = columnar(pages(), names_of=lambda i: names[i])
    assert batch.to_arrow().column("at").to_pylist()[:3] == [None, None, None]
    # ... which is what the records hold there only when they lack the field: the loop widens the
    # schema at the first page holding a field, so earlier pages never have it
    cols = RecordColumns()
    cols.add([{"id": 1, "x": 5}], ["id"])
    cols.add([{"id": 2, "x": 6}], ["id", "x"])
    assert cols.columns == {"id": [1, 2], "x": [None, 6]}


def test_a_name_added_earlier_but_not_named_later_is_still_filled() -> None:
    cols = RecordColumns()
    cols.add([{"a": 1, "b": 2}], ["a", "b"])
    cols.add([{"a": 3, "b": 4}, {"a": 5}], ["a"])
    assert cols.columns == {"a": [1, 3, 5], "b": [2, 4, None]}
    assert cols.rows == 3


def test_an_asked_schema_with_other_names_takes_them_from_the_records() -> None:
    batch = columnar(pages())
    arrow_schema = pa.schema([pa.field("extra", pa.string()), pa.field("id", pa.int64())])
    batch._records[0]["extra"] = "x"  # (a field the batch schema does not name)
    table = batch.to_arrow(arrow_schema)
    assert table.column("extra").to_pylist() == ["x", None, None, None]
    assert table.column("id").to_pylist() == [1, 2, 3, 4]


def test_columns_that_do_not_match_the_records_are_not_used() -> None:
    cols = RecordColumns()
    cols.add([{"id": 1}], ["id"])
    records = [{"id": 1}, {"id": 2}]  # a record added without its columns
    assert records_to_arrow(records, SCHEMA, columns=cols).column("id").to_pylist() == [1, 2]


def test_a_bad_value_is_named_as_without_columns() -> None:
    page = [{"id": 1}, {"id": 2.5}]
    cols = RecordColumns()
    cols.add(page, ["id"])
    with pytest.raises(ConversionError, match="'id'"):
        ColumnarBatch(records=page, columns=cols, schema=SCHEMA).to_arrow()
    with pytest.raises(ConversionError, match="'id'"):
        Batch(records=page, schema=SCHEMA).to_arrow()
