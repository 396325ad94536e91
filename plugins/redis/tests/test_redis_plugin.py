"""dc-api-x-redis as an installed distribution: listed by ``dcapix plugins``, lazy, written in the
guide's style; without redis-py it is listed as unavailable with the reason while everything else
works; ``pip uninstall`` removes it cleanly (checked in a throwaway venv)."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import dc_api_x_redis
import pytest

PLUGIN_DIR = Path(__file__).resolve().parents[1]


def test_dcapix_plugins_lists_the_installed_distribution(cli: Any) -> None:
    res = cli("dcapix", "plugins", "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    row = rows["redis"]
    assert (row["distribution"], row["version"], row["status"]) == ("dc-api-x-redis", "0.1.0", "loaded")
    assert row["registers"] == {"adapters": ["redis"], "hooks": ["redis_cache"]}
    assert "warning" not in res.stderr


def test_enable_plugins_imports_neither_redis_nor_pyarrow() -> None:
    code = textwrap.dedent("""
        import json, sys
        import dc_api_x
        ps = dc_api_x.enable_plugins()
        names = {"redis", "hiredis", "pyarrow", "httpx"}
        heavy = lambda: sorted({m.split(".")[0] for m in sys.modules} & names)
        out = {"after_enable": heavy()}
        dc_api_x.list_adapters(); dc_api_x.list_hooks()  # registries filled (eagerly or on first use)
        out["status"] = ps.plugins["redis"].status
        dc_api_x.get_adapter("redis"); dc_api_x.get_hook("redis_cache")
        out["after_get"] = heavy()
        a = dc_api_x.create_adapter({"adapter": "redis", "url": "redis://127.0.0.1:1/0"})
        out["after_create"] = heavy()
        print(json.dumps(out))
    """)
    res = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.splitlines()[-1])
    assert out == {"status": "loaded", "after_enable": [], "after_get": [], "after_create": []}


def test_written_in_the_guides_style() -> None:
    doc = dc_api_x_redis.__doc__ or ""
    assert doc.lstrip().startswith("DCApiX plugin for Redis")
    assert "Requirements:\n- dc-api-x>=0.2.0\n- redis>=" in doc
    assert "Environment variables:\n- DC_API_X_REDIS_URL:" in doc and "- DC_API_X_REDIS_TIMEOUT:" in doc
    for hook in (dc_api_x_redis.register_adapters, dc_api_x_redis.register_hooks):
        src = inspect.getsource(hook)
        assert 'registry["redis' in src and '= "dc_api_x_redis.' in src  # mapping registration, lazy
    from dc_api_x_redis.adapter import RedisAdapter
    from dc_api_x_redis.config import RedisConfig
    from pydantic import BaseModel

    assert issubclass(RedisConfig, BaseModel) and RedisAdapter.Options is RedisConfig
    assert all(f.description for f in RedisConfig.model_fields.values())
    with open(PLUGIN_DIR / "pyproject.toml", "rb") as fh:
        import tomllib

        project = tomllib.load(fh)["project"]
    assert "dc-api-x>=0.2.0" in project["dependencies"]
    assert project["entry-points"]["dc_api_x.plugins"] == {"redis": "dc_api_x_redis"}


def _fresh_venv(tmp: Path) -> tuple[Path, Path]:
    """A venv whose site-packages sees this environment's packages through a mirror of symlinks,
    minus dc-api-x-redis, redis-py and hiredis: the core is installed, the plugin and its client are not."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    ours = Path(sysconfig.get_paths()["purelib"])
    mirror = tmp / "mirror"
    mirror.mkdir()

    def excluded(name: str) -> bool:
        low = name.lower().replace("-", "_")
        return low.startswith(("dc_api_x_redis", "__editable__.dc_api_x_redis", "redis", "hiredis"))

    for entry in ours.iterdir():
        if excluded(entry.name):
            continue
        if entry.suffix == ".pth":
            (site / entry.name).write_text(entry.read_text())  # editable installs of the core
        else:
            (mirror / entry.name).symlink_to(entry)
    (site / "000-dcapix-test-mirror.pth").write_text(f"{mirror}\n")
    return python, site


def _plugins(python: Path, cwd: Path) -> dict[str, Any]:
    code = "import sys; from dc_api_x.cli import main; sys.exit(main(['plugins', '--json']))"
    res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert res.returncode == 0, res.stderr
    return {r["name"]: r for r in json.loads(res.stdout)}


def test_without_redis_py_it_is_unavailable_and_uninstall_removes_it(tmp_path: Path) -> None:
    python, site = _fresh_venv(tmp_path)
    check = subprocess.run([str(python), "-c", "import redis"], capture_output=True, text=True)
    assert check.returncode != 0, "redis-py must not be importable in the throwaway venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DC_API_X_", "PIP_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    source = tmp_path / "dc-api-x-redis"  # a copy: pip's build leaves no build/ in the repository
    skip = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests")
    shutil.copytree(PLUGIN_DIR, source, ignore=skip)
    inst = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert inst.returncode == 0, inst.stderr[-3000:]
    assert (site / "dc_api_x_redis" / "__init__.py").exists()

    rows = _plugins(python, tmp_path)
    row = rows["redis"]
    assert row["status"] == "failed" and row["distribution"] == "dc-api-x-redis"
    assert "unavailable: redis-py is not installed" in row["reason"]
    assert row["registers"] == {}
    assert all(r["status"] == "loaded" for n, r in rows.items() if n != "redis")

    # everything else keeps working: a pipeline through the built-in adapters, and a clear error for redis
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "t.jsonl").write_text('{"id": 1}\n{"id": 2}\n')
    (tmp_path / "src.json").write_text(
        json.dumps({"adapter": "jsonl", "path": str(tmp_path / "in" / "t.jsonl")})
    )
    (tmp_path / "dst.json").write_text(json.dumps({"adapter": "jsonl", "path": str(tmp_path / "out")}))
    code = (
        "import sys; from dc_api_x.cli import main; "
        "sys.exit(main(['run', '--source', 'src.json', '--destination', 'dst.json', '--no-state', '--json', "
        "'--no-progress']))"
    )
    res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["rows"] == 2
    (tmp_path / "rsrc.json").write_text(json.dumps({"adapter": "redis"}))
    code = code.replace("src.json", "rsrc.json")
    res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 1 and "unknown adapter 'redis'" in res.stderr
    assert "Traceback" not in res.stderr

    # uninstall: no files left, no longer listed, nothing warns
    un = subprocess.run(
        [str(python), "-m", "pip", "uninstall", "-y", "dc-api-x-redis"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert un.returncode == 0, un.stderr
    left = [p.name for p in site.iterdir() if "dc_api_x_redis" in p.name.replace("-", "_").lower()]
    assert left == []
    code = "import sys; from dc_api_x.cli import main; sys.exit(main(['plugins', '--json']))"
    res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0 and "redis" not in {r["name"] for r in json.loads(res.stdout)}
    assert "warning" not in res.stderr


@pytest.mark.parametrize("hook", ["register_adapters", "register_hooks"])
def test_each_hook_refuses_to_register_without_redis_py(monkeypatch: pytest.MonkeyPatch, hook: str) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # what an absent package looks like to importlib
    with pytest.raises(ModuleNotFoundError, match="unavailable: redis-py is not installed"):
        getattr(dc_api_x_redis, hook)({})
