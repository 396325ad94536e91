"""Pages of raw entries to Arrow (``page_to_arrow``) without a server: the struct-array path, the
attribute descriptions carried from page to page, and the grouping of pages in a read."""

from __future__ import annotations

import datetime as dt

import pytest
from dc_api_x_ldap.schema import ValueProblem, page_to_arrow, split_page
from dc_api_x_ldap.source import _PageGroups

from dc_api_x.arrow import jsonschema_to_arrow

SCHEMA = {
    "type": "object",
    "properties": {
        "dn": {"type": "string"},
        "cn": {"type": ["array", "null"], "items": {"type": "string"}},
        "uidNumber": {"type": ["integer", "null"]},
        "dcapixActive": {"type": ["boolean", "null"]},
        "dcapixSince": {"type": ["string", "null"], "format": "date-time"},
        "dcapixBlob": {"type": ["string", "null"], "contentEncoding": "base64"},
        "dcapixCounts": {"type": ["array", "null"], "items": {"type": "integer"}},
        "userCertificate": {
            "type": ["array", "null"],
            "items": {"type": "string", "contentEncoding": "base64"},
        },
        "description": {"type": ["array", "null"], "items": {"type": "string"}},
    },
}
ARROW = jsonschema_to_arrow(SCHEMA)


def entry(i: int, **extra: list[bytes]) -> tuple[str, dict[str, list[bytes]]]:
    attrs: dict[str, list[bytes]] = {
        "cn": [f"Ñandú {i}".encode(), f"alt {i}".encode()] if i % 2 else [f"Ñandú {i}".encode()],
        "uidNumber": [str(10_000 + i).encode()],
        "dcapixActive": [b"TRUE" if i % 3 else b"FALSE"],
        "dcapixSince": [b"20240102030405Z"],
        "dcapixBlob": [bytes(range(i % 7, i % 7 + 5))],
        "dcapixCounts": [str(-i).encode(), b"0"] if i % 4 else [],
    }
    if i % 5 == 0:
        del attrs["dcapixBlob"]
    attrs.update(extra)
    return f"uid=u{i},ou=people,dc=example,dc=com", attrs


def expected_row(dn: str, attrs: dict[str, list[bytes]]) -> dict[str, object]:
    """The row by value, from the raw entry (the rules the conversion must keep)."""

    def one(name: str) -> bytes | None:
        vals = attrs.get(name)
        return vals[0] if vals else None

    since = one("dcapixSince")
    return {
        "dn": dn,
        "cn": [v.decode() for v in attrs["cn"]] if "cn" in attrs else None,
        "uidNumber": int(one("uidNumber")) if one("uidNumber") else None,
        "dcapixActive": None if one("dcapixActive") is None else one("dcapixActive") == b"TRUE",
        "dcapixSince": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc) if since else None,
        "dcapixBlob": one("dcapixBlob"),
        "dcapixCounts": [int(v) for v in attrs["dcapixCounts"]] if "dcapixCounts" in attrs else None,
        "userCertificate": [
            *attrs.get("userCertificate", []),
            *attrs.get("userCertificate;binary", []),
        ]
        or None,
        "description": [v.decode() for v in attrs["description"]] if "description" in attrs else None,
    }


def test_pages_convert_value_for_value_with_descriptions_changing_between_pages():
    cache: dict[str, object] = {}
    page1 = [entry(i) for i in range(10)]
    # page 2 has an attribute page 1 did not have, and one under two descriptions (merged)
    page2 = [entry(10), entry(11, description=[b"line one\nline two"], userCertificate=[b"\x30\x01"])]
    page2.append(entry(12, **{"userCertificate;binary": [b"\x30\x02", b"\x30\x03"]}))
    page3 = [entry(i) for i in range(13, 20)]  # back to page 1's attributes
    for page in (page1, page2, page3):
        table = page_to_arrow(page, SCHEMA, ARROW, None, cache)
        assert table.schema == ARROW
        assert table.to_pylist() == [expected_row(dn, attrs) for dn, attrs in page]


def test_an_attribute_outside_the_schema_on_a_later_page_is_reported_not_dropped():
    cache: dict[str, object] = {}
    page_to_arrow([entry(1), entry(2)], SCHEMA, ARROW, None, cache)
    with pytest.raises(ValueProblem) as err:
        page_to_arrow([entry(3), entry(4, mail=[b"x@example.com"])], SCHEMA, ARROW, None, cache)
    assert err.value.attribute == "mail"
    assert err.value.dn == "uid=u4,ou=people,dc=example,dc=com"


def test_value_problems_name_the_attribute_and_the_entry():
    cache: dict[str, object] = {}
    page_to_arrow([entry(1)], SCHEMA, ARROW, None, cache)
    with pytest.raises(ValueProblem, match="single-valued") as err:
        page_to_arrow([entry(2), entry(3, uidNumber=[b"1", b"2"])], SCHEMA, ARROW, None, cache)
    assert (err.value.attribute, err.value.dn) == ("uidNumber", "uid=u3,ou=people,dc=example,dc=com")
    with pytest.raises(ValueProblem, match="UTF-8") as err:
        page_to_arrow([entry(2), entry(5, cn=[b"ok", b"\xff\xfe"])], SCHEMA, ARROW, None, cache)
    assert (err.value.attribute, err.value.dn) == ("cn", "uid=u5,ou=people,dc=example,dc=com")
    with pytest.raises(ValueProblem, match="64-bit integer"):
        page_to_arrow([entry(6, dcapixCounts=[b"1", b"x"])], SCHEMA, ARROW, None, cache)


def test_split_page_agrees_with_the_arrow_columns():
    page = [entry(i) for i in range(6)]
    dns, cols = split_page(page, list(SCHEMA["properties"])[1:])
    table = page_to_arrow(page, SCHEMA, ARROW)
    assert dns == table.column("dn").to_pylist()
    assert cols[list(SCHEMA["properties"]).index("description") - 1] is None
    blob = cols[list(SCHEMA["properties"]).index("dcapixBlob") - 1]
    assert [v[0] if v else None for v in blob] == table.column("dcapixBlob").to_pylist()


def test_PageGroups_joins_pages_to_a_minimum_and_closes_the_source():
    closed = []

    def pages():
        try:
            yield from ([entry(i)] * 3 for i in range(5))
        finally:
            closed.append(True)

    gen = pages()
    groups = _PageGroups(gen, 7)
    sizes = [len(g) for g in groups]
    assert sizes == [9, 6]  # 3 pages of 3, then the last 2 pages
    g2 = _PageGroups(pages(), 4)
    assert len(next(g2)) == 6
    g2.close()
    assert closed == [True, True]
