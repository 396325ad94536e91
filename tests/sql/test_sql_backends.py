"""The SQL backend interface: one backend per dialect, chosen once; a plugin adds a database with one
backend module and an adapter subclass (the generic backend, run here against a real SQLite file)."""

from __future__ import annotations

import sqlite3

import pytest

from dc_api_x import enable_plugins
from dc_api_x.exceptions import AdapterError
from dc_api_x.ext.sql import SQLBackend
from dc_api_x.types import Batch, StreamSpec

from . import generic_sqlite
from .conftest import read_all

SPEC = StreamSpec(
    name="items",
    schema={
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": ["string", "null"]},
            "amount": {"type": ["number", "null"]},
            "ok": {"type": ["boolean", "null"]},
        },
    },
    key_properties=("id",),
)


def _records(n: int, start: int = 1, suffix: str = "") -> list[dict]:
    return [
        {"id": i, "name": f"n{i}{suffix}", "amount": i + 0.5, "ok": i % 2 == 0}
        for i in range(start, start + n)
    ]


@pytest.fixture
def ps():
    ps = enable_plugins(entry_points=False, plugins=[generic_sqlite])
    yield ps
    ps.close()


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("sqlite:///x.db", "SQLiteBackend"),
        ("postgresql://u:p@127.0.0.1:1/db", "PostgreSQLBackend"),
        ("mysql+pymysql://u:p@127.0.0.1:1/db", "SQLAlchemyBackend"),
    ],
)
def test_the_backend_is_chosen_once_from_the_dialect(plugins, url, backend):
    from dc_api_x.plugins import create_adapter

    ad = create_adapter({"adapter": "sql", "url": url})  # no connection is opened
    assert type(ad.backend).__name__ == backend
    assert isinstance(ad.backend, SQLBackend) and ad.backend.adapter is ad
    ad.close()


def test_a_plugin_adapter_subclass_selects_its_backend(ps, tmp_path):
    cls = ps.adapters.get("generic_sqlite")
    assert cls is generic_sqlite.GenericSQLiteAdapter
    with cls({"url": f"sqlite:///{tmp_path / 'a.db'}"}) as ad:
        assert type(ad.backend) is generic_sqlite.GenericSQLiteBackend
    # the built-in adapter keeps its own backend for the same URL
    assert (
        type(ps.adapters.get("sql")({"url": f"sqlite:///{tmp_path / 'a.db'}"}).backend).__name__
        == "SQLiteBackend"
    )


def test_generic_backend_writes_every_load_method_on_a_real_database(ps, tmp_path):
    from dc_api_x.plugins import create_adapter

    path = tmp_path / "g.db"
    url = f"sqlite:///{path}"

    def rows() -> list[tuple]:
        con = sqlite3.connect(path)
        try:
            return con.execute("SELECT id, name FROM items ORDER BY id").fetchall()
        finally:
            con.close()

    with create_adapter({"adapter": "generic_sqlite", "url": url}) as ad:
        ad.start_write(SPEC, load_method="append")
        res = ad.write(SPEC, Batch.from_records(_records(3), schema=SPEC.schema))
        assert res.committed and res.rows == 3 and res.details["affected"] == 3
        ad.finish_write(SPEC)
    assert rows() == [(1, "n1"), (2, "n2"), (3, "n3")]
    # upsert: the generic merge (delete the batch's keys, insert; a repeated key: the last one wins)
    with create_adapter({"adapter": "generic_sqlite", "url": url, "load_method": "upsert"}) as ad:
        ad.start_write(SPEC)
        batch = [*_records(2, start=2, suffix="-new"), {**_records(1, start=2)[0], "name": "last wins"}]
        ad.write(SPEC, Batch.from_records(batch, schema=SPEC.schema))
        ad.finish_write(SPEC)
    assert rows() == [(1, "n1"), (2, "last wins"), (3, "n3-new")]
    # schema evolution (ALTER TABLE … ADD COLUMN) and overwrite (drop + rename of the stage table)
    grown = SPEC.with_(
        schema={"type": "object", "properties": {**SPEC.properties, "qty": {"type": ["integer", "null"]}}}
    )
    with create_adapter({"adapter": "generic_sqlite", "url": url, "load_method": "overwrite"}) as ad:
        ad.start_write(SPEC)
        ad.write(SPEC, Batch.from_records(_records(1, start=10), schema=SPEC.schema))
        ad.start_write(grown)
        ad.write(grown, Batch.from_records([{**_records(1, start=11)[0], "qty": 7}], schema=grown.schema))
        assert rows() == [(1, "n1"), (2, "last wins"), (3, "n3-new")]  # not swapped in yet
        ad.finish_write(grown)
    assert rows() == [(10, "n10"), (11, "n11")]
    # the built-in sql adapter reads back exactly what was written (typed)
    with create_adapter({"adapter": "sql", "url": url}) as ad:
        recs, _ = read_all(ad, ad.get_stream("items"))
    assert recs == [
        {"id": 10, "name": "n10", "amount": 10.5, "ok": True, "qty": None},
        {"id": 11, "name": "n11", "amount": 11.5, "ok": False, "qty": 7},
    ]


def test_generic_backend_reads_incrementally_with_no_loss_or_repeat(ps, tmp_path):
    from dc_api_x.plugins import create_adapter

    path = tmp_path / "r.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, grp INTEGER, v TEXT)")
    con.executemany("INSERT INTO ev VALUES (?, ?, ?)", [(i, i // 3, f"v{i}") for i in range(1, 11)])
    con.commit()
    con.close()
    cfg = {
        "adapter": "generic_sqlite",
        "url": f"sqlite:///{path}",
        "batch_size": 2,
        "streams": [{"table": "ev", "replication_key": "grp"}],
    }
    seen: list[int] = []
    state = None
    with create_adapter(cfg) as ad:
        spec = ad.get_stream("ev")
        for _ in range(20):  # one batch per run, resuming from the bookmark of the previous one
            batch = next(iter(ad.read(spec, state=state, limit=2)), None)
            if batch is None:
                break
            seen += [r["id"] for r in batch.records]
            state = batch.bookmark
        assert state == {"replication_key": "grp", "replication_key_value": 3, "keys_at_value": [[9], [10]]}
        assert list(ad.read(spec, state=state)) == []
    assert seen == list(range(1, 11))


def test_a_bad_dialect_mapping_is_an_error_naming_the_backend(tmp_path):
    class Broken(generic_sqlite.GenericSQLiteAdapter):
        backends = {"sqlite": "tests.sql.generic_sqlite:NoSuchBackend"}

    with pytest.raises(AttributeError, match="NoSuchBackend"):
        Broken({"url": f"sqlite:///{tmp_path / 'x.db'}"})
    with (
        pytest.raises(AdapterError, match="adapter 'generic_sqlite'"),
        generic_sqlite.GenericSQLiteAdapter({"url": f"sqlite:///{tmp_path / 'nodir' / 'x.db'}"}) as ad,
    ):
        ad.discover()
