"""``import dc_api_x`` and ``enable_plugins()`` import no heavy library (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.support.heavy import HEAVY

from .conftest import TEST_GROUP

PROBE = textwrap.dedent("""
    import json, sys
    HEAVY = {heavy!r}

    def heavy():
        return sorted({{m.split(".")[0] for m in sys.modules if m.split(".")[0] in HEAVY}})

    out = {{}}
    import dc_api_x
    out["import"] = heavy()
    ps = dc_api_x.enable_plugins(entry_point_groups=[{group!r}])
    out["enable_plugins"] = heavy()
    for attr in ps.registries:
        getattr(dc_api_x, "list_" + attr)()
    dc_api_x.get_plugin_manager()
    out["list_all"] = heavy()
    out["example_adapter_module_before_get"] = "dcapix_example_plugin.adapter" in sys.modules
    dc_api_x.get_adapter("example")
    out["example_adapter_module_after_get"] = "dcapix_example_plugin.adapter" in sys.modules
    out["plugins"] = {{n: i.status for n, i in ps.plugins.items()}}
    from dc_api_x.cli import build_parser
    build_parser()
    out["cli_parser"] = heavy()
    print(json.dumps(out))
""")


@pytest.mark.usefixtures("plugin_dists")
def test_import_and_enable_plugins_import_no_heavy_library() -> None:
    code = PROBE.format(heavy=HEAVY, group=TEST_GROUP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    res = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["import"] == [], "import dc_api_x imported " + ", ".join(out["import"])
    assert out["enable_plugins"] == [], "enable_plugins() imported " + ", ".join(out["enable_plugins"])
    assert out["list_all"] == [], "list_*() imported " + ", ".join(out["list_all"])
    assert out["plugins"]["example"] == "loaded"
    # registry entries given as "module:Class" strings are imported on first get only
    assert out["example_adapter_module_before_get"] is False
    assert out["example_adapter_module_after_get"] is True
    assert out["cli_parser"] == [], "building the dcapix parser imported " + ", ".join(out["cli_parser"])
