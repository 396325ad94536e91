"""Real files in tmp_path: Parquet / CSV / JSONL read-write round trips, gzip, layouts, part files,
flush durability, overwrite atomicity, errors, incremental reads, fsspec URLs."""

from __future__ import annotations

import datetime as dt
import gzip
import time
import uuid
from decimal import Decimal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dc_api_x import AdapterError, Batch, ConfigError, SchemaError, StreamSpec, create_adapter

from .conftest import SCHEMA, UTC, sample_records

SPEC = StreamSpec("orders", schema=SCHEMA, key_properties=("id",))
FORMATS = [
    ("parquet", None),
    ("parquet", "zstd"),
    ("parquet", "none"),
    ("jsonl", None),
    ("jsonl", "gzip"),
    ("csv", None),
    ("csv", "gzip"),
]


def write_stream(cfg: dict, batches: list, spec: StreamSpec = SPEC, load_method: str = "append") -> None:
    with create_adapter(cfg) as a:
        a.start_write(spec, load_method=load_method)
        for b in batches:
            a.write(spec, b if isinstance(b, Batch) else Batch.from_records(b, schema=spec.schema))
        a.finish_write(spec)


def read_all(cfg: dict, stream: str | None = None, **kw) -> list[dict]:
    with create_adapter(cfg) as a:
        spec = a.get_stream(stream) if stream else a.discover()[0]
        return [r for b in a.read(spec, **kw) for r in b.records]


def visible(path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize(("fmt", "compression"), FORMATS)
def test_round_trip_every_type(tmp_path, plugins, fmt, compression):
    cfg = {"adapter": fmt, "path": str(tmp_path), **({"compression": compression} if compression else {})}
    records = sample_records()
    write_stream(cfg, [records[:2], records[2:]])
    files = visible(tmp_path)
    data = [f for f in files if not f.endswith("_schema.jsonschema")]
    assert len(data) == 1 and data[0].startswith("orders/part-00000-")
    suffix = {"parquet": ".parquet", "jsonl": ".jsonl", "csv": ".csv"}[fmt]
    assert data[0].endswith(suffix + (".gz" if compression == "gzip" else ""))
    with create_adapter({"adapter": fmt, "path": str(tmp_path)}) as a:
        (spec,) = a.discover()
        assert spec.name == "orders" and spec.key_properties == ("id",)
        got = [r for b in a.read(spec) for r in b.records]
    assert got == records


def test_parquet_keeps_real_types(tmp_path, plugins):
    write_stream({"adapter": "parquet", "path": str(tmp_path)}, [sample_records()])
    (part,) = (tmp_path / "orders").glob("*.parquet")
    schema = pq.read_schema(part)
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("naive").type == pa.timestamp("us")
    assert schema.field("amount").type == pa.decimal128(38, 10)
    assert schema.field("nested").type == pa.struct(
        [("x", pa.int64()), ("tags", pa.list_(pa.field("item", pa.string())))]
    )
    assert schema.field("doc").type == pa.string()
    assert schema.field("doc").metadata == {b"dcapix.json": b"true"}
    assert pq.read_table(part).column("doc")[0].as_py() == '{"a":[1,2,{"b":null}],"s":"ü"}'


def test_json_forms_from_singer_records(tmp_path, plugins):
    """Dict batches in their JSON forms (ISO strings, decimal strings, base64) are typed on write."""
    rec = {
        "id": 7,
        "amount": "12.5",
        "ts": "2024-05-06T07:08:09.5+02:00",
        "naive": "2024-05-06T07:08:09",
        "day": "2024-05-06",
        "raw": "AP8=",
        "doc": {"k": 1},
        "nested": {"x": 1, "tags": ["t"]},
    }
    write_stream({"adapter": "parquet", "path": str(tmp_path)}, [[rec]])
    (got,) = read_all({"adapter": "parquet", "path": str(tmp_path)})
    assert got["amount"] == Decimal("12.5")
    assert got["ts"] == dt.datetime(2024, 5, 6, 5, 8, 9, 500000, tzinfo=UTC)
    assert got["naive"] == dt.datetime(2024, 5, 6, 7, 8, 9)
    assert got["day"] == dt.date(2024, 5, 6)
    assert got["raw"] == b"\x00\xff"
    assert got["doc"] == {"k": 1}


def test_jsonl_json_forms_on_disk(tmp_path, plugins):
    write_stream({"adapter": "jsonl", "path": str(tmp_path)}, [sample_records()[:2]])
    (part,) = (tmp_path / "orders").glob("*.jsonl")
    line, second = (orjson.loads(x) for x in part.read_bytes().splitlines())
    # exactly datetime.isoformat(): no fraction when the microseconds are zero
    assert second["ts"] == "1970-01-01T00:00:00+00:00" and second["naive"] == "2038-01-19T03:14:08"
    assert second["day"] == "0001-01-01" and second["amount"] == "-0.0000000001"
    assert line["amount"] == "1234567890123456789012345678.0123456789"
    assert line["ts"] == "2024-02-29T23:59:59.999999+00:00"
    assert line["naive"] == "1999-12-31T23:59:59.123456"
    assert line["raw"] == "AP8QYmluYXJ5"
    assert line["doc"] == {"a": [1, 2, {"b": None}], "s": "ü"}
    side = orjson.loads((tmp_path / "orders" / "_schema.jsonschema").read_bytes())
    assert side["schema"] == SCHEMA and side["key_properties"] == ["id"]


# ------------------------------------------------------------------------------ sources / layouts
def test_source_single_file_directory_and_glob(tmp_path, plugins):
    t = pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]})
    (tmp_path / "d").mkdir()
    pq.write_table(t.slice(0, 2), tmp_path / "d" / "events-1.parquet")
    pq.write_table(t.slice(2), tmp_path / "d" / "events-2.parquet")
    (tmp_path / "d" / "_ignored.parquet").write_bytes(b"not parquet")
    (tmp_path / "d" / ".hidden.parquet.tmp").write_bytes(b"partial")

    with create_adapter({"adapter": "parquet", "path": str(tmp_path / "d" / "events-1.parquet")}) as a:
        assert [s.name for s in a.discover()] == ["events-1"]
    with create_adapter({"adapter": "parquet", "path": str(tmp_path / "d")}) as a:
        (spec,) = a.discover()
        assert spec.name == "d"
        assert spec.properties == {"id": {"type": ["integer", "null"]}, "name": {"type": ["string", "null"]}}
        assert [r["id"] for b in a.read(spec) for r in b.records] == [1, 2, 3]
    with create_adapter({"adapter": "parquet", "path": str(tmp_path / "d" / "events-*.parquet")}) as a:
        (spec,) = a.discover()
        assert spec.name == "events"
        assert [r["id"] for b in a.read(spec) for r in b.records] == [1, 2, 3]


def test_destination_directory_is_a_source_of_its_streams(tmp_path, plugins):
    other = StreamSpec("customers", schema={"type": "object", "properties": {"id": {"type": "integer"}}})
    cfg = {"adapter": "parquet", "path": str(tmp_path)}
    write_stream(cfg, [sample_records()])
    write_stream(cfg, [[{"id": 1}, {"id": 2}]], spec=other)
    with create_adapter(cfg) as a:
        assert sorted(s.name for s in a.discover()) == ["customers", "orders"]
        assert len([r for b in a.read(a.get_stream("customers")) for r in b.records]) == 2


def test_explicit_streams_with_keys_and_schema_override(tmp_path, plugins):
    (tmp_path / "in.csv").write_text("id,amount,seen\n1,10.10,2024-01-01T00:00:00Z\n2,0.05,\n")
    cfg = {
        "adapter": "csv",
        "streams": [
            {
                "name": "payments",
                "path": str(tmp_path / "in.csv"),
                "primary_keys": ["id"],
                "schema": {
                    "amount": {
                        "type": ["string", "null"],
                        "format": "decimal",
                        "x-precision": 12,
                        "x-scale": 2,
                    }
                },
            }
        ],
    }
    with create_adapter(cfg) as a:
        (spec,) = a.discover()
        assert spec.name == "payments" and spec.key_properties == ("id",)
        assert spec.properties["amount"]["format"] == "decimal"
        assert spec.properties["seen"]["format"] == "date-time"
        rows = [r for b in a.read(spec) for r in b.records]
    assert rows == [
        {"id": 1, "amount": Decimal("10.10"), "seen": dt.datetime(2024, 1, 1, tzinfo=UTC)},
        {"id": 2, "amount": Decimal("0.05"), "seen": None},
    ]


def test_gzip_by_suffix(tmp_path, plugins):
    lines = b"".join(orjson.dumps({"id": i, "at": f"2024-01-0{i}T00:00:00Z"}) + b"\n" for i in range(1, 4))
    (tmp_path / "events.jsonl.gz").write_bytes(gzip.compress(lines))
    with gzip.open(tmp_path / "rows.csv.gz", "wt") as fh:
        fh.write("id,name\n1,x\n2,y\n")
    with create_adapter({"adapter": "jsonl", "path": str(tmp_path / "events.jsonl.gz")}) as a:
        (spec,) = a.discover()
        assert spec.name == "events" and spec.properties["at"]["format"] == "date-time"
        got = [r for b in a.read(spec) for r in b.records]
    assert [r["at"] for r in got] == [dt.datetime(2024, 1, i, tzinfo=UTC) for i in range(1, 4)]
    assert read_all({"adapter": "csv", "path": str(tmp_path / "rows.csv.gz")}) == [
        {"id": 1, "name": "x"},
        {"id": 2, "name": "y"},
    ]


def test_memory_url(plugins):
    root = f"memory://dcapix-{uuid.uuid4().hex[:8]}/out"
    write_stream({"adapter": "parquet", "path": root}, [sample_records()])
    assert read_all({"adapter": "parquet", "path": root}) == sample_records()
    write_stream({"adapter": "jsonl", "path": root + "-j", "compression": "gzip"}, [sample_records()])
    assert read_all({"adapter": "jsonl", "path": root + "-j"}) == sample_records()


def test_read_batches_are_bounded_and_limit_columns(tmp_path, plugins):
    pq.write_table(
        pa.table({"id": list(range(1000)), "v": [str(i) for i in range(1000)]}),
        tmp_path / "big.parquet",
        row_group_size=1000,
    )
    cfg = {"adapter": "parquet", "path": str(tmp_path / "big.parquet"), "batch_size": 128}
    with create_adapter(cfg) as a:
        spec = a.discover()[0]
        sizes = [len(b) for b in a.read(spec)]
        assert max(sizes) == 128 and sum(sizes) == 1000
        limited = list(a.read(spec, columns=["v"], limit=300))
        assert sum(len(b) for b in limited) == 300
        assert limited[0].column_names == ["v"]


# ------------------------------------------------------------------------------- writing parts
def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": i, "txt": f"r{i}"} for i in range(start, start + n)]


SMALL = StreamSpec(
    "s",
    schema={"type": "object", "properties": {"id": {"type": "integer"}, "txt": {"type": ["string", "null"]}}},
)


def test_row_groups_and_rows_per_file(tmp_path, plugins):
    cfg = {"adapter": "parquet", "path": str(tmp_path / "a"), "row_group_size": 1000}
    write_stream(cfg, [_rows(100, i) for i in range(0, 2500, 100)], spec=SMALL)
    (part,) = (tmp_path / "a" / "s").glob("*.parquet")
    md = pq.ParquetFile(part).metadata
    assert [md.row_group(i).num_rows for i in range(md.num_row_groups)] == [1000, 1000, 500]

    cfg = {"adapter": "parquet", "path": str(tmp_path / "b"), "rows_per_file": 1000, "row_group_size": 300}
    write_stream(cfg, [_rows(700, i) for i in range(0, 2800, 700)], spec=SMALL)
    parts = sorted((tmp_path / "b" / "s").glob("*.parquet"))
    assert [pq.ParquetFile(p).metadata.num_rows for p in parts] == [1000, 1000, 800]
    got = read_all({"adapter": "parquet", "path": str(tmp_path / "b")})
    assert [r["id"] for r in got] == list(range(2800))


def test_file_per_batch_commits_each_batch(tmp_path, plugins):
    with create_adapter({"adapter": "jsonl", "path": str(tmp_path), "file_per_batch": True}) as a:
        a.start_write(SMALL)
        res = a.write(SMALL, Batch.from_records(_rows(3), schema=SMALL.schema))
        assert res.committed and res.rows == 3
        a.write(SMALL, Batch.from_records(_rows(2, 3), schema=SMALL.schema))
        assert len(list((tmp_path / "s").glob("part-*.jsonl"))) == 2
        a.finish_write(SMALL)
    assert len(read_all({"adapter": "jsonl", "path": str(tmp_path)})) == 5


def test_flush_makes_rows_durable_and_opens_a_new_part(tmp_path, plugins):
    with create_adapter({"adapter": "parquet", "path": str(tmp_path)}) as a:
        a.start_write(SMALL)
        res = a.write(SMALL, Batch.from_records(_rows(5), schema=SMALL.schema))
        assert not res.committed
        assert list((tmp_path / "s").glob("part-*.parquet")) == []  # nothing visible before flush
        a.flush(SMALL)
        (first,) = (tmp_path / "s").glob("part-*.parquet")
        assert pq.read_table(first).num_rows == 5
        assert not [p for p in (tmp_path / "s").iterdir() if p.name.startswith(".")]
        a.write(SMALL, Batch.from_records(_rows(2, 5), schema=SMALL.schema))
        a.flush()
        assert len(list((tmp_path / "s").glob("part-*.parquet"))) == 2
        a.write(SMALL, Batch.from_records(_rows(1, 7), schema=SMALL.schema))
        # closed without finish_write: the unflushed row is discarded, flushed parts stay
    assert sorted(r["id"] for r in read_all({"adapter": "parquet", "path": str(tmp_path)})) == list(range(7))
    assert not [p for p in tmp_path.rglob(".*")]


def test_csv_text_forms(tmp_path, plugins):
    write_stream({"adapter": "csv", "path": str(tmp_path)}, [sample_records()])
    (part,) = (tmp_path / "orders").glob("*.csv")
    text = part.read_text()
    assert "-0.0000000001" in text and "AP8QYmluYXJ5" in text and '""' in text


def test_append_adds_parts_across_runs(tmp_path, plugins):
    cfg = {"adapter": "csv", "path": str(tmp_path)}
    write_stream(cfg, [_rows(2)], spec=SMALL)
    write_stream(cfg, [_rows(2, 2)], spec=SMALL)
    assert len(list((tmp_path / "s").glob("part-*.csv"))) == 2
    assert sorted(r["id"] for r in read_all(cfg)) == [0, 1, 2, 3]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_overwrite_is_atomic(tmp_path, plugins, fmt):
    cfg = {"adapter": fmt, "path": str(tmp_path)}
    write_stream(cfg, [_rows(3)], spec=SMALL)
    before = visible(tmp_path)
    # a failing overwrite run: the previous files stay, nothing temporary is left
    with create_adapter(cfg) as a:
        a.start_write(SMALL, load_method="overwrite")
        a.write(SMALL, Batch.from_records(_rows(10, 100), schema=SMALL.schema))
        a.flush(SMALL)
        with pytest.raises(SchemaError):
            a.write(SMALL, Batch.from_records([{"id": "abc"}], schema=SMALL.schema))
    assert visible(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    assert [r["id"] for r in read_all(cfg)] == [0, 1, 2]
    # a successful overwrite replaces the stream's files
    write_stream(cfg, [_rows(2, 50)], spec=SMALL, load_method="overwrite")
    assert [r["id"] for r in read_all(cfg)] == [50, 51]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_crash_inside_the_overwrite_swap_is_recovered(tmp_path, plugins):
    cfg = {"adapter": "parquet", "path": str(tmp_path)}
    write_stream(cfg, [_rows(3)], spec=SMALL)
    # a crash after "s" was renamed aside and before the new directory was renamed in
    (tmp_path / "s").rename(tmp_path / ".s.old-20240101T000000-deadbeef")
    (tmp_path / ".s.tmp-20240101T000000-deadbeef").mkdir()
    write_stream(cfg, [_rows(1, 3)], spec=SMALL)
    assert sorted(r["id"] for r in read_all(cfg)) == [0, 1, 2, 3]


def test_upsert_is_refused(tmp_path, plugins):
    with (
        create_adapter({"adapter": "parquet", "path": str(tmp_path)}) as a,
        pytest.raises(AdapterError, match=r"load_method 'upsert'.*append, overwrite"),
    ):
        a.start_write(SMALL, load_method="upsert")


# ------------------------------------------------------------------------------------- errors
def test_not_a_parquet_file(tmp_path, plugins):
    bad = tmp_path / "x.parquet"
    bad.write_text("id,name\n1,a\n")
    with create_adapter({"adapter": "parquet", "path": str(bad)}) as a, pytest.raises(AdapterError) as ei:
        a.discover()
    msg = str(ei.value)
    assert "\n" not in msg
    assert "adapter 'parquet'" in msg and "stream 'x'" in msg and str(bad) in msg


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_bad_value_names_stream_and_field_and_leaves_no_file(tmp_path, plugins, fmt):
    with create_adapter({"adapter": fmt, "path": str(tmp_path)}) as a:
        a.start_write(SMALL)
        a.write(SMALL, Batch.from_records(_rows(3), schema=SMALL.schema))
        with pytest.raises(SchemaError) as ei:
            a.write(SMALL, Batch.from_records([{"id": 1}, {"id": "abc", "txt": "x"}], schema=SMALL.schema))
        msg = str(ei.value)
        assert "stream 's'" in msg and "field 'id'" in msg and "abc" in msg and "\n" not in msg
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_bad_value_in_source_file(tmp_path, plugins):
    (tmp_path / "c.csv").write_text("id,at\n1,2024-01-01\nx,2024-01-02\n")
    with pytest.raises(SchemaError, match=r"stream 'c', field 'id': .*c\.csv.*'x' is not an integer"):
        read_all({"adapter": "csv", "path": str(tmp_path / "c.csv"), "schema": {"id": {"type": "integer"}}})
    (tmp_path / "t.jsonl").write_text('{"id": 1}\n{"id": 2.5}\n')
    cfg = {"adapter": "jsonl", "path": str(tmp_path / "t.jsonl"), "schema": {"id": {"type": "integer"}}}
    with pytest.raises(SchemaError, match=r"stream 't'.*field 'id'.*2\.5 is not an integer"):
        read_all(cfg)
    (tmp_path / "u.jsonl").write_text('{"id": 1}\nnot json\n')
    with pytest.raises(AdapterError, match=r"stream 'u'.*line 2: invalid JSON"):
        read_all({"adapter": "jsonl", "path": str(tmp_path / "u.jsonl")})


def test_config_errors(tmp_path, plugins):
    with pytest.raises(ConfigError, match="adapter 'parquet': option 'pathh': unknown option"):
        create_adapter({"adapter": "parquet", "pathh": "x"})
    with pytest.raises(ConfigError, match="compression"):
        create_adapter({"adapter": "jsonl", "path": str(tmp_path), "compression": "zstd"})
    with pytest.raises(AdapterError, match="does not exist"):
        create_adapter({"adapter": "csv", "path": str(tmp_path / "missing.csv")}).discover()


# -------------------------------------------------------------------------------- incremental
INC = StreamSpec(
    "ev",
    schema={
        "type": "object",
        "properties": {"id": {"type": "integer"}, "updated_at": {"type": "string", "format": "date-time"}},
    },
    key_properties=("id",),
    replication_key="updated_at",
)


def _ev(ids_and_hours):
    return [{"id": i, "updated_at": dt.datetime(2024, 1, 1, h, tzinfo=UTC)} for i, h in ids_and_hours]


def test_incremental_resume_with_boundary_keys(tmp_path, plugins):
    # hours 0,1,1,1,2,3 ; batch_size 2 splits the three rows at hour 1 across batches
    write_stream(
        {"adapter": "parquet", "path": str(tmp_path)},
        [_ev([(1, 0), (2, 1), (3, 1), (4, 1), (5, 2), (6, 3)])],
        spec=INC,
    )
    cfg = {"adapter": "parquet", "path": str(tmp_path), "batch_size": 2, "ordered": True}
    with create_adapter(cfg) as a:
        spec = a.get_stream("ev")
        assert spec.replication_key == "updated_at"  # kept in the file's metadata
        batches = list(a.read(spec))
        assert [[r["id"] for r in b.records] for b in batches] == [[1, 2], [3, 4], [5, 6]]
        bm = batches[0].bookmark
        assert bm == {
            "replication_key": "updated_at",
            "replication_key_value": "2024-01-01T01:00:00+00:00",
            "keys_at_value": [[2]],
        }
        # resume after the first batch: rows 3 and 4 (same value, other keys) are not lost
        assert [r["id"] for b in a.read(spec, state=bm) for r in b.records] == [3, 4, 5, 6]
        final = batches[-1].bookmark
        assert final["replication_key_value"] == "2024-01-01T03:00:00+00:00"
        assert final["keys_at_value"] == [[6]]
        assert list(a.read(spec, state=final)) == []
        with pytest.raises(AdapterError, match=r"stream 'ev', field 'updated_at': state: .*'soon'"):
            a.read(spec, state={"replication_key": "updated_at", "replication_key_value": "soon"})
    # new rows appended later are picked up after the final bookmark
    write_stream({"adapter": "parquet", "path": str(tmp_path)}, [_ev([(7, 3), (8, 4)])], spec=INC)
    with create_adapter(cfg) as a:
        assert [r["id"] for b in a.read(a.get_stream("ev"), state=final) for r in b.records] == [7, 8]


def test_incremental_unordered_rows_hold_the_bookmark(tmp_path, plugins):
    write_stream(
        {"adapter": "jsonl", "path": str(tmp_path)}, [_ev([(1, 1), (2, 5), (3, 2), (4, 7), (5, 3)])], spec=INC
    )
    with create_adapter({"adapter": "jsonl", "path": str(tmp_path), "batch_size": 2}) as a:
        spec = a.get_stream("ev")
        batches = list(a.read(spec))
        assert [len(b) for b in batches] == [2, 2, 1]
        # unsorted files: no bookmark may advance before the whole stream was read (row 3 at 02:00
        # comes after row 2 at 05:00)
        assert [b.bookmark for b in batches[:-1]] == [None, None]
        final = batches[-1].bookmark
        assert final == {
            "replication_key": "updated_at",
            "replication_key_value": "2024-01-01T07:00:00+00:00",
            "keys_at_value": [[4]],
        }
        start = {
            "replication_key": "updated_at",
            "replication_key_value": "2024-01-01T02:00:00+00:00",
            "keys_at_value": [[3]],
        }
        resumed = list(a.read(spec, state=start))
        assert sorted(r["id"] for b in resumed for r in b.records) == [2, 4, 5]
        assert resumed[0].bookmark == start and resumed[-1].bookmark == final
        # with a limit the read is incomplete: the bookmark stays where it was
        assert list(a.read(spec, state=start, limit=1))[-1].bookmark == start
    with (
        create_adapter({"adapter": "jsonl", "path": str(tmp_path), "batch_size": 2, "ordered": True}) as a,
        pytest.raises(AdapterError, match="not in 'updated_at' order"),
    ):
        list(a.read(a.get_stream("ev")))


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_schema_change_mid_stream_keeps_rows_and_evolves(tmp_path, plugins, fmt):
    """start_write again with a wider schema (what the Singer target does): rows written before stay,
    and the stream read back has the new column; a later run with the narrower schema keeps it."""
    cfg = {"adapter": fmt, "path": str(tmp_path)}
    wide = SMALL.with_(
        schema={"type": "object", "properties": {**SMALL.properties, "extra": {"type": ["number", "null"]}}}
    )
    with create_adapter(cfg) as a:
        a.start_write(SMALL)
        a.write(SMALL, Batch.from_records(_rows(2), schema=SMALL.schema))
        a.start_write(wide)
        a.write(wide, Batch.from_records([{"id": 9, "txt": "w", "extra": 1.5}], schema=wide.schema))
        a.finish_write(wide)
    with create_adapter(cfg) as a:
        spec = a.get_stream("s")
        assert list(spec.properties) == ["id", "txt", "extra"]
        got = sorted((r for b in a.read(spec) for r in b.records), key=lambda r: r["id"])
    assert got == [
        {"id": 0, "txt": "r0", "extra": None},
        {"id": 1, "txt": "r1", "extra": None},
        {"id": 9, "txt": "w", "extra": 1.5},
    ]
    time.sleep(0.01)
    write_stream(cfg, [_rows(1, 20)], spec=SMALL)
    with create_adapter(cfg) as a:
        spec = a.get_stream("s")
        assert list(spec.properties) == ["id", "txt", "extra"]
        assert len([r for b in a.read(spec) for r in b.records]) == 4


def test_jsonl_refuses_nan(tmp_path, plugins):
    spec = StreamSpec("f", schema={"type": "object", "properties": {"x": {"type": ["number", "null"]}}})
    with create_adapter({"adapter": "jsonl", "path": str(tmp_path)}) as a:
        a.start_write(spec)
        a.write(spec, Batch.from_records([{"x": 1.5}, {"x": None}], schema=spec.schema))
        a.write(spec, Batch.from_records([{"x": float("nan")}], schema=spec.schema))
        with pytest.raises(SchemaError, match=r"stream 'f', field 'x': NaN/Infinity"):
            a.flush(spec)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_jsonl_arrow_reader_falls_back_mid_file_without_loss(tmp_path, plugins, monkeypatch):
    """Flat streams are parsed by Arrow's JSON reader; a value it refuses ("9" for an integer, which
    the JSON-form rules accept) hands the rest of the file to the orjson path: no row lost or doubled."""
    from dc_api_x.adapters.files.jsonl import JSONLAdapter

    lines = [{"id": i, "at": f"2024-01-0{1 + i % 9}T00:00:00Z", "amount": f"{i}.5"} for i in range(1, 41)]
    lines[33]["id"] = "34"
    (tmp_path / "t.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lines))
    schema = {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "amount": {"type": "string", "format": "decimal", "x-precision": 6, "x-scale": 1},
    }
    skips = []
    orig = JSONLAdapter._orjson_tables

    def spy(self, stream, path, arrow_schema, skip=0):
        skips.append(skip)
        return orig(self, stream, path, arrow_schema, skip=skip)

    monkeypatch.setattr(JSONLAdapter, "_json_block_size", 256)
    monkeypatch.setattr(JSONLAdapter, "_orjson_tables", spy)
    cfg = {"adapter": "jsonl", "path": str(tmp_path / "t.jsonl"), "batch_size": 4, "schema": schema}
    got = read_all(cfg)
    assert [r["id"] for r in got] == list(range(1, 41))
    assert got[0] == {"id": 1, "at": dt.datetime(2024, 1, 2, tzinfo=UTC), "amount": Decimal("1.5")}
    assert len(skips) == 1 and 0 < skips[0] < 34  # Arrow read the first blocks, orjson the rest
    (tmp_path / "t.jsonl").write_bytes(
        b"".join(orjson.dumps({**r, "id": i + 1}) + b"\n" for i, r in enumerate(lines))
    )
    skips.clear()
    assert [r["id"] for r in read_all(cfg)] == list(range(1, 41)) and skips == []


def test_an_integer_beyond_int64_names_stream_field_and_range(tmp_path):
    spec = StreamSpec(
        "stock", {"type": "object", "properties": {"id": {"type": "integer"}, "qty": {"type": "integer"}}}
    )
    with create_adapter({"adapter": "parquet", "path": str(tmp_path)}) as ad:
        ad.start_write(spec)
        with pytest.raises(SchemaError) as ei:
            ad.write(spec, Batch.from_records([{"id": 1, "qty": 2**70}], schema=spec.schema))
    assert str(ei.value) == (
        "adapter 'parquet', stream 'stock', field 'qty': integer 1180591620717411303424 is outside the "
        "range of int64 (-9223372036854775808 to 9223372036854775807)"
    )


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_wide_rows_are_written_by_bytes_not_held_to_row_group_size(tmp_path, plugins, fmt):
    """131,072 rows of 1 KB were held in memory before a part was written (1.3 GB peak RSS for a
    JSONL destination, reliability case H1): the buffer drains at MAX_BUFFER_BYTES too."""
    from dc_api_x.adapters.files.writers import MAX_BUFFER_BYTES

    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "payload": {"type": "string"}}}
    spec = StreamSpec("wide", schema=schema, key_properties=("id",))
    n, per = 0, 2000
    with create_adapter({"adapter": fmt, "path": str(tmp_path)}) as a:
        a.start_write(spec)
        sw = a._writers["wide"]
        peak = 0
        while n < 3 * MAX_BUFFER_BYTES // 1000:
            a.write(
                spec,
                Batch.from_records([{"id": n + i, "payload": "x" * 1000} for i in range(per)], schema=schema),
            )
            n += per
            peak = max(peak, sw.buffered_bytes)
        assert peak < MAX_BUFFER_BYTES + per * 1100  # drained by bytes, far below 131,072 rows
        a.finish_write(spec)
    got = read_all({"adapter": fmt, "path": str(tmp_path)}, "wide")
    assert sorted(r["id"] for r in got) == list(range(n)) and all(r["payload"] == "x" * 1000 for r in got)
