"""``dcapix new-plugin``: what the template renders, the names it derives, and its errors (one line)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dc_api_x_sdk_meltano.scaffold import TEMPLATE, new_plugin, plugin_names
from sdkm_support import dcapix

from dc_api_x.exceptions import ConfigError

SINGER_FILES = {
    ".copier-answers.yml",
    ".gitignore",
    "README.md",
    "meltano.yml",
    "pyproject.toml",
    "src/dc_api_x_my_api/__init__.py",
    "src/dc_api_x_my_api/adapter.py",
    "src/dc_api_x_my_api/py.typed",
    "src/dc_api_x_my_api/tap.py",
    "src/dc_api_x_my_api/target.py",
    "tests/conftest.py",
    "tests/data/customers.jsonl",
    "tests/data/customers.schema.json",
    "tests/test_adapter.py",
    "tests/test_singer.py",
}
SINGER_ONLY = {
    "meltano.yml",
    "src/dc_api_x_my_api/tap.py",
    "src/dc_api_x_my_api/target.py",
    "tests/test_singer.py",
}


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(path.read_text())


def test_names_derived_from_a_plugin_name() -> None:
    assert plugin_names("my-api") == {
        "adapter_name": "my_api",
        "package_name": "dc_api_x_my_api",
        "distribution": "dc-api-x-my-api",
        "tap": "tap-my-api",
        "target": "target-my-api",
        "class_prefix": "MyApi",
    }
    assert plugin_names("crm")["class_prefix"] == "Crm"
    assert plugin_names("big_query2")["tap"] == "tap-big-query2"


def test_the_command_renders_a_plugin_with_tap_and_target(tmp_path: Path) -> None:
    res = dcapix(
        "new-plugin",
        "my-api",
        str(tmp_path / "p"),
        "-d",
        "description=Reads the My API",
        "-d",
        "author_email=a@b.c",
    )
    assert res.returncode == 0, res.stderr
    assert "created dc-api-x-my-api in" in res.stdout and "tap-my-api, target-my-api" in res.stdout
    root = tmp_path / "p"
    assert files(root) == SINGER_FILES
    project = load_toml(root / "pyproject.toml")["project"]
    assert project["name"] == "dc-api-x-my-api"
    assert project["description"] == "Reads the My API"
    assert project["authors"] == [{"email": "a@b.c"}]
    assert project["entry-points"]["dc_api_x.plugins"] == {"my_api": "dc_api_x_my_api"}
    assert project["scripts"] == {
        "tap-my-api": "dc_api_x_my_api.tap:TapMyApi.cli",
        "target-my-api": "dc_api_x_my_api.target:TargetMyApi.cli",
    }
    assert any(d.startswith("dc-api-x-sdk-meltano>=") for d in project["dependencies"])
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == str(TEMPLATE) and answers["plugin_name"] == "my-api" and answers["singer"]


def test_the_plugin_module_follows_the_guide(tmp_path: Path) -> None:
    root = new_plugin("my-api", tmp_path / "p")
    module = (root / "src" / "dc_api_x_my_api" / "__init__.py").read_text()
    tree = ast.parse(module)
    doc = ast.get_docstring(tree) or ""
    for section in (
        "This plugin provides:",
        "Requirements:",
        "Environment variables:",
        "DC_API_X_MY_API_PATH",
    ):
        assert section in doc, section
    hook = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "register_adapters")
    # the heavy import inside the hook (the guide's lazy loading), then registry[NAME] = ...
    assert isinstance(hook.body[1], ast.ImportFrom) and hook.body[1].module == "adapter"
    assert ast.unparse(hook.body[2]) == "registry['my_api'] = MyApiAdapter"
    assert not [
        n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) and n.module != "__future__"
    ]  # nothing else is imported when the plugin loads
    assert 'DC_API_X_REQUIRES = ">=0.2.0"' in module  # a core outside it refuses the plugin, naming both


def test_without_singer_there_is_no_tap_target_or_meltano_project(tmp_path: Path) -> None:
    res = dcapix("new-plugin", "my-api", str(tmp_path / "p"), "--no-singer")
    assert res.returncode == 0, res.stderr
    root = tmp_path / "p"
    assert files(root) == SINGER_FILES - SINGER_ONLY
    project = load_toml(root / "pyproject.toml")["project"]
    assert "scripts" not in project
    assert [d for d in project["dependencies"] if d.startswith("dc-api-x")] == ["dc-api-x>=0.2.0"]
    assert "tap-my-api" not in (root / "src" / "dc_api_x_my_api" / "__init__.py").read_text()


def test_the_meltano_project_declares_custom_plugins(tmp_path: Path) -> None:
    root = new_plugin("my-api", tmp_path / "p")
    project = yaml.safe_load((root / "meltano.yml").read_text())
    [tap] = project["plugins"]["extractors"]
    [target] = project["plugins"]["loaders"]
    for plugin, executable in ((tap, "tap-my-api"), (target, "target-my-api")):
        assert plugin["name"] == plugin["executable"] == executable
        assert plugin["namespace"] == executable.replace("-", "_") and plugin["pip_url"] == "-e ."
        assert {s["name"] for s in plugin["settings"]} >= {"path", "batch_size"}
    assert {"catalog", "discover", "state", "about"} <= set(tap["capabilities"])
    assert {"about", "stream-maps"} <= set(target["capabilities"])


@pytest.mark.parametrize("singer", [True, False])
def test_the_rendered_code_is_lint_clean(tmp_path: Path, singer: bool) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists() and not shutil.which("ruff"):
        pytest.fail("ruff is not installed (pip install -e '.[dev]')")
    root = new_plugin("my-api", tmp_path / "p", singer=singer)
    exe = str(ruff) if ruff.exists() else "ruff"
    for cmd in ([exe, "check", "--no-cache", "."], [exe, "format", "--check", "--no-cache", "."]):
        res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("name", ["", "My-Api", "9lives", "my--api", "my api", "api-", "../x", "a.b"])
def test_a_bad_name_is_one_line(tmp_path: Path, name: str) -> None:
    res = dcapix("new-plugin", name, str(tmp_path / "p"))
    assert res.returncode == 1
    assert res.stderr.startswith("dcapix: error: new-plugin: ") and res.stderr.count("\n") == 1
    assert "is not a plugin name" in res.stderr
    assert not (tmp_path / "p").exists()


def test_a_directory_in_the_way_is_refused_unless_forced(tmp_path: Path) -> None:
    dest = tmp_path / "p"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    res = dcapix("new-plugin", "crm", str(dest))
    assert res.returncode == 1 and "is not empty" in res.stderr and res.stderr.count("\n") == 1
    assert files(dest) == {"notes.txt"}
    res = dcapix("new-plugin", "crm", str(dest), "--force")
    assert res.returncode == 0, res.stderr
    assert {"notes.txt", "src/dc_api_x_crm/adapter.py"} <= files(dest)


def test_bad_data_is_one_line(tmp_path: Path) -> None:
    res = dcapix("new-plugin", "crm", str(tmp_path / "p"), "-d", "description")
    assert res.returncode == 1 and "--data expects KEY=VALUE" in res.stderr
    with pytest.raises(ConfigError, match="give the name as NAME"):
        new_plugin("crm", tmp_path / "q", data={"plugin_name": "other"})


def test_a_template_error_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "template"
    shutil.copytree(TEMPLATE, broken)
    (broken / "copier.yml").write_text("_subdirectory: project\nplugin_name: {type: no-such-type}\n")
    with pytest.raises(ConfigError) as err:
        new_plugin("crm", tmp_path / "p", template=broken)
    assert str(err.value).startswith("new-plugin: the template failed: ") and "\n" not in str(err.value)


def test_the_default_destination_is_named_after_the_distribution(tmp_path: Path) -> None:
    res = dcapix("new-plugin", "crm", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "dc-api-x-crm" / "src" / "dc_api_x_crm" / "adapter.py").is_file()


def test_help_lists_new_plugin_and_its_options() -> None:
    res = dcapix("--help")
    assert res.returncode == 0 and "new-plugin" in res.stdout
    res = dcapix("new-plugin", "--help")
    assert res.returncode == 0
    for option in ("--singer, --no-singer", "--data KEY=VALUE", "--defaults", "--force", "--template PATH"):
        assert option in res.stdout, option


def test_the_template_ships_with_the_distribution() -> None:
    """Every template file is package data (pyproject's globs include dotfiles and jinja names)."""
    pyproject = load_toml(TEMPLATE.parents[2] / "pyproject.toml")
    globs = pyproject["tool"]["setuptools"]["package-data"]["dc_api_x_sdk_meltano"]
    package = TEMPLATE.parent
    shipped: set[Path] = set()
    for pattern in globs:
        shipped |= {p for p in package.glob(pattern) if p.is_file()}
    template_files = {p for p in TEMPLATE.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert template_files <= shipped, sorted(str(p) for p in template_files - shipped)


def test_json_sample_data_matches_its_schema(tmp_path: Path) -> None:
    root = new_plugin("crm", tmp_path / "p", singer=False)
    meta = json.loads((root / "tests" / "data" / "customers.schema.json").read_text())
    props = meta["schema"]["properties"]
    rows = [
        json.loads(line) for line in (root / "tests" / "data" / "customers.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 12 and all(set(r) == set(props) for r in rows)
    assert len({r["id"] for r in rows}) == 12 and meta["replication_key"] == "updated_at"
