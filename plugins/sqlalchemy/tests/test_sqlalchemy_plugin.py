"""dc-api-x-sqlalchemy as an installed distribution: its dc-api-x hook and its SQLAlchemy
``sqlalchemy.plugins`` entry point, loaded by SQLAlchemy itself."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import dc_api_x_sqlalchemy
import pytest
import sqlalchemy as sa
from dc_api_x_sqlalchemy.instrumentation import figures_of

PLUGIN_DIR = Path(__file__).resolve().parents[1]


def test_dcapix_plugins_lists_it(cli: Any, tmp_path: Path) -> None:
    res = cli("dcapix", "plugins", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    row = {r["name"]: r for r in json.loads(res.stdout)}["sqlalchemy"]
    assert (row["distribution"], row["status"]) == ("dc-api-x-sqlalchemy", "loaded")
    assert row["registers"] == {"sql_extensions": ["network_types", "sqlalchemy_instrumentation"]}


def test_registration_imports_nothing_heavy() -> None:
    code = textwrap.dedent("""
        import json, sys
        import dc_api_x
        ps = dc_api_x.enable_plugins()
        names = sorted(ps.sql_extensions.names())
        heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy", "pyarrow"})
        print(json.dumps({"names": names, "heavy": heavy}))
    """)
    res = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"names": ["network_types", "sqlalchemy_instrumentation"], "heavy": []}


def test_written_in_the_guides_style() -> None:
    doc = dc_api_x_sqlalchemy.__doc__ or ""
    assert doc.lstrip().startswith("DCApiX plugin for SQLAlchemy")
    assert (
        "Requirements:\n- dc-api-x>=0.2.0\n- sqlalchemy>=" in doc
        and "Environment variables:\n- DC_API_X_SQL_SLOW_MS:" in doc
    )
    src = inspect.getsource(dc_api_x_sqlalchemy.register_sql_extensions)
    assert (
        'registry["sqlalchemy_instrumentation"] = "dc_api_x_sqlalchemy.extension:InstrumentationExtension"'
        in src
    )
    import tomllib

    with open(PLUGIN_DIR / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)["project"]
    assert "dc-api-x>=0.2.0" in project["dependencies"]
    eps = project["entry-points"]
    assert eps["dc_api_x.plugins"] == {"sqlalchemy": "dc_api_x_sqlalchemy"}
    assert eps["sqlalchemy.plugins"] == {
        "dcapix_instrumentation": "dc_api_x_sqlalchemy.instrumentation:InstrumentationPlugin"
    }


def test_sqlalchemy_loads_the_engine_plugin_by_its_entry_point_name(tmp_path: Path) -> None:
    # by keyword, as the SQL adapter asks for it
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}", plugins=["dcapix_instrumentation"])
    fig = figures_of(engine)
    assert fig is not None and fig.slow_ms == 1000
    # by the URL's query: the plugin's own parameter is consumed and removed from the URL
    engine2 = sa.create_engine(
        f"sqlite:///{tmp_path / 'b.db'}?plugin=dcapix_instrumentation&dcapix_slow_ms=250"
    )
    fig2 = figures_of(engine2)
    assert fig2 is not None and fig2.slow_ms == 250 and "dcapix_slow_ms" not in str(engine2.url)
    with engine2.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    assert fig2.statements == 1 and fig.statements == 0
    assert figures_of(sa.create_engine("sqlite://")) is None  # not loaded unless asked for
    with pytest.raises(ValueError, match="slow_ms 'soon' is not a number of milliseconds"):
        sa.create_engine("sqlite://", plugins=["dcapix_instrumentation"], dcapix_slow_ms="soon")
