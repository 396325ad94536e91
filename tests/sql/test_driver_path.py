"""The ADBC driver wheels' bundled libraries found without ``importlib.resources``
(``preopen.bundled_driver_path`` / ``open_pg_database``, issue 15): the same path as the driver's own
lookup, and its lookup kept wherever the package is not a plain directory holding the library."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from dc_api_x.adapters.sql.preopen import bundled_driver_path


def _first_column(database: object, sql: str) -> list[object]:
    """The first column of ``sql``'s rows, read over a new connection of the ADBC ``database``
    handle (the handle closed after)."""
    import adbc_driver_manager
    import pyarrow as pa

    conn = adbc_driver_manager.AdbcConnection(database)
    stmt = adbc_driver_manager.AdbcStatement(conn)
    try:
        stmt.set_sql_query(sql)
        reader, _ = stmt.execute_query()
        return pa.RecordBatchReader._import_from_c(reader.address).read_all().column(0).to_pylist()
    finally:
        for h in (stmt, conn, database):
            h.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["adbc_driver_sqlite", "adbc_driver_postgresql"])
def test_bundled_path_is_the_drivers_own(name: str) -> None:
    module = pytest.importorskip(name)
    assert bundled_driver_path(module) == module._driver_path()


def test_other_installs_keep_the_drivers_lookup(tmp_path: Path) -> None:
    pkg = tmp_path / "adbc_driver_fake"
    pkg.mkdir()
    init = pkg / "__init__.py"
    init.write_text("")

    def own() -> str:
        return "adbc_driver_fake"

    module = types.ModuleType("adbc_driver_fake")
    module.__file__ = str(init)
    module._driver_path = own  # type: ignore[attr-defined]
    assert bundled_driver_path(module) is None  # no bundled library: the driver decides
    lib = pkg / "libadbc_driver_fake.so"
    lib.write_bytes(b"")
    assert bundled_driver_path(module) == str(lib)
    module.__file__ = "adbc_driver_fake/__init__.py"  # not an absolute path: left to the driver
    assert bundled_driver_path(module) is None
    module.__file__ = None  # a namespace package
    assert bundled_driver_path(module) is None


def test_sqlite_adbc_read_connects_through_the_bundled_library(tmp_path: Path) -> None:
    """The SQLite ADBC read opens its database with the path the driver's ``connect`` would use."""
    adbc_driver_sqlite = pytest.importorskip("adbc_driver_sqlite")
    import adbc_driver_manager

    db = tmp_path / "x.db"
    import sqlite3

    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (id INTEGER)")
        con.execute("INSERT INTO t VALUES (42)")
    con.close()
    handle = adbc_driver_manager.AdbcDatabase(driver=bundled_driver_path(adbc_driver_sqlite), uri=str(db))
    assert _first_column(handle, "SELECT id FROM t") == [42]


@pytest.mark.parametrize("bundled", [True, False])
def test_sqlite_adbc_read_same_rows_with_and_without_the_bundled_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundled: bool
) -> None:
    """The SQLite backend's ADBC read gives the same rows through the bundled library's path and
    through the driver's own ``connect`` (used where the library is not beside the package)."""
    pytest.importorskip("adbc_driver_sqlite")
    import sqlite3

    from dc_api_x.adapters.sql import preopen
    from dc_api_x.adapters.sql import sqlite as sqlite_backend
    from dc_api_x.plugins import create_adapter
    from dc_api_x.testing import isolated_plugins

    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)")
        con.executemany("INSERT INTO orders VALUES (?, ?)", [(i, f"s{i % 3}") for i in range(1, 501)])
    con.close()
    calls: list[object] = []
    real = preopen.bundled_driver_path

    def spy(module: object) -> str | None:
        calls.append(module)
        return real(module) if bundled else None

    monkeypatch.setattr(preopen, "bundled_driver_path", spy)
    monkeypatch.setattr(sqlite_backend, "ADBC_MIN_BYTES", 0)
    with isolated_plugins(), create_adapter({"adapter": "sql", "url": f"sqlite:///{db}"}) as ad:
        assert ad.backend.adbc is True
        (spec,) = ad.discover()
        rows = [r for b in ad.read(spec) for r in b.to_arrow().to_pylist()]
    assert calls  # the ADBC read asked for the bundled path
    assert rows == [{"id": i, "status": f"s{i % 3}"} for i in range(1, 501)]


@pytest.mark.postgres
@pytest.mark.parametrize("bundled", [True, False])
def test_pg_database_opens_with_and_without_the_bundled_path(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, bundled: bool
) -> None:
    """``open_pg_database`` gives a handle that queries the real server, through the bundled library
    named directly or through the driver's own ``connect``, with the handle options passed on."""
    pytest.importorskip("adbc_driver_postgresql")

    from dc_api_x.adapters.sql import preopen

    if not bundled:
        monkeypatch.setattr(preopen, "bundled_driver_path", lambda module: None)
    uri = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    db = preopen.open_pg_database(uri, {"adbc.postgresql.type_resolver_mode": "builtin"})
    assert _first_column(db, "SELECT 41 + 1 AS x") == [42]
