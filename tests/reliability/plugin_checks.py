"""G5 plugins: what loads, through the real ``dcapix plugins`` console script and the real test
distributions of ``tests/plugins_dist`` (installed into this environment by
``tests/support/dists.py``; their misbehaving entry points are in the group ``dc_api_x.test_plugins``).

(a) ``DC_API_X_ALLOWED_PLUGINS=dcapix-example-plugin``: the example plugin loads, every other
    installed entry point is listed ``blocked`` and not imported (no import warning at all).
(b) Without an allowlist, a plugin raising at import fails with one warning naming its entry point
    and distribution; every other plugin still loads.
(c) A plugin registering a name a built-in holds (``http``) is rejected, the built-in kept.
(d) A module in the working directory named like an installed plugin's module, or like a plugin,
    is never imported by ``dcapix`` (the console script does not put the CWD on ``sys.path``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.kill import BIN, _env

__all__ = ["PluginChecks", "plugin_checks"]

GROUP = "dc_api_x.test_plugins"

SHADOW_CHILD = """
import json, warnings
warnings.simplefilter("ignore")
from dc_api_x import enable_plugins, get_adapter

class Shadow:
    @staticmethod
    def register_adapters(registry):
        registry["http"] = "json:JSONDecoder"

ps = enable_plugins(plugins=[Shadow], lazy=False)
print(json.dumps({"status": ps.plugins["Shadow"].status, "reason": ps.plugins["Shadow"].reason,
                  "http": get_adapter("http").__module__}))
"""


@dataclass
class PluginChecks:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and len(self.passed) == 4


def _plugins(cwd: Path, **env: str) -> tuple[int, list[dict[str, object]], str]:
    e = _env(None)
    e.update(env)
    proc = subprocess.run(
        [str(BIN / "dcapix"), "plugins", "--json", "--group", GROUP],
        cwd=cwd,
        env=e,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    try:
        listed = json.loads(proc.stdout)
    except ValueError:
        listed = []
    return proc.returncode, listed, proc.stderr


def plugin_checks(work: Path) -> PluginChecks:
    from tests.core.conftest import DISTS
    from tests.support.dists import install

    res = PluginChecks()
    work.mkdir(parents=True, exist_ok=True)
    try:
        install(DISTS)
    except RuntimeError as exc:
        res.failed.append(f"could not install the test distributions: {exc}")
        return res
    # (a) the allowlist
    rc, listed, err = _plugins(work, DC_API_X_ALLOWED_PLUGINS="dcapix-example-plugin")
    by = {str(p["name"]): p for p in listed}
    others = [p for p in listed if not p["builtin"] and p["distribution"] != "dcapix-example-plugin"]
    if (
        rc == 0
        and by.get("example", {}).get("status") == "loaded"
        and others
        and all(p["status"] == "blocked" for p in others)
        and "PluginWarning" not in err
        and "failed to import" not in err
    ):
        res.passed.append("a")
    else:
        res.failed.append(
            f"(a) allowlist: rc {rc}, stderr {err[-300:]!r}, others {[p['status'] for p in others]}"
        )
    # (b) a plugin raising at import
    rc, listed, err = _plugins(work)
    by = {str(p["name"]): p for p in listed}
    warned = [x for x in err.splitlines() if "'broken_import'" in x]
    if (
        rc == 0
        and by.get("broken_import", {}).get("status") == "failed"
        and len(warned) == 1
        and "dcapix-broken-plugin" in warned[0]
        and by.get("example", {}).get("status") == "loaded"
        and all(p["status"] == "loaded" for p in listed if p["builtin"])
    ):
        res.passed.append("b")
    else:
        res.failed.append(f"(b) broken import: rc {rc}, warnings {warned}, stderr {err[-300:]!r}")
    # (c) shadowing a built-in's name
    proc = subprocess.run(
        [sys.executable, "-c", SHADOW_CHILD],
        cwd=work,
        env=_env(None),
        capture_output=True,
        text=True,
        timeout=900,
    )
    try:
        got = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        got = {}
    if (
        got.get("status") == "failed"
        and "http" in str(got.get("reason"))
        and got.get("http", "").startswith("dc_api_x.")
    ):
        res.passed.append("c")
    else:
        res.failed.append(f"(c) shadowing: {got or proc.stderr[-300:]!r}")
    # (d) modules in the working directory
    cwd = work / "cwd"
    cwd.mkdir(exist_ok=True)
    marker = cwd / "IMPORTED"
    for mod in ("dcapix_example_plugin", "dcapix_cwd_plugin", "dc_api_x_plugin"):
        (cwd / f"{mod}.py").write_text(f"open({str(marker)!r}, 'a').write({mod!r} + '\\n')\n")
    rc, listed, err = _plugins(cwd)
    by = {str(p["name"]): p for p in listed}
    if rc == 0 and not marker.exists() and by.get("example", {}).get("status") == "loaded":
        res.passed.append("d")
    else:
        imported = marker.read_text().split() if marker.exists() else []
        res.failed.append(f"(d) CWD modules: rc {rc}, imported {imported}, stderr {err[-200:]!r}")
    return res
