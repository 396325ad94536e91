"""dc-api-x-oracle-db as an installed distribution: listed by ``dcapix plugins``, ``get_adapter``
(the guide's first example) works, nothing heavy is imported at registration, the module is written
in the guide's style, and without python-oracledb the plugin is listed as unavailable."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import dc_api_x_oracle_db
import pytest

PLUGIN_DIR = Path(__file__).resolve().parents[1]


def test_dcapix_plugins_lists_the_installed_distribution(cli: Any) -> None:
    res = cli("dcapix", "plugins", "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    row = rows["oracle_db"]
    assert (row["distribution"], row["version"], row["status"]) == ("dc-api-x-oracle-db", "0.1.0", "loaded")
    assert row["registers"] == {"adapters": ["oracle_db"]}


def test_the_guides_first_example_and_lazy_imports() -> None:
    code = textwrap.dedent("""
        import json, sys
        import dc_api_x as apix
        heavy = lambda: sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy", "oracledb", "pyarrow"})
        apix.enable_plugins()
        out = {"after_enable": heavy(), "listed": "oracle_db" in apix.list_adapters()}
        oracle_adapter = apix.get_adapter("oracle_db")
        out["class"] = f"{oracle_adapter.__module__}.{oracle_adapter.__qualname__}"
        out["after_get"] = heavy()
        print(json.dumps(out))
    """)
    res = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.splitlines()[-1])
    assert out["after_enable"] == [] and out["listed"] is True
    assert out["class"] == "dc_api_x_oracle_db.adapter.OracleAdapter"
    # the adapter class is a subclass of the sql adapter: SQLAlchemy comes with it, python-oracledb not yet
    assert "oracledb" not in out["after_get"]


def test_written_in_the_guides_style() -> None:
    doc = dc_api_x_oracle_db.__doc__ or ""
    assert doc.lstrip().startswith("DCApiX plugin for Oracle Database")
    assert "Requirements:\n- dc-api-x>=0.2.0\n- oracledb>=" in doc
    assert "Environment variables:\n- DC_API_X_ORACLE_URL:" in doc and "- DC_API_X_ORACLE_POOL_SIZE:" in doc
    src = inspect.getsource(dc_api_x_oracle_db.register_adapters)
    assert 'registry["oracle_db"] = "dc_api_x_oracle_db.adapter:OracleAdapter"' in src
    from dc_api_x_oracle_db.adapter import OracleAdapter
    from dc_api_x_oracle_db.config import OracleOptions
    from pydantic import BaseModel

    assert issubclass(OracleOptions, BaseModel) and OracleAdapter.Options is OracleOptions
    own = set(OracleOptions.model_fields) - {"url", "streams"} - set(OracleOptions.__mro__[1].model_fields)
    assert own == {
        "pool_size",
        "max_overflow",
        "pool_timeout",
        "pool_recycle",
        "pool_pre_ping",
        "connect_timeout",
        "page_size",
    }
    assert all(OracleOptions.model_fields[f].description for f in own | {"url", "streams"})
    import tomllib

    with open(PLUGIN_DIR / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)["project"]
    assert "dc-api-x>=0.2.0" in project["dependencies"]
    assert any(d.startswith("oracledb>=") for d in project["dependencies"])
    assert any(d.startswith("sqlalchemy>=") for d in project["dependencies"])
    assert project["entry-points"]["dc_api_x.plugins"] == {"oracle_db": "dc_api_x_oracle_db"}


@pytest.mark.parametrize("missing", ["oracledb", "sqlalchemy"])
def test_without_its_client_library_it_refuses_to_register(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # what an absent package looks like to importlib
    registry: dict[str, Any] = {}
    with pytest.raises(ModuleNotFoundError, match=f"unavailable: {missing} is not installed"):
        dc_api_x_oracle_db.register_adapters(registry)
    assert registry == {}


def test_without_oracledb_dcapix_plugins_lists_it_as_failed_and_the_rest_works(tmp_path: Path) -> None:
    """A process where python-oracledb cannot be imported (a ``sitecustomize`` blocks it)."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['oracledb'] = None\n")
    code = "import sys; from dc_api_x.cli import main; sys.exit(main(['plugins', '--json']))"
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("DC_API_X_BLOCKED_PLUGINS", None)
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["oracle_db"]["status"] == "failed"
    assert "oracledb" in rows["oracle_db"]["reason"]
    assert rows["oracle_db"]["registers"] == {}
    assert all(r["status"] == "loaded" for n, r in rows.items() if n != "oracle_db")
