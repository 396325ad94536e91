"""Registries are filled on first use: ``enable_plugins()`` calls no ``register_*`` hook, so the
guide's lazy-loading pattern (the heavy import inside ``register_adapters``) costs nothing until
adapters are used — with failure isolation and clash detection at that first use."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import types
import warnings
from pathlib import Path
from typing import Any

import pytest

import dc_api_x
from dc_api_x import PluginWarning, UnknownPluginError, enable_plugins
from dc_api_x.ext.adapters import ProtocolAdapter

pytestmark = pytest.mark.usefixtures("clean_env")


def module(name: str, **funcs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    for k, v in funcs.items():
        setattr(mod, k, v)
    return mod


def build(*plugins: Any, **kwargs: Any) -> dc_api_x.PluginSet:
    kwargs.setdefault("entry_points", False)
    kwargs.setdefault("make_current", False)
    return enable_plugins(plugins=plugins, **kwargs)


class Heavy(ProtocolAdapter):
    name = "heavy"


def test_hooks_run_on_the_first_use_of_their_registry_only() -> None:
    calls: list[str] = []

    def register_adapters(registry: Any) -> None:
        calls.append("adapters")
        registry["heavy"] = Heavy

    def register_pagination_handlers(registry: Any) -> None:
        calls.append("paginators")
        registry["pages"] = object

    ps = build(
        module(
            "lazy_one",
            register_adapters=register_adapters,
            register_pagination_handlers=register_pagination_handlers,
        )
    )
    assert calls == [] and ps.plugins["lazy_one"].status == "loaded"
    assert "pages" in ps.paginators
    assert calls == ["paginators"]
    assert ps.adapters["heavy"] is Heavy and len(ps.adapters) > 1 and "heavy" in ps.adapters.names()
    assert calls == ["paginators", "adapters"]  # once each, whatever the number of lookups
    assert ps.plugins["lazy_one"].registers == {"paginators": ["pages"], "adapters": ["heavy"]}
    ps.fill_registries()
    assert calls == ["paginators", "adapters"]


def test_the_guides_heavy_import_waits_for_the_adapter_registry(tmp_path: Path) -> None:
    """In a fresh interpreter: a real plugin package on disk whose register_adapters imports its
    heavy module; enable_plugins() and the use of other registries leave it unimported."""
    pkg = tmp_path / "guide_lazy_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent("""
        def register_adapters(registry):
            from .heavy_adapter import HeavyAdapter
            registry["heavy"] = HeavyAdapter
        """)
    )
    (pkg / "heavy_adapter.py").write_text(
        textwrap.dedent("""
        from dc_api_x.ext.adapters import ProtocolAdapter

        class HeavyAdapter(ProtocolAdapter):
            name = "heavy"
        """)
    )
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import dc_api_x, guide_lazy_plugin
        dc_api_x.enable_plugins(entry_points=False, plugins=[guide_lazy_plugin])
        out = ["guide_lazy_plugin.heavy_adapter" in sys.modules]
        dc_api_x.list_paginators(); dc_api_x.list_transforms(); dc_api_x.get_auth_provider("bearer")
        out.append("guide_lazy_plugin.heavy_adapter" in sys.modules)
        dc_api_x.get_adapter("heavy")
        out.append("guide_lazy_plugin.heavy_adapter" in sys.modules)
        print(out)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[False, False, True]"


def test_a_raising_hook_fails_its_plugin_at_first_use_and_the_warning_points_here() -> None:
    def register_adapters(registry: Any) -> None:
        registry["half"] = Heavy
        raise RuntimeError("kaboom")

    bad = module(
        "bad_lazy",
        register_adapters=register_adapters,
        register_hooks=lambda registry: registry.__setitem__("bad_hook", object),
    )
    good = module("good_lazy", register_adapters=lambda registry: registry.__setitem__("fine", Heavy))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ps = build(bad, good)
        assert caught == []  # nothing is called yet
        assert ps.adapters["fine"] is Heavy  # the first use fills the registry
    assert [str(w.message) for w in caught] == [
        "dc-api-x plugin 'bad_lazy' failed in register_adapters: RuntimeError: kaboom"
    ]
    assert caught[0].filename == __file__  # attributed to the lookup, not to dc_api_x internals
    info = ps.plugins["bad_lazy"]
    assert (info.status, info.reason) == ("failed", "RuntimeError in register_adapters: kaboom")
    assert "half" not in ps.adapters
    assert "bad_hook" not in ps.hooks  # registries filled after the failure skip the plugin
    assert ps.plugins["good_lazy"].status == "loaded"


def test_entries_given_before_a_later_failure_stay() -> None:
    def register_adapters(registry: Any) -> None:
        raise RuntimeError("late")

    mod = module(
        "late_fail",
        register_adapters=register_adapters,
        register_hooks=lambda registry: registry.__setitem__("early_hook", object),
    )
    ps = build(mod)
    assert ps.hooks["early_hook"] is object
    with pytest.warns(PluginWarning, match="late_fail' failed in register_adapters"):
        assert "nothing" not in ps.adapters
    assert ps.plugins["late_fail"].status == "failed"
    assert ps.hooks["early_hook"] is object and ps.plugins["late_fail"].registers == {"hooks": ["early_hook"]}


def test_a_clash_fails_the_later_plugin_at_first_use_only() -> None:
    one = module("vendor_a", register_adapters=lambda registry: registry.__setitem__("ldap", Heavy))
    two = module(
        "vendor_b",
        register_adapters=lambda registry: registry.__setitem__("ldap", object),
        register_hooks=lambda registry: registry.__setitem__("b_hook", object),
    )
    ps = build(one, two)  # lazy: building succeeds
    message = (
        r"'vendor_b' failed: adapter 'ldap' is provided by both 'vendor_a' and 'vendor_b'; block one of them"
    )
    with pytest.warns(PluginWarning, match=message):
        assert ps.adapters["ldap"] is Heavy  # the plugin loaded first keeps it
    assert "sql" in ps.adapters and ps.plugins["vendor_b"].status == "failed"
    assert "b_hook" not in ps.hooks  # failed: skipped by the registries filled later
    with pytest.warns(PluginWarning, match=message):
        build(one, two, lazy=False)  # eager: the same, at build time
    assert build(one, two, blocked=["vendor_a"]).adapters["ldap"] is object


def test_concurrent_first_uses_call_each_hook_once() -> None:
    calls: list[int] = []
    gate = threading.Event()

    def register_adapters(registry: Any) -> None:
        calls.append(1)
        gate.wait(0.2)  # hold the fill while other threads arrive
        registry["slow"] = Heavy

    ps = build(module("slow_plugin", register_adapters=register_adapters))
    barrier = threading.Barrier(6)
    seen: list[Any] = []

    def worker() -> None:
        barrier.wait()
        seen.append(ps.adapters.get("slow"))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert calls == [1] and seen == [Heavy] * 6


def test_a_hook_looking_up_its_own_registry_sees_what_is_there() -> None:
    def register_adapters(registry: Any) -> None:
        registry["mine"] = Heavy
        assert "mine" in registry  # its own staged registrations
        assert "sql" in dc_api_x.get_plugins().adapters  # the set being filled: no deadlock

    ps = enable_plugins(entry_points=False, plugins=[module("curious", register_adapters=register_adapters)])
    assert ps.adapters["mine"] is Heavy and ps.plugins["curious"].status == "loaded"


@pytest.mark.parametrize(
    ("name", "dist"),
    [
        ("oracle_db", "dc-api-x-oracle-db"),
        ("ldap", "dc-api-x-ldap"),
        ("redis", "dc-api-x-redis"),
        ("keycloak", "dc-api-x-keycloak"),
    ],
)
def test_unknown_official_plugin_names_say_which_distribution_provides_them(name: str, dist: str) -> None:
    ps = build()
    with pytest.raises(UnknownPluginError) as ei:
        ps.adapters.get(name)
    known = ", ".join(ps.adapters.names())
    assert str(ei.value) == (
        f"unknown adapter {name!r}; known: {known}; {name!r} is provided by the official plugin "
        f"{dist} (pip install {dist})"
    )
    assert ei.value.hint and ei.value.known == ps.adapters.names()


def test_unknown_other_names_list_the_known_ones_only() -> None:
    ps = build()
    with pytest.raises(UnknownPluginError) as ei:
        ps.adapters.get("oracle")
    assert str(ei.value) == f"unknown adapter 'oracle'; known: {', '.join(ps.adapters.names())}"


def test_a_head_start_function_is_had_without_importing_its_entry() -> None:
    """``register(name, "module:Attr", ahead="module:func")``: ``ahead(name)`` imports the function's
    module only (``dcapix run`` gives an endpoint's raw options to it before importing the adapter);
    ``None`` for an unknown name, an entry without one, or one that cannot be imported."""
    from dc_api_x.exceptions import PluginError
    from dc_api_x.registry import Registry

    reg = Registry("adapter")
    reg.register("lazy", "no_such_module_small20k2:Adapter", ahead="dc_api_x.registry:clash_message")
    reg.register("plain", "no_such_module_small20k2:Other")
    reg.register("gone", "no_such_module_small20k2:X", ahead="no_such_module_small20k2:ahead")
    from dc_api_x.registry import clash_message

    assert reg.ahead("lazy") is clash_message
    assert "no_such_module_small20k2" not in sys.modules  # the entry itself was not imported
    assert reg.ahead("plain") is None and reg.ahead("gone") is None and reg.ahead("unknown") is None
    with pytest.raises(PluginError, match="ahead= must be"):
        reg.register("bad", "x:Y", ahead="not a target")


def test_the_sql_adapters_head_start_is_preopen_open_ahead() -> None:
    from dc_api_x.adapters.sql import preopen

    plugins = build(entry_points=False)
    assert plugins.adapters.ahead("sql") is preopen.open_ahead
    assert plugins.adapters.ahead("parquet") is None
