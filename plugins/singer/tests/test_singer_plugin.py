"""The distribution: its entry point, what ``dcapix plugins`` shows, the guide's conventions."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest


def test_entry_point_and_dcapix_plugins_listing() -> None:
    eps = [ep for ep in metadata.entry_points(group="dc_api_x.plugins") if ep.name == "singer"]
    assert [ep.value for ep in eps] == ["dc_api_x_singer"], "pip install -e plugins/singer"
    assert metadata.version("dc-api-x-singer") == "0.1.0"
    assert any(r.startswith("dc-api-x>=0.2.0") for r in metadata.requires("dc-api-x-singer") or [])
    out = subprocess.run(
        [sys.executable, "-m", "dc_api_x.cli", "plugins"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("singer "))
    assert "[dc-api-x-singer 0.1.0]" in line and "loaded" in line
    assert "registers adapters: singer" in out.stdout


def test_importing_the_plugin_is_light_and_registration_lazy() -> None:
    code = (
        "import sys, dc_api_x_singer\n"
        "mods = ('msgspec', 'orjson', 'pyarrow', 'dc_api_x_singer.adapter')\n"
        "heavy = [m for m in mods if m in sys.modules]\n"
        "print(heavy)\n"
        "from dc_api_x import enable_plugins\n"
        "ps = enable_plugins(entry_points=False, plugins=[dc_api_x_singer])\n"
        "assert ps.adapters.get('singer').__name__ == 'SingerAdapter'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_bad_options_are_one_line_naming_the_field(singer_plugins: object) -> None:
    from dc_api_x import create_adapter
    from dc_api_x.exceptions import ConfigError

    with pytest.raises(ConfigError, match=r"^adapter 'singer': option 'commit': "):
        create_adapter({"adapter": "singer", "executable": "sh", "commit": "sometimes"})
    with pytest.raises(ConfigError, match=r"^adapter 'singer': option 'executable': required option"):
        create_adapter({"adapter": "singer"})
    with pytest.raises(ConfigError, match=r"^adapter 'singer': option 'colour': unknown option"):
        create_adapter({"adapter": "singer", "executable": "sh", "colour": 1})
    a = create_adapter({"adapter": "singer", "executable": "sh", "catalog": "/no/such/catalog.json"})
    with a, pytest.raises(ConfigError, match=r"^adapter 'singer': option 'catalog': cannot read '/no/such"):
        a.discover()
