"""Pages decoded straight into columns (``adapters._http_columns``): the same Arrow table and the same
records as the dict path, whatever the page holds; pages the plan does not take go the dict path."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pytest

from dc_api_x import PaginationError, create_adapter
from dc_api_x.adapters import _http_read
from dc_api_x.adapters._http_columns import PageColumnsBatch, page_plan
from tests.http.conftest import PAGE_SCHEMA as SCHEMA


def _row(i: int) -> bytes:
    return (
        b'{"id":%d,"name":"n%d","amount":%d.25,"ok":true,"at":"2024-01-01T00:00:%02dZ",'
        b'"day":"2024-02-03","attrs":{"k":%d,"tags":["a","b"]}}' % (i, i, i, i % 60, i)
    )


# pages of 3 records; each odd page holds something the plan refuses or the checks decide
SPECIAL: dict[int, list[bytes]] = {
    1: [  # a long digit run (here in a string and a JSON column): the dict path decides
        b'{"id":3,"name":"12345678901234567890","amount":0.5,"ok":null,"at":null,'
        b'"day":null,"attrs":{"big":12345678901234567890123}}'
    ],
    3: [  # -0 (the integer 0 for orjson), exponents, a missing field, JSON text orjson rewrites
        b'{"id":9,"name":"caf\\u00e9 \\"q\\"","amount":-0,"ok":false,"at":"2024-01-01T00:00:00+02:00",'
        b'"day":"2024-02-03","attrs":{"k": 1.50, "s":"\\u00e9"}}',
        b'{"id":10,"amount":1E5,"attrs":"text"}',
        b'{"id":11,"name":null,"amount":null,"attrs":[1,2.0,null]}',
    ],
    5: [  # a number as a string and an integer as 1.0: the dict path converts them
        b'{"id":15,"name":"s","amount":"2.5","ok":true,"at":null,"day":null,"attrs":{}}',
        b'{"id":16.0,"name":"t","amount":3,"ok":true,"at":null,"day":null,"attrs":null}',
    ],
    7: [  # a field the schema does not declare (the inferred schema grows)
        b'{"id":21,"name":"u","amount":1.5,"ok":true,"at":null,"day":null,"attrs":null,"extra":7}'
    ],
    9: [  # an envelope key not on the first page
        b'{"id":27,"name":"v","amount":2.5,"ok":true,"at":null,"day":null,"attrs":null}'
    ],
}
PAGES = 12
SIZE = 3


def _page_body(page: int, *, total: bool = True) -> bytes:
    rows = [_row(page * SIZE + i) for i in range(SIZE)]
    special = SPECIAL.get(page, [])
    rows[: len(special)] = special
    extra = b',"note":"hello"' if page == 9 else b""
    tail = b',"total":%d' % (PAGES * SIZE) if total else b""
    return b'{"records":[' + b",".join(rows) + b"]" + tail + extra + b"}"


def _route(req: Any) -> tuple[int, dict[str, str], Any]:
    off = int(req.arg("offset", "0") or 0)
    return 200, {"content-type": "application/json"}, _page_body(off // SIZE)


def _adapter(server: Any, schema: dict[str, Any] | None = None, **kw: Any) -> Any:
    stream: dict[str, Any] = {"name": "items", "path": "/items", "records_path": "records"}
    if schema is not None:
        stream["schema"] = schema
    return create_adapter(
        {
            "adapter": "http",
            "base_url": server.url,
            "streams": [stream],
            "pagination": {
                "type": "offset",
                "offset_param": "offset",
                "limit_param": "limit",
                "limit": SIZE,
                "total_path": "total",
            },
            "retries": {"backoff_factor": 0.01},
            **kw,
        }
    )


def _read(server: Any, columnar: bool, monkeypatch: Any, schema: dict[str, Any] | None = None) -> Any:
    with monkeypatch.context() as m:
        if not columnar:
            m.setattr(_http_read, "_planner", lambda *a, **k: None)
        with _adapter(server, schema) as api:
            spec = api.discover()[0]
            batches = list(api.read(spec))
            tables = [b.to_arrow() for b in batches]
            records = [r for b in batches for r in b.records]
            return batches, tables, records


@pytest.mark.parametrize("schema", [None, SCHEMA], ids=["inferred", "declared"])
def test_page_columns_give_the_dict_paths_table_and_records(server, monkeypatch, schema):
    server.route("GET", "/items", _route)
    monkeypatch.setattr(_http_read, "BATCH_SECONDS", 60.0)
    batches, tables, records = _read(server, True, monkeypatch, schema)
    _, tables0, records0 = _read(server, False, monkeypatch, schema)
    assert any(isinstance(b, PageColumnsBatch) for b in batches)
    assert records == records0
    assert len(records) == PAGES * SIZE
    t, t0 = (
        pa.concat_tables(tables, promote_options="default"),
        pa.concat_tables(tables0, promote_options="default"),
    )
    assert t.schema == t0.schema
    assert t.to_pylist() == t0.to_pylist()
    assert t.equals(t0)
    # -0 stays the integer 0, as orjson reads it; the long integer of a JSON column every digit
    by_id = {r["id"]: r for r in records}
    assert by_id[9]["amount"] == 0 and str(t.column("amount")[9].as_py()) == "0.0"
    assert t.column("attrs")[3].as_py() == '{"big":12345678901234567890123}'


def test_a_long_number_in_a_float_column_is_refused_as_on_the_dict_path(server, monkeypatch):
    long = b'{"id":3,"name":"x","amount":0.1000000000000000055511151231257827}'
    bodies = [b'{"records":[' + _row(i) + b"," + _row(i + 1) + b"]}" for i in (1, 3, 5)]
    bodies[2] = bodies[2].replace(_row(6), long)  # the first page, one of columns, a refused one
    server.route("GET", "/items", lambda req: (200, {}, bodies[min(int(req.arg("page", "1")) - 1, 2)]))

    def error(columnar: bool) -> str:
        with monkeypatch.context() as m:
            if not columnar:
                m.setattr(_http_read, "_planner", lambda *a, **k: None)
            pagination = {"type": "page_number", "page_param": "page", "total_pages_path": None}
            with _adapter(server, SCHEMA, pagination={**pagination, "max_pages": 3}) as api:
                batches = list(api.read(api.discover()[0]))
                assert sum(map(len, batches)) == 6
                assert isinstance(batches[0], PageColumnsBatch) == columnar
                assert str(batches[-1].records[-1]["amount"]) == "0.1000000000000000055511151231257827"
                with pytest.raises(ValueError) as info:
                    for b in batches:
                        b.to_arrow()
                return str(info.value)

    assert "it would be rounded" in error(True)
    assert error(True) == error(False)


def test_page_columns_batch_is_not_decoded_to_dicts_for_its_arrow_view(server, monkeypatch):
    server.route("GET", "/items", lambda req: (200, {}, _page_body(0, total=False).replace(b"}]", b"}]")))
    with _adapter(server, SCHEMA, pagination={"type": "single_page"}) as api:
        spec = api.discover()[0]
        (b,) = list(api.read(spec))
    # a single page is the first page: the dict path; a plan over it gives the same table
    plan = page_plan(SCHEMA, "records", orjson.loads(_page_body(0)))
    assert plan is not None
    page = plan.decode(_page_body(0))
    assert page is not None and len(page) == SIZE
    batch = PageColumnsBatch(parts=[page], schema=SCHEMA)
    table = batch.to_arrow()
    assert not batch.has_records
    assert table.equals(b.to_arrow())
    assert batch.records == b.records


def test_plan_refuses_what_only_the_dict_path_decides():
    first = {"records": [], "total": 1}
    plan = page_plan(SCHEMA, "records", first)
    assert plan is not None
    assert plan.decode(b'{"records":[{"id":12345678901234567890}],"total":1}') is None  # long number
    assert plan.decode(b'{"records":[{"id":"1"}],"total":1}') is None  # a string in an integer column
    assert plan.decode(b'{"records":[{"id":1,"new":2}],"total":1}') is None  # an unknown field
    assert plan.decode(b'{"records":[],"total":1,"next":2}') is None  # an unknown envelope key
    assert plan.decode(b'{"total":1}') is None  # no records
    assert plan.decode(b'{"records":[{"id":1}') is None  # not JSON
    ok = plan.decode(b'{"records":[{"id":1}],"total":1}')
    assert ok is not None and ok.data == {"records": None, "total": 1} and len(ok) == 1
    # schemas and paginators it does not take
    assert page_plan({"properties": {"p": {"type": "string", "format": "decimal"}}}, "records", first) is None
    assert (
        page_plan(
            {"properties": {"o": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
            "records",
            first,
        )
        is None
    )
    assert page_plan(SCHEMA, "records", first, paths=["records.-1.id"]) is None
    assert page_plan(SCHEMA, "data.items", {"data": {}}) is None
    assert page_plan(SCHEMA, "records", [1]) is None


def test_repeated_pages_are_detected_on_page_columns(server):
    body = _page_body(0)
    server.route("GET", "/items", lambda req: (200, {}, body))  # ignores the offset
    with _adapter(server, SCHEMA) as api, pytest.raises(PaginationError, match="repeats page"):
        list(api.read(api.discover()[0]))


@pytest.mark.parametrize("columnar", [True, False])
def test_a_server_sending_the_first_page_again_is_stopped_at_page_2(server, monkeypatch, columnar):
    # the first page is decoded to dicts, the next ones into columns: the repeat of the first page
    # must be caught on the second, as the dict path catches it (its records were delivered twice)
    body = _page_body(0)
    server.route("GET", "/items", lambda req: (200, {}, body))  # ignores the offset
    if not columnar:
        monkeypatch.setattr(_http_read, "_planner", lambda *a, **k: None)
    got: list[Any] = []
    with _adapter(server, SCHEMA) as api, pytest.raises(PaginationError, match=r"page 2 .* repeats page 1"):
        for batch in api.read(api.discover()[0]):
            got.extend(batch.records)
    assert [r["id"] for r in got] == [0, 1, 2]


def test_page_windows_give_the_dict_paths_records(server, monkeypatch):
    server.route("GET", "/items", _route)

    def windows(columnar: bool) -> tuple[list[Any], Any]:
        with monkeypatch.context() as m:
            if not columnar:
                m.setattr(_http_read, "_planner", lambda *a, **k: None)
            with _adapter(server, SCHEMA) as api:
                spec = api.discover()[0]
                parts = api.partitions(spec, max_partitions=3)
                assert parts is not None and len(parts) == 3
                batches = [b for p in parts for b in api.read_partition(spec, p)]
                table = pa.concat_tables([b.to_arrow() for b in batches])
                return [r for b in batches for r in b.records], table

    records, table = windows(True)
    records0, table0 = windows(False)
    assert records == records0 and len(records) == PAGES * SIZE
    assert table.equals(table0)


def test_the_read_after_discovery_does_not_ask_for_the_first_page_again(server, monkeypatch):
    asked: list[str] = []

    def route(req: Any) -> tuple[int, dict[str, str], Any]:
        asked.append(req.arg("offset", "0") or "0")
        return _route(req)

    server.route("GET", "/items", route)
    with _adapter(server) as api:  # no schema: discovery reads the first page
        spec = api.discover()[0]
        records = [r for b in api.read(spec) for r in b.records]
        assert len(records) == PAGES * SIZE
        assert asked.count("0") == 1 and len(asked) == PAGES
        # a second read asks again (the first page is taken once)
        assert len([r for b in api.read(spec) for r in b.records]) == PAGES * SIZE
        assert asked.count("0") == 2
    asked.clear()
    monkeypatch.setattr("dc_api_x.adapters._http.FIRST_PAGE_REUSE", 0.0)
    with _adapter(server) as api:  # a read long after the discovery asks again
        spec = api.discover()[0]
        assert len([r for b in api.read(spec) for r in b.records]) == PAGES * SIZE
        assert asked.count("0") == 2


def test_with_nulls_marks_only_null_texts_among_four_byte_values():
    import msgspec

    from dc_api_x.adapters._http_columns import _texts, _with_nulls

    raws = [msgspec.Raw(b) for b in (b"true", b"null", b"1234", b'"ab"', b"[1]")] + [None]
    texts, valid = _with_nulls(raws)
    assert valid == [True, False, True, True, True, False]
    assert [bytes(t) for t in texts] == [b"true", b"null", b"1234", b'"ab"', b"[1]", b"null"]
    assert _texts(texts, valid).to_pylist() == ["true", None, "1234", '"ab"', "[1]", None]
    plain = [msgspec.Raw(b) for b in (b"12.5", b"-0.25", b"1")]  # 4-byte texts, none null
    assert _with_nulls(plain) == (plain, [True, True, True])
    assert _with_nulls([msgspec.Raw(b"1.5"), msgspec.Raw(b"22")]) == (
        [msgspec.Raw(b"1.5"), msgspec.Raw(b"22")],
        None,
    )


def test_a_long_digit_run_outside_number_and_json_columns_keeps_the_page_in_columns():
    from dc_api_x.values import json_loads

    first = {"records": [], "total": 1, "x": None}
    plan = page_plan(SCHEMA, "records", first)
    assert plan is not None
    # digits in a string column, a date-time, and an int64 of 19 digits: the same values either way
    body = (
        b'{"records":[{"id":9223372036854775807,"name":"12345678901234567890123","amount":1.5,'
        b'"attrs":{"k":1}},{"id":-9223372036854775808,"name":"x"}],"total":1,'
        b'"x":0.1000000000000000055511151231257827}'
    )
    page = plan.decode(body)
    assert page is not None
    assert page.data == {"records": None, "total": 1, "x": json_loads(body)["x"]}
    assert str(page.data["x"]) == "0.1000000000000000055511151231257827"  # every digit, as the dict path
    batch = PageColumnsBatch(parts=[page], schema=SCHEMA)
    assert batch.to_arrow().to_pylist() == [
        {
            "id": 2**63 - 1,
            "name": "12345678901234567890123",
            "amount": 1.5,
            "ok": None,
            "at": None,
            "day": None,
            "attrs": '{"k":1}',
        },
        {"id": -(2**63), "name": "x", "amount": None, "ok": None, "at": None, "day": None, "attrs": None},
    ]
    assert batch.records == json_loads(body)["records"]
    # a long number in a number or a JSON column, an integer beyond int64: the dict path decides
    for rec in (
        b'{"id":1,"amount":0.1000000000000000055511151231257827}',
        b'{"id":1,"amount":1e400}',
        b'{"id":1,"attrs":{"big":12345678901234567890123}}',
        b'{"id":1,"attrs":[1.5e-999]}',
        b'{"id":9223372036854775808}',
        b'{"id":-9223372036854775809}',
    ):
        assert plan.decode(b'{"records":[' + rec + b'],"total":1}') is None, rec


def test_pages_with_long_digit_strings_give_the_dict_paths_table(server, monkeypatch):
    def route(req: Any) -> tuple[int, dict[str, str], Any]:
        page = int(req.arg("offset", "0") or 0) // SIZE
        rows = [_row(page * SIZE + i) for i in range(SIZE)]
        rows[0] = rows[0].replace(b'"name":"n', b'"name":"98765432109876543210')
        body = b'{"records":[' + b",".join(rows) + b'],"total":%d}' % (PAGES * SIZE)
        return 200, {"content-type": "application/json"}, body

    server.route("GET", "/items", route)
    monkeypatch.setattr(_http_read, "BATCH_SECONDS", 60.0)
    batches, tables, records = _read(server, True, monkeypatch, SCHEMA)
    _, tables0, records0 = _read(server, False, monkeypatch, SCHEMA)
    assert records == records0 and len(records) == PAGES * SIZE
    assert pa.concat_tables(tables).equals(pa.concat_tables(tables0))
    parts = [p for b in batches if isinstance(b, PageColumnsBatch) for p in b._parts]
    assert sum(type(p) is not list for p in parts) == PAGES - 1  # every page after the first in columns


# -- the page fingerprint (the loop guard) is the same whether a page was decoded to dicts or columns

FP_PAGES: list[bytes] = [
    _page_body(0),
    _page_body(2, total=True),
    # keys in another order than the schema's, a field left out, an explicit null
    b'{"records":[{"attrs":{"b":1,"a":[1,{"d":2,"c":null}]},"id":1,"name":"x"},'
    b'{"id":2,"amount":2,"ok":null},{"name":null,"id":3,"day":"2024-02-03","amount":null}],"total":36}',
    # escapes (\u00e9, \/, control characters), numbers orjson writes otherwise (1.50, 1E5, -0,
    # 2.5e-5, 1e16), JSON text with blanks and keys out of order
    b'{"records":[{"id":4,"name":"caf\\u00e9 \\/ \\u001f \\"q\\"","amount":1.50,'
    b'"attrs":{ "z" : 1.0 , "a" : "\\u00e9" }},'
    b'{"id":5,"name":"caf\xc3\xa9 / \\u001F \\"q\\"","amount":1E5,"attrs":[1,2.0,null]},'
    b'{"id":6,"amount":-0,"attrs":"text"},{"id":7,"amount":2.5e-5,"attrs":1e16},{"id":8,"amount":1e16}],"total":36}',
    # more records than the fingerprint samples
    b'{"records":[' + b",".join(_row(i) for i in range(40)) + b'],"total":36}',
]


@pytest.mark.parametrize("body", FP_PAGES, ids=range(len(FP_PAGES)))
def test_a_pages_fingerprint_is_the_same_decoded_to_dicts_or_into_columns(body):
    from dc_api_x.ext.pagination import page_fingerprint

    plan = page_plan(SCHEMA, "records", {"records": [], "total": 1})
    assert plan is not None
    page = plan.decode(body)
    assert page is not None  # the page is taken by the column path
    records = orjson.loads(body)["records"]
    fp = page_fingerprint(records)
    assert fp is not None and page_fingerprint(page) == fp
    assert page_fingerprint(page[: len(page) - 1]) == page_fingerprint(records[:-1])  # clipped
    page.rows = ()  # (the structs dropped: from the page's dicts)
    assert page_fingerprint(page) == fp
    # the fingerprint is of the records, not of one representation of them
    plan2 = page_plan(
        {**SCHEMA, "properties": {**SCHEMA["properties"], "more": {"type": "string"}}},
        "records",
        {"records": [], "total": 1},
    )
    assert plan2 is not None
    page2 = plan2.decode(body)
    assert page2 is not None and page_fingerprint(page2) == fp


def test_different_pages_decoded_into_columns_have_different_fingerprints():
    from dc_api_x.ext.pagination import page_fingerprint

    plan = page_plan(SCHEMA, "records", {"records": [], "total": 1})
    assert plan is not None

    def fp(*records: bytes) -> Any:
        page = plan.decode(b'{"records":[' + b",".join(records) + b'],"total":1}')
        assert page is not None
        assert page_fingerprint(page) == page_fingerprint(orjson.loads(b"[" + b",".join(records) + b"]"))
        return page_fingerprint(page)

    base = fp(b'{"id":1,"amount":1,"name":"a","attrs":{"k":1}}')
    assert fp(b'{"id":1,"amount":1.0,"name":"a","attrs":{"k":1}}') != base  # 1 and 1.0
    assert fp(b'{"id":1,"amount":1,"name":"a","attrs":{"k":1.0}}') != base
    assert fp(b'{"id":1,"amount":1,"name":"a","attrs":{"k":"1"}}') != base
    assert fp(b'{"id":1,"amount":1,"name":"a","attrs":{"k":1},"ok":null}') != base  # null, not absent
    assert fp(b'{"id":1,"amount":1,"attrs":{"k":1}}') != base
    assert fp(b'{"id":1,"amount":1,"name":"b","attrs":{"k":1}}') != base
    assert fp(b'{"attrs":{"k":1},"name":"a","amount":1,"id":1}') == base  # key order: the same record
    assert fp(b'{"id":1,"amount":1,"name":"\\u0061","attrs":{ "k" : 1 }}') == base  # escapes, blanks


def test_the_first_page_is_decoded_once(server, monkeypatch):
    """The loop guard needs no second decode of the first page (decoded to dicts) as columns."""
    from dc_api_x.adapters._http_columns import PagePlan

    server.route("GET", "/items", _route)
    calls: list[int] = []
    decode = PagePlan.decode

    def counting(self: Any, content: bytes) -> Any:
        calls.append(len(content))
        return decode(self, content)

    monkeypatch.setattr(PagePlan, "decode", counting)
    with _adapter(server, SCHEMA) as api:
        records = [r for b in api.read(api.discover()[0]) for r in b.records]
    assert len(records) == PAGES * SIZE
    assert len(calls) == PAGES - 1  # every page after the first, once


@pytest.mark.parametrize("columnar", [True, False])
def test_a_page_repeated_after_the_inferred_schema_grew_is_stopped(server, monkeypatch, columnar):
    """Page 3 brings a new field (the inferred schema grows: a new plan); page 4 is page 2 again,
    decoded by the new plan without that field: the same page, stopped before its records."""
    pages = {
        0: [b'{"id":0,"name":"a"}', b'{"id":1,"name":"b"}', b'{"id":2,"name":"c"}'],
        1: [b'{"id":3,"name":"d"}', b'{"id":4,"name":"e"}', b'{"id":5,"name":"f"}'],
        2: [b'{"id":6,"name":"g","extra":1}', b'{"id":7,"name":"h"}', b'{"id":8,"name":"i"}'],
    }

    def route(req: Any) -> tuple[int, dict[str, str], Any]:
        page = int(req.arg("offset", "0") or 0) // SIZE
        rows = pages.get(page, pages[1])  # from page 4 on: page 2 again
        return 200, {}, b'{"records":[' + b",".join(rows) + b'],"total":30}'

    server.route("GET", "/items", route)
    if not columnar:
        monkeypatch.setattr(_http_read, "_planner", lambda *a, **k: None)
    got: list[Any] = []
    # (no read-ahead: page 4 is fetched once page 3 grew the schema, so the new plan decodes it)
    with (
        _adapter(server, prefetch=False) as api,
        pytest.raises(PaginationError, match=r"page 4 .* repeats page 2"),
    ):
        for batch in api.read(api.discover()[0]):
            got.extend(batch.records)
    assert [r["id"] for r in got] == list(range(9))  # nothing delivered twice


def test_number_texts_give_the_values_the_dict_path_gives():
    import msgspec

    from dc_api_x.adapters._http_columns import _number_column, _Refused
    from dc_api_x.arrow.records import _column_to_arrow

    texts = [
        b"-0",
        b"-0.0",
        b"1E5",
        b"5",
        b"null",
        b"0.1",
        b"2.5e-5",
        b"123456789012345",
        b"1.7976931348623157e308",
    ]
    raws = [msgspec.Raw(t) for t in texts] + [None]  # (None: a field left out)
    want = _column_to_arrow(orjson.loads(b"[" + b",".join(texts) + b",null]"), pa.field("x", pa.float64()))
    got = _number_column(raws, nullable=True)
    assert got.equals(want) and got.type == pa.float64()
    assert [str(v) for v in got.to_pylist()[:2]] == ["0.0", "-0.0"]  # -0 is the integer 0, as orjson reads it
    assert _number_column(raws[:4], nullable=False, gaps=False).to_pylist() == [0.0, -0.0, 100000.0, 5.0]
    for bad in (b'"2.5"', b"true", b"false", b"[1]", b'{"a":1}'):
        with pytest.raises(_Refused):
            _number_column([msgspec.Raw(b"1.5"), msgspec.Raw(bad)], nullable=True)
    with pytest.raises(_Refused):
        _number_column([msgspec.Raw(b"null")], nullable=False)


ODD = {  # names msgspec cannot rename a struct field to
    "type": "object",
    "properties": {"id": {"type": "integer"}, 'a"b': {"type": "string"}, "c\\d": {"type": "integer"}},
}


def test_odd_field_or_envelope_names_leave_the_stream_to_the_dict_path():
    first = {"records": [], "total": 1}
    assert page_plan(ODD, "records", first) is None
    assert page_plan({"properties": {"x\x01": {"type": "integer"}}}, "records", first) is None
    assert page_plan(SCHEMA, "records", {"records": [], 'to"tal': 1}) is None
    assert page_plan(SCHEMA, "records", first) is not None


@pytest.mark.parametrize("schema", [None, ODD], ids=["inferred", "declared"])
def test_a_stream_with_odd_field_names_is_read_whole(server, schema):
    rows = [{"id": i, 'a"b': f"v{i}", "c\\d": i * 2} for i in range(7)]

    def route(req: Any) -> tuple[int, dict[str, str], Any]:
        off = int(req.arg("offset", "0") or 0)
        body = {"records": rows[off : off + SIZE], "total": len(rows)}
        return 200, {"content-type": "application/json"}, orjson.dumps(body)

    server.route("GET", "/items", route)
    with _adapter(server, schema) as api:
        batches = list(api.read(api.discover()[0]))
    assert [r for b in batches for r in b.records] == rows
    table = pa.concat_tables([b.to_arrow() for b in batches])
    assert table.column('a"b').to_pylist() == [r['a"b'] for r in rows]
