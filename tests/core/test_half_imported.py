"""Checks that look a class up in an already imported module (so as not to import it) hold while
another thread is still importing that module (in ``sys.modules``, its classes not made yet): the
thread that opens a PostgreSQL handle ahead imports the ADBC driver and pyarrow, partition workers
import modules on their first request."""

from __future__ import annotations

import sys
import types

import pytest


def _half(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setitem(sys.modules, name, types.ModuleType(name))


def test_error_checks_hold_during_an_import(monkeypatch: pytest.MonkeyPatch) -> None:
    from dc_api_x.adapters.sql.lazy import is_sqlalchemy_error
    from dc_api_x.adapters.sql.pg_direct import is_adbc_error

    _half(monkeypatch, "sqlalchemy.exc")
    _half(monkeypatch, "adbc_driver_manager")
    assert is_sqlalchemy_error(ValueError("x")) is False
    assert is_adbc_error(ValueError("x")) is False


def test_arrow_pool_holds_during_the_pyarrow_import(monkeypatch: pytest.MonkeyPatch) -> None:
    from dc_api_x.runner.executors.processes import _arrow_pool

    _half(monkeypatch, "pyarrow")
    assert _arrow_pool() is None


def test_range_split_check_holds_during_an_import(monkeypatch: pytest.MonkeyPatch) -> None:
    from dc_api_x.adapters.sql import pg_ranges

    _half(monkeypatch, "dc_api_x.adapters.sql.partitions")
    source = types.SimpleNamespace(query=None, table="t")
    read = types.SimpleNamespace(source=source, boundary=None, limit=None)
    assert pg_ranges._splittable(read) is True  # type: ignore[arg-type]
