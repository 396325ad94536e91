"""The ``dcapix_instrumentation`` engine plugin on real SQLite and PostgreSQL engines: exact
counters, slow statements logged with parameters redacted, and every engine of the SQL adapter
instrumented while the plugin is installed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dc_api_x_sqlalchemy
import pytest
import sqlalchemy as sa
from dc_api_x_sqlalchemy.instrumentation import figures_of, redacted_parameters

from dc_api_x import create_adapter, enable_plugins

SECRET = "s3cret-value-never-logged"


def _exercise(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, label TEXT)"))
        conn.execute(
            sa.text("INSERT INTO t VALUES (:id, :label)"), [{"id": i, "label": SECRET} for i in range(5)]
        )
        conn.execute(sa.text("UPDATE t SET label = :label WHERE id < :n"), {"label": SECRET, "n": 3})
        conn.execute(sa.text("SELECT * FROM t")).fetchall()
    with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table"))


def test_counters_on_sqlite(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'x.db'}", plugins=["dcapix_instrumentation"], dcapix_slow_ms=0
    )
    with caplog.at_level(logging.WARNING, logger="dc_api_x.sql.slow"):
        _exercise(engine)
    fig = figures_of(engine)
    assert fig is not None
    got = fig.as_dict()
    assert got["seconds"] > 0
    # CREATE, INSERT (one executemany of 5 sets), UPDATE, SELECT; the failing SELECT is an error
    assert {k: got[k] for k in ("statements", "parameter_sets", "rows", "errors", "slow_statements")} == {
        "statements": 4,
        "parameter_sets": 8,
        "rows": 8,  # 5 inserted + 3 updated (sqlite3 reports -1 for CREATE and SELECT)
        "errors": 1,
        "slow_statements": 4,  # slow_ms=0: every statement is logged
    }
    text = caplog.text
    assert SECRET not in text
    # the driver's (positional) parameters, each value replaced by its type
    assert "INSERT INTO t VALUES (?, ?) -- parameters: <5 parameter sets, the first: (<int>, <str>)>" in text
    assert "UPDATE t SET label = ? WHERE id < ? -- parameters: (<str>, <int>)" in text
    assert "sqlite database" in text and len(caplog.records) == 4


def test_fast_statements_are_not_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'x.db'}", plugins=["dcapix_instrumentation"], dcapix_slow_ms=60_000
    )
    with caplog.at_level(logging.WARNING, logger="dc_api_x.sql.slow"):
        _exercise(engine)
    assert caplog.records == [] and figures_of(engine).slow_statements == 0  # type: ignore[union-attr]


@pytest.mark.postgres
def test_counters_on_postgresql(pg_database: str) -> None:
    url = pg_database.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url, plugins=["dcapix_instrumentation"])
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TEMP TABLE t (id int PRIMARY KEY, label text)"))
        conn.execute(
            sa.text("INSERT INTO t VALUES (:id, :label)"), [{"id": i, "label": "x"} for i in range(7)]
        )
        conn.execute(sa.text("DELETE FROM t WHERE id >= :n"), {"n": 4})
    fig = figures_of(engine).as_dict()  # type: ignore[union-attr]
    assert fig["errors"] == 0 and fig["slow_statements"] == 0
    assert fig["parameter_sets"] - fig["statements"] == 6  # the 7-set executemany counted as one statement
    # psycopg reports the 7 inserted and the 3 deleted rows (SQLAlchemy's own first-connect queries
    # report the rows they read)
    assert fig["rows"] >= 10
    engine.dispose()


def test_redacted_parameters() -> None:
    assert redacted_parameters({"a": 1, "b": None}, False) == "{'a': <int>, 'b': <NoneType>}"
    assert redacted_parameters((1, "x"), False) == "(<int>, <str>)"
    assert redacted_parameters([], True) == "<0 parameter sets, the first: ->"
    assert redacted_parameters(None, False) == "<none>"


def test_every_engine_of_the_sql_adapter_is_instrumented(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    cfg = {"adapter": "sql", "url": f"sqlite:///{db}"}
    with enable_plugins(entry_points=False, plugins=[dc_api_x_sqlalchemy]), create_adapter(cfg) as ad:
        assert ad.engine_arguments() == {"plugins": ["dcapix_instrumentation"]}
        assert ad.discover() == []  # one reflection statement
        figs: Any = ad.figures()
        assert figs["sql"]["statements"] == 1 and figs["sql"]["errors"] == 0
        assert figures_of(ad.engine) is not None
    with (
        enable_plugins(entry_points=False),
        create_adapter({"adapter": "sql", "url": f"sqlite:///{db}"}) as plain,
    ):
        assert figures_of(plain.engine) is None and plain.figures() == {}
