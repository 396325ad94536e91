"""The compiled page scanner (``_recordscan.scan_page``, used by ``PagePlan.decode``): a page it
reads gives the same Arrow table, the same records, the same paginator data and the same page
fingerprint as the dict path, or it is refused (and the msgspec path, then the dict path, decide)."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pytest

from dc_api_x.adapters._http_columns import PageColumns, PageColumnsBatch, page_plan
from dc_api_x.arrow.native import load
from dc_api_x.arrow.records import records_to_arrow
from dc_api_x.arrow.schema import jsonschema_to_arrow
from dc_api_x.ext.pagination import extract_records, page_fingerprint
from dc_api_x.values import json_loads
from tests.http.conftest import PAGE_SCHEMA as SCHEMA

if load() is None:  # not built, or turned off (DC_API_X_NATIVE=0): the msgspec path's tests cover that
    pytest.skip("the compiled scanner is not available", allow_module_level=True)

ENVELOPE = {"records": [], "total": 1, "next": None}


def _row(i: int) -> bytes:
    return (
        b'{"id":%d,"name":"n%d","amount":%d.25,"ok":true,"at":"2024-01-01T00:00:%02dZ",'
        b'"day":"2024-02-03","attrs":{"k":%d,"tags":["a","b"]}}' % (i, i, i, i % 60, i)
    )


def _page(*records: bytes, tail: bytes = b',"total":36') -> bytes:
    return b'{"records":[' + b",".join(records) + b"]" + tail + b"}"


def _plan(schema: dict[str, Any] = SCHEMA, envelope: dict[str, Any] = ENVELOPE) -> Any:
    plan = page_plan(schema, "records", envelope)
    assert plan is not None and plan._scan is not None
    return plan


def _dict_table(records: list[dict[str, Any]], schema: dict[str, Any] = SCHEMA) -> pa.Table:
    return records_to_arrow(records, schema, arrow_schema=jsonschema_to_arrow(schema))


def _check(body: bytes, *, scanned: bool, schema: dict[str, Any] = SCHEMA) -> PageColumns | None:
    """The page decoded by the plan: read by the scanner (``scanned``) or not, and when it is, the
    same table, records, data and fingerprint as the dict path."""
    plan = _plan(schema)
    page = plan.decode(body)
    if not scanned:
        assert page is None or page.scanned is None
        return page
    assert page is not None and page.scanned is not None
    decoded = json_loads(body)
    records = extract_records(decoded, "records")
    assert page.records() == records and len(page) == len(records)
    assert page.data == {"records": None, **{k: v for k, v in decoded.items() if k != "records"}}
    table = PageColumnsBatch(parts=[page], schema=schema).to_arrow()
    want = _dict_table(records, schema)
    assert table.schema == want.schema
    assert table.to_pylist() == want.to_pylist()
    assert table.equals(want)
    assert page_fingerprint(page) == page_fingerprint(records)
    text = plan._canonical_records(body, page.scanned[1], 0, tuple(range(len(records))))
    assert text is None or text == orjson.dumps(records, option=orjson.OPT_SORT_KEYS)
    if len(page) > 1:  # a clipped page: its rows, its fingerprint
        head = page[1:]
        assert head.records() == records[1:]
        assert page_fingerprint(head) == page_fingerprint(records[1:])
        assert PageColumnsBatch(parts=[head], schema=schema).to_arrow().equals(want.slice(1))
    return page


SCANNED: dict[str, bytes] = {
    "plain": _page(*(_row(i) for i in range(5))),
    "many (more than the fingerprint samples)": _page(*(_row(i) for i in range(40))),
    "empty records": _page(),
    "empty records, no other key": b'{"records":[]}',
    "envelope keys before the records": b'{"total":36,"next":"abc","records":[' + _row(1) + b"]}",
    "envelope keys around the records": b'{"next":{"a":[1,2,{"b":null}]},"records":['
    + _row(1)
    + b'],"total":3}',
    "whitespace everywhere": (
        b' \n{ "total" : 3 ,\t"records" :\r\n [ { "id" : 1 , "name" : "a" , "amount" : 1.5 , "ok" : false ,'
        b' "attrs" : { "k" : [ 1 , 2 ] } } ,\n{"id":2} ] } \n'
    ),
    "escapes": _page(
        b'{"id":1,"name":"q\\"b\\\\s\\/\\b\\f\\n\\r\\t\\u0000\\u001f\\u00e9\\u20ac","attrs":"\\u00e9\\n"}'
    ),
    "surrogate pairs": _page(b'{"id":1,"name":"\\ud83d\\ude00 \\uD83D\\uDE00","attrs":["\\ud83d\\ude00"]}'),
    "non-ASCII": _page('{"id":1,"name":"café ∑ 😀 \u00a0","attrs":{"é":"€"}}'.encode()),
    "-0 and exponents": _page(
        b'{"id":-0,"amount":-0}',
        b'{"amount":-0.0}',
        b'{"amount":1E5}',
        b'{"amount":2.5e-5}',
        b'{"amount":1e22}',
        b'{"amount":1e-22}',
        b'{"amount":9.99e99}',
        b'{"amount":123456789012345}',
        b'{"amount":0.1}',
        b'{"amount":-1.5e-99}',
    ),
    "int64 bounds": _page(b'{"id":9223372036854775807}', b'{"id":-9223372036854775808}'),
    "missing fields": _page(b'{"id":1}', b"{}", b'{"name":"x","attrs":null}', _row(3)),
    "nulls": _page(
        b'{"id":null,"name":null,"amount":null,"ok":null,"at":null,"day":null,"attrs":null}', _row(2)
    ),
    "key order per record": _page(
        b'{"attrs":{"b":1,"a":2},"day":"2024-02-03","at":"2024-01-01T00:00:00Z","ok":true,"amount":1,'
        b'"name":"x","id":1}',
        _row(2),
        b'{"name":"y","id":3}',
    ),
    "JSON texts orjson writes otherwise": _page(
        b'{"attrs":{ "z" : 1.0 , "a" : "\\u00e9" }}',
        b'{"attrs":[1,2.0,null]}',
        b'{"attrs":1.50}',
        b'{"attrs":{"a":1,"a":2}}',
        b'{"attrs":"\\/"}',
        b'{"attrs":true}',
    ),
    "date-times with offsets": _page(
        b'{"at":"2024-01-01T00:00:00+02:00","day":"2024-02-29"}', b'{"at":"2024-01-01T00:00:00.123456Z"}'
    ),
    "long digits in strings": _page(b'{"name":"12345678901234567890","attrs":"1234567890123456789"}'),
}


@pytest.mark.parametrize("body", list(SCANNED.values()), ids=list(SCANNED))
def test_a_scanned_page_is_the_dict_paths_page(body):
    _check(body, scanned=True)


REFUSED: dict[str, bytes] = {
    "a long number in a number column": _page(b'{"amount":0.1000000000000000055511151231257827}'),
    "16 digits": _page(b'{"amount":1234567890123456}'),
    "a 3-digit exponent": _page(b'{"amount":1e100}'),
    "a long number in a JSON column": _page(b'{"attrs":{"big":12345678901234567890123}}'),
    "an integer beyond int64": _page(b'{"id":9223372036854775808}'),
    "an integer below int64": _page(b'{"id":-9223372036854775809}'),
    "a fraction in an integer column": _page(b'{"id":1.0}'),
    "a lone high surrogate": _page(b'{"name":"\\ud83d"}'),
    "a lone low surrogate": _page(b'{"name":"\\ude00 x"}'),
    "a lone surrogate in JSON text": _page(b'{"attrs":"\\ud83d"}'),
    "an unknown field": _page(b'{"id":1,"extra":2}'),
    "an unknown envelope key": b'{"records":[' + _row(1) + b'],"other":1}',
    "a duplicate field": _page(b'{"id":1,"id":2}'),
    "a duplicate envelope key": b'{"records":[],"total":1,"total":2}',
    "a duplicate records key": b'{"records":[' + _row(1) + b'],"records":[]}',
    "no records key": b'{"total":1}',
    "records not a list": b'{"records":{},"total":1}',
    "a record that is not an object": _page(b"1"),
    "a null record": _page(_row(1), b"null"),
    "a string in a number column": _page(b'{"amount":"2.5"}'),
    "a number in a string column": _page(b'{"name":2}'),
    "a key with an escape": _page(b'{"\\u0069d":1}'),
    "an envelope key with an escape": b'{"records":[],"tot\\u0061l":1}',
    "trailing text": _page(_row(1)) + b"x",
    "two documents": _page(_row(1)) + _page(_row(2)),
    "invalid UTF-8": _page(b'{"name":"\xff"}'),
    "a control character in a string": _page(b'{"name":"a\nb"}'),
    "not an object": b"[1,2]",
    "not JSON": b'{"records":[{"id":1}',
    "a long number in an envelope key": b'{"records":[],"total":12345678901234567890}',
}


@pytest.mark.parametrize("body", list(REFUSED.values()), ids=list(REFUSED))
def test_pages_the_scanner_cannot_tell_exactly_are_refused(body):
    plan = _plan()
    assert plan._scan(body, *plan._scan_args) is None
    page = _check(body, scanned=False)
    if page is not None:  # the msgspec path took it: it stays the dict path's page
        records = extract_records(json_loads(body), "records")
        assert page.records() == records
        assert PageColumnsBatch(parts=[page], schema=SCHEMA).to_arrow().equals(_dict_table(records))


def test_scan_page_gives_record_spans_and_envelope_texts():
    plan = _plan()
    body = b'{ "next" : [1, "x"] ,"records": [ {"id":1} , {"id":2,"name":"b"}] }'
    rows, columns, texts, spans = plan._scan(body, *plan._scan_args)
    assert rows == 2 and len(columns) == len(SCHEMA["properties"])
    assert texts == (None, b'[1, "x"]')  # total, next
    from array import array

    s = array("q", spans)
    assert [body[s[i] : s[i + 1]] for i in (0, 2)] == [b'{"id":1}', b'{"id":2,"name":"b"}']


def test_pages_of_a_batch_are_joined_with_their_slices():
    """Several scanned pages (one clipped at each end), msgspec pages and dict pages in one batch:
    the dict path's table."""
    plan = _plan()
    bodies = [
        _page(*(_row(i) for i in range(7))),
        _page(b'{"id":1}', b'{"name":null,"ok":false}', _row(9), b'{"ok":true}', b'{"attrs":{ "a" : 1 }}'),
        _page(b'{"attrs":{"big":12345678901234567890123}}'),  # a long number: the dict path
        _page(b'{"\\u0069d":7,"name":"k"}', _row(4)),  # a key with an escape: msgspec reads it
        _page(*(_row(i) for i in range(20, 29))),
    ]
    parts: list[Any] = []
    want: list[dict[str, Any]] = []
    for k, body in enumerate(bodies):
        page = plan.decode(body)
        records = extract_records(json_loads(body), "records")
        if page is None:
            parts.append(records)
            want.extend(records)
            continue
        if k == 0:
            page, records = page[2:], records[2:]
        elif k == len(bodies) - 1:
            page, records = page[1:6], records[1:6]
        parts.append(page)
        want.extend(records)
    assert [type(p) is list or p.scanned is not None for p in parts] == [True, True, True, False, True]
    batch = PageColumnsBatch(parts=parts, schema=SCHEMA)
    assert batch.to_arrow().equals(_dict_table(want))
    assert PageColumnsBatch(parts=parts, schema=SCHEMA).records == want


def test_a_field_of_another_type_than_the_plan_converts_as_the_dict_path():
    """The Arrow schema of the batch may differ from the plan's kinds (e.g. a target's): each column
    is then converted from its values as the dict path converts them."""
    plan = _plan()
    body = _page(_row(1), b'{"id":2,"ok":null}', _row(3))
    page = plan.decode(body)
    assert page is not None and page.scanned is not None
    records = extract_records(json_loads(body), "records")
    arrow_schema = pa.schema(
        [
            pa.field("id", pa.float64()),
            pa.field("name", pa.large_string()),
            pa.field("ok", pa.string()),
            pa.field("at", pa.string()),
            pa.field("attrs", pa.string()),
            pa.field("absent", pa.int64()),
        ]
    )
    got = PageColumnsBatch(parts=[page], schema=SCHEMA).to_arrow(arrow_schema)
    assert got.equals(records_to_arrow(records, SCHEMA, arrow_schema=arrow_schema))


def test_a_scanned_pages_fingerprint_tells_pages_apart():
    plan = _plan()

    def fp(*records: bytes) -> Any:
        page = plan.decode(_page(*records))
        assert page is not None and page.scanned is not None
        assert page_fingerprint(page) == page_fingerprint(orjson.loads(b"[" + b",".join(records) + b"]"))
        return page_fingerprint(page)

    base = fp(b'{"id":1,"amount":1,"name":"a","attrs":{"k":1}}')
    assert fp(b'{"id":1,"amount":1.0,"name":"a","attrs":{"k":1}}') != base  # 1 and 1.0
    assert fp(b'{"id":1,"amount":1,"name":"a","attrs":{"k":"1"}}') != base
    assert fp(b'{"id":1,"amount":1,"name":"a","attrs":{"k":1},"ok":null}') != base  # null, not absent
    assert fp(b'{"attrs":{"k":1},"name":"a","amount":1,"id":1}') == base  # key order
    assert fp(b'{"id":1,"amount":1,"name":"\\u0061","attrs":{ "k" : 1 }}') == base  # escapes, blanks


def test_the_scanner_is_left_out_when_turned_off(monkeypatch):
    monkeypatch.setenv("DC_API_X_NATIVE", "0")
    plan = page_plan(SCHEMA, "records", ENVELOPE)
    assert plan is not None and plan._scan is None
    page = plan.decode(_page(_row(1)))
    assert page is not None and page.scanned is None


def test_pages_scanned_in_threads_at_once_are_read_alike():
    """scan_page and canonical_records read a body without the GIL (scan_page takes it back for the
    few numbers it parses with Python's parser): threads at once get what one thread gets."""
    from concurrent.futures import ThreadPoolExecutor

    plan = _plan()
    special = (b'{"amount":1.5e-99,"name":"\\u00e9"}', b'{"amount":9.99e99}')
    bodies = [_page(*(_row(i + k) for i in range(30)), *(special if k % 2 else ())) for k in range(40)]
    want = [plan._scan(b, *plan._scan_args) for b in bodies]
    assert all(w is not None for w in want)

    def fingerprint_text(k: int) -> bytes | None:
        return plan._canonical_records(bodies[k], want[k][3], 0, tuple(range(want[k][0])))  # type: ignore[no-any-return]

    texts = [fingerprint_text(k) for k in range(len(bodies))]
    for k, text in enumerate(texts):  # written by the scanner for the pages without the special records
        assert (text is not None) == (k % 2 == 0)
        assert text is None or text == orjson.dumps(
            orjson.loads(bodies[k])["records"], option=orjson.OPT_SORT_KEYS
        )
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            assert list(pool.map(lambda b: plan._scan(b, *plan._scan_args), bodies)) == want
            assert list(pool.map(fingerprint_text, range(len(bodies)))) == texts


@pytest.mark.parametrize(
    ("record", "written"),
    [
        (b'{"id":1,"name":"a","amount":1.5,"attrs":{"a":1,"b":[1,{"c":null,"d":"\\u00e9"}]}}', False),
        (b'{"id":1,"name":"a","amount":1.5,"attrs":{"a":1,"b":[1,{"c":null,"d":"x\\n"}]}}', True),
        (b'{ "name" : "caf\xc3\xa9" , "id" : -2 , "ok" : false , "at" : null }', True),
        (b'{"attrs":{"b":1,"a":2}}', True),  # a nested object's keys out of order: sorted
        (b'{"attrs":[{"b":{"y":1,"x":[{"\xc3\xa9":1,"z":2}]},"a":2},[],{}]}', True),
        (b'{"attrs":{"ab":1,"a":2,"b":3,"\xc3\xa9":4,"Z":5}}', True),
        (b'{"attrs":{"a\\n":1}}', False),  # a nested key with an escape
        (b'{"attrs":{"a":1, "b":2}}', False),  # blanks inside a value
        (b'{"amount":1.50}', False),  # a number orjson writes otherwise
        (b'{"amount":-0}', False),
        (b'{"id":1234567890123456789}', False),  # 16+ digits: decoded and written by orjson
        (b'{"name":"\\/"}', False),  # an escape orjson does not write
        (b'{"name":"\\u0000"}', True),
        (b"{}", True),
    ],
)
def test_canonical_records_are_orjsons_text_or_refused(record, written):
    """The fingerprint text of scanned records: written from their texts by the scanner when each is
    spelled as orjson writes it (keys sorted), else decoded and written by orjson: the same bytes."""
    plan = _plan()
    body = _page(record, _row(3))
    page = plan.decode(body)
    assert page is not None and page.scanned is not None
    text = plan._canonical_records(body, page.scanned[1], 0, (0, 1))
    records = orjson.loads(body)["records"]
    assert (text is not None) == written
    if text is not None:
        assert text == orjson.dumps(records, option=orjson.OPT_SORT_KEYS)
    assert page_fingerprint(page) == page_fingerprint(records)
    assert plan._canonical_records(body, page.scanned[1], 1, (0,)) == orjson.dumps(
        records[1:], option=orjson.OPT_SORT_KEYS
    )
    with pytest.raises(IndexError):
        plan._canonical_records(body, page.scanned[1], 0, (2,))


def _random_page(rng: Any) -> bytes:
    """A page of random records: the values, their spellings, key orders and blanks vary."""
    import json
    import random

    assert isinstance(rng, random.Random)

    def ws() -> str:
        return rng.choice(["", "", "", " ", "\n", " \t\r\n "])

    def string() -> str:
        pieces = [
            "a",
            "Zz 09",
            "caf\u00e9",
            "\u20ac",
            "\U0001f600",
            '\\"',
            "\\\\",
            "\\/",
            "\\n",
            "\\u00e9",
            "\\u0000",
            "\\ud83d\\ude00",
            "\\uD83D\\uDE00",
            "\\ud83d",  # a lone surrogate: refused
            "12345678901234567890",
            f"2024-01-0{rng.randint(1, 9)}T00:00:00Z",
        ]
        return '"' + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4))) + '"'

    def number(integer: bool) -> str:
        if integer:
            return rng.choice(
                ["0", "-0", "1", "-17", "9223372036854775807", "-9223372036854775808", "123456789"]
            )
        return rng.choice(
            ["0.5", "-0.0", "1.50", "1E5", "2.5e-5", "1e22", "1e-7", "123456789012345", "3.14159", "-2", "0"]
        )

    def json_value(depth: int = 0) -> str:
        kind = rng.randint(0, 6 if depth < 3 else 3)
        if kind == 0:
            return "null"
        if kind == 1:
            return rng.choice(["true", "false"])
        if kind == 2:
            return number(rng.random() < 0.5)
        if kind == 3:
            return string()
        if kind in (4, 5):
            keys = rng.sample(["a", "b", "k", "tags", "\u00e9", "Z", "ab"], rng.randint(0, 4))
            return "{" + ",".join(f'"{k}"{ws()}:{ws()}{json_value(depth + 1)}' for k in keys) + "}"
        return "[" + ",".join(json_value(depth + 1) for _ in range(rng.randint(0, 3))) + "]"

    def value(name: str) -> str:
        if rng.random() < 0.1:
            return "null"
        if name == "id":
            return number(True)
        if name == "amount":
            return number(False)
        if name == "ok":
            return rng.choice(["true", "false"])
        if name == "at":
            return f'"2024-01-01T00:00:{rng.randint(0, 59):02d}Z"'
        if name == "day":
            return f'"2024-02-{rng.randint(1, 28):02d}"'
        if name == "attrs":
            return json_value()
        return string()

    records = []
    for _ in range(rng.randint(0, 6)):
        names = [n for n in SCHEMA["properties"] if rng.random() < 0.85]
        rng.shuffle(names)
        fields = [f'{ws()}"{n}"{ws()}:{ws()}{value(n)}{ws()}' for n in names]
        records.append("{" + ",".join(fields) + "}")
    envelope = [f'"records"{ws()}:{ws()}[{ws()}' + f"{ws()},{ws()}".join(records) + f"{ws()}]"]
    if rng.random() < 0.7:
        envelope.append(f'"total":{rng.randint(0, 99)}')
    if rng.random() < 0.5:
        envelope.append(f'"next":{rng.choice(["null", json.dumps("abc"), "[1,2]"])}')
    rng.shuffle(envelope)
    return ("{" + ws() + f"{ws()},{ws()}".join(envelope) + ws() + "}").encode()


def test_random_pages_are_the_dict_paths_pages_or_refused():
    import random

    rng = random.Random(20261203)
    plan = _plan()
    scanned = 0
    for _ in range(400):
        body = _random_page(rng)
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:  # (a lone surrogate): the scanner must refuse it
            assert plan._scan(body, *plan._scan_args) is None
            continue
        if plan._scan(body, *plan._scan_args) is None:
            continue
        scanned += 1
        _check(body, scanned=True)
    assert scanned >= 100
