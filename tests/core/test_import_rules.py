"""Import-linter style rules, checked on the AST of the source files (no extra tool). The layers are
those of ``docs/architecture.md``:

* no import cycle between modules (module-level imports);
* the bottom layer (``values``, ``prefetch``, ``exceptions``, ``ahead``) imports no other dc_api_x
  module, and the data layer (``types``, ``arrow``, ``bookmarks``, ``inference``) only the bottom and itself;
* ``dc_api_x.ext`` (public bases) never imports a built-in plugin;
* built-in plugins (``plugins.DEFAULT_PLUGINS``, every module of their packages) do not import each
  other: each is reached through the registry only; their plugin modules import no heavy library at
  module level (``enable_plugins()`` imports them), nor do ``ext.sql`` and the light transforms modules;
* the SQL adapter reaches its backends through ``SQLAdapter.backends`` (no backend imports another);
  the transform modules do not import each other (only their shared modules);
* ``taps/``, ``targets/`` and ``dc_api_x/runner`` never import ``dc_api_x.adapters.*`` directly, nor a
  built-in plugin other than the stream-map converter the runner uses.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from dc_api_x import plugins as plugins_mod
from tests.support.heavy import HEAVY

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


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
        "from ..adapters import sql\nfrom ..adapters.sql.adapter import X\n"
        "import dc_api_x.adapters.http\nimport importlib\n"
        "importlib.import_module('dc_api_x.adapters.files')\n"
        "def f():\n    from .. import pagination\n"
    )
    names = [n for _line, n in imports(probe, name="dc_api_x.runner.probe")]
    for expected in (
        "dc_api_x.adapters.sql",
        "dc_api_x.adapters.sql.adapter",
        "dc_api_x.adapters.http",
        "dc_api_x.adapters.files",
        "dc_api_x.pagination",
    ):
        assert expected in names
    top = [n for _line, n in imports(probe, name="dc_api_x.runner.probe", top_level_only=True)]
    assert "dc_api_x.pagination" not in top  # a function-level import is lazy


# ------------------------------------------------------------------------------------ layers
SRC_FILES = py_files(SRC / "dc_api_x")
MODULES = {module_name(p): p for p in SRC_FILES}
BOTTOM = ("dc_api_x.values", "dc_api_x.prefetch", "dc_api_x.exceptions", "dc_api_x.ahead")
DATA = (
    "dc_api_x.types",
    *sorted(m for m in MODULES if _within(m, "dc_api_x.arrow")),  # the package and its modules
    "dc_api_x.bookmarks",
    "dc_api_x.inference",
)


def module_edges(path: Path) -> set[str]:
    """The dc_api_x modules ``path`` imports at module level (``from pkg import sub`` is an edge to
    ``pkg.sub`` only; ``if TYPE_CHECKING:`` blocks are not imports)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                root = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{root}.{node.module}" if node.module else root
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            out.update(subs if len(subs) == len(node.names) else [base, *subs])
    return {m for m in out if m in MODULES and m != me}


def test_no_import_cycle_between_modules() -> None:
    graph = {m: module_edges(p) for m, p in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = [*path[path.index(n) :], n]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("mod", BOTTOM + DATA)
def test_bottom_and_data_layers_import_only_below(mod: str) -> None:
    path = MODULES[mod]
    allowed = () if mod in BOTTOM else BOTTOM + DATA
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in imports(path)
        if _within(name, "dc_api_x") and name != mod and not any(_within(name, a) for a in allowed)
    ]
    assert not bad, f"{mod} is below them:\n" + "\n".join(bad)


def _builtin_roots() -> list[str]:
    return list(plugins_mod.DEFAULT_PLUGINS)


def test_ext_never_imports_builtin_plugins() -> None:
    files = py_files(SRC / "dc_api_x" / "ext")
    assert files
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {name}"
        for p in files
        for line, name in imports(p)
        if any(_within(name, b) for b in _builtin_roots())
    ]
    assert not bad, (
        "dc_api_x.ext holds the public bases; built-ins build on it, not the reverse:\n" + "\n".join(bad)
    )


#: Known exceptions: (plugin package, imported name) → why.
CROSS_PLUGIN_IMPORTS = {
    # dc_api_x.schemas is both the schema-provider plugin and the schema helpers; the files adapter
    # uses a helper (a stream's `schema` option), not a plugin entry point
    ("dc_api_x.adapters.files", "dc_api_x.schemas"): "schema helper",
    ("dc_api_x.adapters.files", "dc_api_x.schemas.apply_schema_override"): "schema helper",
}


@pytest.mark.parametrize("plugin", plugins_mod.DEFAULT_PLUGINS)
def test_builtin_plugin_packages_do_not_import_other_builtins(plugin: str) -> None:
    base = module_path(plugin)
    files = py_files(base.parent) if base.name == "__init__.py" else [base]
    others = [p for p in plugins_mod.DEFAULT_PLUGINS if p != plugin and not _within(p, plugin)]
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {name}"
        for p in files
        for line, name in imports(p)
        if any(_within(name, o) for o in others) and (plugin, name) not in CROSS_PLUGIN_IMPORTS
    ]
    assert not bad, "built-in plugins are reached through the registry only:\n" + "\n".join(bad)


LIGHT = (
    "dc_api_x.client",
    "dc_api_x.async_client",
    "dc_api_x.values",
    "dc_api_x.prefetch",
    "dc_api_x.ext.sql",
    "dc_api_x.transforms",
    "dc_api_x.transforms.expressions",
    "dc_api_x.transforms.stream_maps",
)


@pytest.mark.parametrize("mod", LIGHT)
def test_light_modules_import_no_heavy_library_at_module_level(mod: str) -> None:
    path = module_path(mod)
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in imports(path, top_level_only=True)
        if name.split(".")[0] in HEAVY
    ]
    assert not bad, "\n".join(bad)


SQL_BACKENDS = ("dc_api_x.adapters.sql.postgresql", "dc_api_x.adapters.sql.sqlite")


@pytest.mark.parametrize(
    "mod", ["dc_api_x.adapters.sql.adapter", "dc_api_x.adapters.sql.generic", *SQL_BACKENDS]
)
def test_sql_backends_are_reached_through_the_dialect_mapping(mod: str) -> None:
    """The adapter picks a backend by its ``"module:Class"`` string; backends build on the generic
    one, never on each other."""
    path = module_path(mod)
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in imports(path)
        if any(_within(name, b) for b in SQL_BACKENDS if b != mod)
    ]
    assert not bad, "\n".join(bad)


TRANSFORMS = ("select", "rename", "cast", "flatten", "masking", "filter", "add_field")


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transform_modules_do_not_import_each_other(name: str) -> None:
    path = module_path(f"dc_api_x.transforms.{name}")
    others = [f"dc_api_x.transforms.{o}" for o in TRANSFORMS if o != name]
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {n}"
        for line, n in imports(path)
        if any(_within(n, o) for o in others)
    ]
    assert not bad, "\n".join(bad)


def test_taps_targets_and_runner_use_no_builtin_plugin_but_the_stream_map_converter() -> None:
    files = py_files(ROOT / "taps", ROOT / "targets", SRC / "dc_api_x" / "runner")
    allowed = ("dc_api_x.transforms.stream_maps",)
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {name}"
        for p in files
        for line, name in imports(p)
        if any(_within(name, b) for b in _builtin_roots())
        and not any(_within(name, a) for a in allowed)
        and name != "dc_api_x.transforms"  # the package of the converter (``from ..transforms.stream_maps``)
    ]
    assert not bad, "\n".join(bad)
