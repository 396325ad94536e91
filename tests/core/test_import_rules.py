"""Import-linter style rules, checked on the AST of the source files (no extra tool).

* Built-in plugin modules (``plugins.DEFAULT_PLUGINS``) do not import each other: each is reached
  through the registry only.
* ``taps/``, ``targets/`` and ``dc_api_x/runner`` never import ``dc_api_x.adapters.*`` directly.
* Built-in plugin modules import no heavy library at module level (``enable_plugins()`` imports them).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from dc_api_x import plugins as plugins_mod

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
HEAVY = (
    "httpx",
    "httpcore",
    "h2",
    "sqlalchemy",
    "pyarrow",
    "singer_sdk",
    "psycopg",
    "psycopg2",
    "adbc_driver_manager",
    "adbc_driver_postgresql",
    "pandas",
    "fsspec",
)


def module_name(path: Path) -> str:
    for base in (SRC, ROOT / "taps", ROOT / "targets"):
        if path.is_relative_to(base):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join(parts)
    raise ValueError(path)


def module_path(name: str) -> Path:
    base = SRC.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def imports(
    path: Path, *, top_level_only: bool = False, name: str | None = None
) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path`` (relative ones resolved), plus
    ``importlib.import_module("...")`` / ``__import__("...")`` calls with a literal name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = name or module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            yield node.lineno, mod
            for alias in node.names:  # "from pkg import submodule"
                yield node.lineno, f"{mod}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def py_files(*dirs: Path) -> list[Path]:
    return sorted(p for d in dirs if d.exists() for p in d.rglob("*.py"))


@pytest.mark.parametrize("plugin", plugins_mod.DEFAULT_PLUGINS)
def test_builtin_plugins_do_not_import_each_other(plugin: str) -> None:
    path = module_path(plugin)
    others = [p for p in plugins_mod.DEFAULT_PLUGINS if p != plugin]
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in imports(path)
        if any(_within(name, o) for o in others)
    ]
    assert not bad, "built-in plugins are reached through the registry only:\n" + "\n".join(bad)


@pytest.mark.parametrize("plugin", plugins_mod.DEFAULT_PLUGINS)
def test_builtin_plugins_import_no_heavy_library_at_module_level(plugin: str) -> None:
    path = module_path(plugin)
    found = imports(path, top_level_only=True)
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in found
        if name.split(".")[0] in HEAVY
    ]
    assert not bad, "enable_plugins() imports this module; import lazily instead:\n" + "\n".join(bad)


def test_taps_targets_and_runner_never_import_adapters_directly() -> None:
    files = py_files(ROOT / "taps", ROOT / "targets", SRC / "dc_api_x" / "runner")
    assert files, "nothing to check"
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {name}"
        for p in files
        for line, name in imports(p)
        if _within(name, "dc_api_x.adapters")
    ]
    assert not bad, "use the registry (get_adapter / create_adapter), not adapter modules:\n" + "\n".join(bad)


def test_the_checker_sees_relative_and_dynamic_imports(tmp_path: Path) -> None:
    """The rules above would pass vacuously if the AST scan missed an import form."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from ..adapters import sql\nfrom ..adapters._sql import X\n"
        "import dc_api_x.adapters.http\nimport importlib\n"
        "importlib.import_module('dc_api_x.adapters.files')\n"
        "def f():\n    from .. import pagination\n"
    )
    names = [n for _line, n in imports(probe, name="dc_api_x.runner.probe")]
    for expected in (
        "dc_api_x.adapters.sql",
        "dc_api_x.adapters._sql",
        "dc_api_x.adapters.http",
        "dc_api_x.adapters.files",
        "dc_api_x.pagination",
    ):
        assert expected in names
    top = [n for _line, n in imports(probe, name="dc_api_x.runner.probe", top_level_only=True)]
    assert "dc_api_x.pagination" not in top  # a function-level import is lazy
