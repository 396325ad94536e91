"""The ``register_sql_extensions`` hook: the example of docs/sql.md run on a real PostgreSQL
(a type mapping used by discovery and by table creation), engine plugins passed to
``create_engine``, and the figures the runner collects."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dc_api_x import create_adapter, enable_plugins
from dc_api_x.ext.sql import SQLExtension
from dc_api_x.runner.progress import RunMetrics
from dc_api_x.types import Batch

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _docs_example() -> types.ModuleType:
    """The ``## Extensions`` example of docs/sql.md as the module ``my_plugin.sql``."""
    section = (DOCS / "sql.md").read_text().split("## Extensions", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    mod = types.ModuleType("my_plugin.sql")
    exec(compile(code, "docs/sql.md (Extensions)", "exec"), mod.__dict__)
    return mod


@pytest.fixture
def docs_plugin(monkeypatch: pytest.MonkeyPatch) -> Any:
    mod = _docs_example()
    monkeypatch.setitem(sys.modules, "my_plugin", types.ModuleType("my_plugin"))
    monkeypatch.setitem(sys.modules, "my_plugin.sql", mod)
    ps = enable_plugins(entry_points=False, plugins=[mod])
    yield ps
    ps.close()


@pytest.mark.postgres
def test_the_docs_example_maps_citext_both_ways(
    docs_plugin: Any, pg_url: str, pg_schema: str, pg_exec: Any
) -> None:
    docs_plugin.fill_registries()
    assert docs_plugin.plugins["my_plugin.sql"].registers == {"sql_extensions": ["citext"]}
    pg_exec("CREATE EXTENSION IF NOT EXISTS citext")
    pg_exec(f'CREATE TABLE "{pg_schema}".users (id int PRIMARY KEY, email citext NOT NULL, note text)')
    pg_exec(
        f"INSERT INTO \"{pg_schema}\".users VALUES (1, 'Ann@Example.org', 'x'), (2, 'bob@example.org', NULL)"
    )
    with create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema}) as src:
        assert [type(e).__name__ for e in src.extensions] == ["CaseInsensitiveText"]
        spec = src.get_stream("users")
        assert spec.properties["email"] == {"type": "string", "x-citext": True}  # the extension's
        assert spec.properties["note"] == {"type": ["string", "null"]}  # the built-in mapping
        rows = [r for b in src.read(spec) for r in b.records]
    copy = spec.with_(name="users_copy")
    with create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema}) as dst:
        dst.start_write(copy)
        dst.write(copy, Batch.from_records(rows, schema=copy.schema))
        dst.finish_write(copy)
    typ = pg_exec(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        f"WHERE attrelid = '\"{pg_schema}\".users_copy'::regclass AND attname = 'email'"
    )
    assert typ == [("citext",)]
    # case-insensitive in the copy too: the type, not only the text, survived
    assert pg_exec(f"SELECT id FROM \"{pg_schema}\".users_copy WHERE email = 'ANN@EXAMPLE.ORG'") == [(1,)]
    # without the extension the column is plain text both ways
    with (
        enable_plugins(entry_points=False),
        create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema}) as plain,
    ):
        assert plain.extensions == [] and plain.get_stream("users").properties["email"] == {"type": "string"}


class _Counting(SQLExtension):
    """An extension asking for a SQLAlchemy engine plugin registered below, reporting its count."""

    name = "counting"
    engine_plugins = ("dcapix_test_counter",)
    dialects = ("sqlite",)

    def figures(self, engine: Any) -> dict[str, Any] | None:
        return {"counter": {"statements": engine.dcapix_test_count["n"]}}


class CounterPlugin(sa.engine.CreateEnginePlugin):
    def update_url(self, url: Any) -> Any:
        return url

    def engine_created(self, engine: Any) -> None:
        engine.dcapix_test_count = count = {"n": 0}

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _count(*_a: Any) -> None:
            count["n"] += 1


def test_engine_plugins_and_figures(tmp_path: Path) -> None:
    from sqlalchemy.dialects import plugins as sa_plugins

    sa_plugins.register("dcapix_test_counter", __name__, "CounterPlugin")
    mod = types.ModuleType("counting_plugin")
    mod.register_sql_extensions = lambda registry: registry.register("counting", _Counting)  # type: ignore[attr-defined]
    with enable_plugins(entry_points=False, plugins=[mod]):
        db = tmp_path / "a.db"
        with create_adapter({"adapter": "sql", "url": f"sqlite:///{db}"}) as ad:
            assert ad.figures() == {}  # no engine yet
            assert ad.engine_arguments() == {"plugins": ["dcapix_test_counter"]}
            with ad.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
                conn.execute(sa.text("SELECT 2"))
            assert ad.figures() == {"counter": {"statements": 2}}
            metrics = RunMetrics("p")
            metrics.add_figures("source", ad)
            metrics.add_figures("source", ad)  # two adapters of one role (parallel streams): summed
            metrics.add_figures("destination", object())  # an adapter without figures(): nothing
            assert metrics.as_dict()["adapters"] == {"source": {"counter": {"statements": 4}}}
        # engine_options' own plugins are kept, the extension's added once
        opts = {
            "adapter": "sql",
            "url": f"sqlite:///{db}",
            "engine_options": {"plugins": ["dcapix_test_counter"]},
        }
        with create_adapter(opts) as ad2:
            assert ad2.engine_arguments()["plugins"] == ["dcapix_test_counter"]
    assert RunMetrics("q").as_dict().get("adapters") is None  # no figures: no key
