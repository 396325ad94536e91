"""The plugin manager and the registries, with in-process plugins (modules, classes, instances)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import types
import warnings
from typing import Any

import pytest

import dc_api_x
from dc_api_x import PluginError, PluginWarning, Registry, UnknownPluginError, enable_plugins, hookimpl
from dc_api_x import plugins as plugins_mod
from dc_api_x.ext.adapters import ProtocolAdapter

pytestmark = pytest.mark.usefixtures("clean_env")


class DummyAdapter(ProtocolAdapter):
    name = "dummy"

    def discover(self) -> list[dc_api_x.StreamSpec]:
        return [dc_api_x.StreamSpec("s")]


def make_module(name: str, **funcs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    for k, v in funcs.items():
        setattr(mod, k, v)
    return mod


def build(*plugins: Any, **kwargs: Any) -> dc_api_x.PluginSet:
    """A plugin set with the built-ins and ``plugins``, not made current, no entry points, every
    registry filled at once (``lazy=False``: tests/core/test_lazy_registries.py covers lazy sets)."""
    kwargs.setdefault("entry_points", False)
    kwargs.setdefault("make_current", False)
    kwargs.setdefault("lazy", False)
    return enable_plugins(plugins=plugins, **kwargs)


def record_warnings() -> Any:
    cm = warnings.catch_warnings(record=True)
    return cm


# ----------------------------------------------------------------------------------- registry
class TestRegistry:
    def test_register_class_object_string_and_factory(self) -> None:
        reg = Registry("adapter")
        calls: list[int] = []

        def factory() -> type[DummyAdapter]:
            calls.append(1)
            return DummyAdapter

        reg.register("cls", DummyAdapter)
        reg.register(DummyAdapter)  # uses DummyAdapter.name
        reg.register("lazy", "dc_api_x.ext.adapters:ProtocolAdapter")
        reg.register("dotted", "json.dumps")
        reg.register("fac", factory=factory)
        assert reg.names() == ["cls", "dotted", "dummy", "fac", "lazy"]
        assert reg.get("cls") is DummyAdapter and reg.get("dummy") is DummyAdapter
        assert reg.get("lazy") is ProtocolAdapter
        import json

        assert reg.get("dotted") is json.dumps
        assert calls == []  # factories run on first get only
        assert reg.get("fac") is DummyAdapter and reg.get("fac") is DummyAdapter
        assert calls == [1]
        assert "lazy" in reg and "nope" not in reg and len(reg) == 5 and list(reg) == reg.names()

    def test_factory_runs_once_under_concurrency(self) -> None:
        reg = Registry("transform")
        calls: list[int] = []
        barrier = threading.Barrier(8)

        def factory() -> object:
            calls.append(1)
            return object()

        reg.register("x", factory=factory)
        results: list[object] = []

        def worker() -> None:
            barrier.wait()
            results.append(reg.get("x"))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(calls) == 1 and len({id(r) for r in results}) == 1

    def test_bad_registrations(self) -> None:
        reg = Registry("adapter", plugin="p1")
        with pytest.raises(PluginError, match="has no 'name'"):
            reg.register(ProtocolAdapter)  # name is ""
        with pytest.raises(PluginError, match="non-empty"):
            reg.register("", DummyAdapter)
        reg.register("a", DummyAdapter)
        with pytest.raises(PluginError, match=r"adapter 'a' is provided by both 'p1' and 'p1'"):
            reg.register("a", DummyAdapter)

    def test_unknown_name_lists_known_ones(self) -> None:
        reg = Registry("paginator")
        reg.register("offset", object)
        reg.register("cursor", object)
        with pytest.raises(UnknownPluginError) as ei:
            reg.get("ofset")
        assert str(ei.value) == "unknown paginator 'ofset'; known: cursor, offset"
        assert isinstance(ei.value, KeyError) and ei.value.known == ["cursor", "offset"]
        with pytest.raises(UnknownPluginError, match=r"known: \(none\)"):
            Registry("auth provider").get("bearer")

    def test_unresolvable_lazy_entry_names_plugin_and_entry(self) -> None:
        reg = Registry("adapter", plugin="acme")
        reg.register("ghost", "no_such_module_dcapix:Thing")
        reg.register("typo", "dc_api_x.ext.adapters:ProtocolAdaptr")
        with pytest.raises(
            PluginError,
            match=r"adapter 'ghost' from plugin 'acme' could not be loaded: "
            r"ModuleNotFoundError",
        ):
            reg.get("ghost")
        with pytest.raises(PluginError, match=r"'typo' .* AttributeError"):
            reg.get("typo")

    def test_malformed_lazy_strings_are_refused_at_registration(self) -> None:
        reg = Registry("adapter")
        for bad in ("json", "mod:", ":Attr", ""):
            with pytest.raises(PluginError, match=r"must be 'package\.module:Attr'"):
                reg.register("x", bad)
        assert len(reg) == 0

    def test_add_cleanup_needs_a_plugin_set(self) -> None:
        with pytest.raises(PluginError, match="not attached"):
            Registry("adapter").add_cleanup(lambda: None)


# ---------------------------------------------------------------------------- plugin styles
def _plain_module() -> types.ModuleType:
    def register_adapters(registry: Registry) -> None:
        registry.register("plain_adapter", DummyAdapter)

    def register_pagination_handlers(registry: Registry) -> None:
        registry.register("plain_pages", "dc_api_x.ext.pagination:Paginator")

    return make_module(
        "plain_plugin",
        register_adapters=register_adapters,
        register_pagination_handlers=register_pagination_handlers,
    )


def _marked_module() -> types.ModuleType:
    @hookimpl
    def register_adapters(registry: Registry) -> None:
        registry.register("marked_adapter", DummyAdapter)

    return make_module("marked_plugin", register_adapters=register_adapters)


class PlainMethods:
    def register_transform_providers(self, registry: Registry) -> None:
        registry.register("instance_plain", factory=lambda: "T")


class MarkedMethods:
    @hookimpl
    def register_auth_providers(self, registry: Registry) -> None:
        registry.register("instance_marked", object)

    @hookimpl(tryfirst=True)
    def register_hooks(self, registry: Registry) -> None:
        registry.register("instance_hook", object)


@pytest.mark.parametrize(
    ("plugin", "pname", "expected"),
    [
        (_plain_module(), "plain_plugin", {"adapters": ["plain_adapter"], "paginators": ["plain_pages"]}),
        (_marked_module(), "marked_plugin", {"adapters": ["marked_adapter"]}),
        (PlainMethods(), "PlainMethods", {"transforms": ["instance_plain"]}),
        (
            MarkedMethods(),
            "MarkedMethods",
            {"auth_providers": ["instance_marked"], "hooks": ["instance_hook"]},
        ),
    ],
    ids=["module-plain-functions", "module-hookimpl", "instance-plain-methods", "instance-hookimpl"],
)
def test_plugin_styles(plugin: Any, pname: str, expected: dict[str, list[str]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        ps = build(plugin)
    info = ps.plugins[pname]
    assert (info.status, info.reason, info.registers) == ("loaded", "", expected)
    for attr, names in expected.items():
        for n in names:
            assert ps.registries[attr].plugin_of(n) == pname
            assert ps.registries[attr].get(n) is not None
    assert ps.pm.get_plugin(pname) is plugin


def test_two_instances_of_one_class_get_distinct_names() -> None:
    class Reg:
        def __init__(self, name: str) -> None:
            self.n = name

        def register_adapters(self, registry: Registry) -> None:
            registry.register(self.n, DummyAdapter)

    ps = build(Reg("a1"), Reg("a2"))
    assert ps.plugins["Reg"].registers == {"adapters": ["a1"]}
    assert ps.plugins["Reg#2"].registers == {"adapters": ["a2"]}


def test_plain_register_function_matching_no_hook_is_warned_about() -> None:
    """A plain ``register_*`` function that is no hook (a typo) gets a PluginWarning naming it and
    the known hooks; it is not called, and the plugin still loads."""
    mod = make_module("helpers", register_adapter=lambda registry: 1 / 0, register_things=lambda: 1 / 0)
    mod.helper = lambda: None  # other names are nobody's business
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ps = build(mod)
    msgs = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    hooks = ", ".join(sorted(plugins_mod.KINDS))
    assert msgs == [
        f"dc-api-x plugin 'helpers': register_adapter() matches no hook and is ignored; hooks: {hooks}",
        f"dc-api-x plugin 'helpers': register_things() matches no hook and is ignored; hooks: {hooks}",
    ]
    assert caught[0].filename == __file__
    assert ps.plugins["helpers"].status == "loaded" and ps.plugins["helpers"].registers == {}


def test_stray_register_methods_of_object_plugins_are_warned_about_too() -> None:
    from dc_api_x.logs import register_secret

    class Obj:
        def register_adaptors(self, registry: Registry) -> None:
            pass

        @staticmethod
        def register_transfroms(registry: Registry) -> None:
            pass

    mod = make_module("uses_core_helpers", register_secret=register_secret)  # dc_api_x's own: fine
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build(Obj(), mod)
    msgs = sorted(str(w.message).split(" matches")[0] for w in caught)
    assert msgs == [
        "dc-api-x plugin 'Obj': register_adaptors()",
        "dc-api-x plugin 'Obj': register_transfroms()",
    ]


def test_register_transforms_is_an_alias_of_register_transform_providers() -> None:
    """The guide names the transform hook both ways; plain and @hookimpl, both fill ``transforms``."""

    class Marked:
        @hookimpl
        def register_transforms(self, registry: Registry) -> None:
            registry["marked_alias"] = object

    plain = make_module(
        "plain_alias", register_transforms=lambda registry: registry.__setitem__("plain_alias", 1)
    )
    both = make_module(
        "both_names",
        register_transforms=lambda registry: registry.__setitem__("via_alias", 2),
        register_transform_providers=lambda registry: registry.__setitem__("via_provider", 3),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        ps = build(Marked(), plain, both)
    assert ps.transforms["marked_alias"] is object and ps.transforms["plain_alias"] == 1
    assert (ps.transforms["via_alias"], ps.transforms["via_provider"]) == (2, 3)
    assert ps.plugins["both_names"].registers == {"transforms": ["via_alias", "via_provider"]}
    assert ps.transforms.plugin_of("marked_alias") == "Marked"


def test_marked_typo_hook_fails_only_that_plugin() -> None:
    class Typo:
        @hookimpl
        def register_adaptrs(self, registry: Registry) -> None:  # typo
            registry.register("never", DummyAdapter)

    with pytest.warns(PluginWarning, match=r"plugin 'Typo' is invalid: unknown hook\(s\) register_adaptrs"):
        ps = build(Typo(), _plain_module())
    assert ps.plugins["Typo"].status == "failed"
    assert "register_adapters" in ps.plugins["Typo"].reason  # the known hooks are listed
    assert ps.plugins["plain_plugin"].status == "loaded" and "plain_adapter" in ps.adapters
    assert ps.pm.get_plugin("Typo") is None


def test_hook_with_wrong_argument_name_is_invalid() -> None:
    mod = make_module("wrongarg", register_adapters=lambda reg: None)
    with pytest.warns(PluginWarning, match="'wrongarg' is invalid"):
        ps = build(mod, _marked_module())
    assert ps.plugins["wrongarg"].status == "failed" and "reg" in ps.plugins["wrongarg"].reason
    assert "marked_adapter" in ps.adapters


def test_raising_hook_is_isolated_and_rolled_back() -> None:
    def register_adapters(registry: Registry) -> None:
        registry.register("half", DummyAdapter)
        raise RuntimeError("kaboom")

    def register_pagination_handlers(registry: Registry) -> None:
        registry.register("half_pages", object)

    bad = make_module(
        "bad_plugin",
        register_adapters=register_adapters,
        register_pagination_handlers=register_pagination_handlers,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ps = build(_plain_module(), bad, _marked_module())
    msgs = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert msgs == ["dc-api-x plugin 'bad_plugin' failed in register_adapters: RuntimeError: kaboom"]
    assert caught[0].filename == __file__  # attributed to the caller, not to dc_api_x internals
    info = ps.plugins["bad_plugin"]
    assert info.status == "failed" and info.reason == "RuntimeError in register_adapters: kaboom"
    assert "half" not in ps.adapters and "half_pages" not in ps.paginators and info.registers == {}
    assert "plain_adapter" in ps.adapters and "marked_adapter" in ps.adapters
    assert ps.pm.get_plugin("bad_plugin") is None


def test_duplicate_name_fails_the_later_plugin_naming_both_unless_one_is_blocked(
    clean_env: pytest.MonkeyPatch,
) -> None:
    one = make_module(
        "vendor_one", register_adapters=lambda registry: registry.register("ldap", DummyAdapter)
    )
    two = make_module("vendor_two", register_adapters=lambda registry: registry.__setitem__("ldap", object))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ps = build(one, two)
    assert [str(w.message) for w in caught] == [
        "dc-api-x plugin 'vendor_two' failed: adapter 'ldap' is provided by both 'vendor_one' and "
        "'vendor_two'; block one of them (DC_API_X_BLOCKED_PLUGINS=NAME or enable_plugins(blocked=[...]))"
    ]
    assert caught[0].filename == __file__
    info = ps.plugins["vendor_two"]
    assert info.status == "failed" and info.reason.startswith("adapter 'ldap' is provided by both")
    assert ps.adapters.get("ldap") is DummyAdapter and ps.pm.get_plugin("vendor_two") is None
    ps = build(one, two, blocked=["vendor_one"])
    assert ps.adapters.get("ldap") is object and ps.plugins["vendor_one"].status == "blocked"
    clean_env.setenv("DC_API_X_BLOCKED_PLUGINS", " vendor_two , other")
    ps = build(one, two)
    assert ps.adapters.get("ldap") is DummyAdapter and ps.plugins["vendor_two"].status == "blocked"


def test_a_name_clash_with_a_builtin_fails_the_third_party_plugin() -> None:
    base = build()
    taken = [(attr, name) for attr, reg in base.registries.items() for name in reg.names()]
    attr, name = taken[0]
    hook = next(h for h, (a, _l) in plugins_mod.KINDS.items() if a == attr)
    owner = base.registries[attr].plugin_of(name)
    intruder = make_module("intruder", **{hook: lambda registry: registry.register(name, object)})
    with pytest.warns(
        PluginWarning, match=rf"'intruder' failed: .*{name!r} is provided by both {owner!r} and 'intruder'"
    ):
        ps = build(intruder)
    assert ps.registries[attr].get(name) is base.registries[attr].get(name)  # the built-in keeps it
    ps = build(intruder, blocked=[owner])
    assert ps.registries[attr].get(name) is object


def test_blocking_a_builtin_by_module_name() -> None:
    name = plugins_mod.DEFAULT_PLUGINS[0]
    ps = build(blocked=[name])
    assert ps.plugins[name].status == "blocked" and ps.plugins[name].registers == {}
    assert all(ps.plugins[n].status == "loaded" for n in plugins_mod.DEFAULT_PLUGINS[1:])


def test_every_builtin_loads_and_every_registered_entry_resolves() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        ps = build()
    assert [n for n in ps.plugins] == list(plugins_mod.DEFAULT_PLUGINS)
    for info in ps.plugins.values():
        assert (info.status, info.builtin, info.distribution) == ("loaded", True, "dc-api-x"), info
    for attr, reg in ps.registries.items():
        for name in reg.names():
            obj = reg.get(name)  # lazy strings of the built-ins must import
            assert obj is not None, (attr, name)


def test_builtin_hooks_table_lists_exactly_the_hooks_of_each_builtin_module() -> None:
    """``BUILTIN_HOOKS`` (what the stand-in of a built-in not imported yet offers pluggy) must name
    every hook its module implements, each a plain function (a stand-in cannot copy hookimpl
    options such as ``tryfirst``)."""
    import importlib

    from dc_api_x import hookspecs

    pm = hookspecs.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    assert set(plugins_mod.BUILTIN_HOOKS) <= set(plugins_mod.DEFAULT_PLUGINS)
    for modname, hooks in plugins_mod.BUILTIN_HOOKS.items():
        mod = importlib.import_module(modname)
        found = {n: pm.parse_hookimpl_opts(mod, n) for n in dir(mod)}
        found = {n: o for n, o in found.items() if o is not None}
        assert sorted(found) == sorted(hooks), modname
        for name, opts in found.items():
            assert not any(opts.get(k) for k in ("wrapper", "hookwrapper", "tryfirst", "trylast")), name


def test_builtins_are_imported_when_their_registry_is_first_used() -> None:
    """A fresh interpreter: building the plugin set imports no built-in module; looking up an
    adapter imports the adapter plugins only; the entries are those the modules register."""
    code = textwrap.dedent("""
        import sys
        from dc_api_x import plugins
        ps = plugins.enable_plugins(entry_points=False)
        assert not [m for m in plugins.BUILTIN_HOOKS if m in sys.modules], "imported at enable"
        ps.adapters.get("sql")
        loaded = [m for m in plugins.BUILTIN_HOOKS if m in sys.modules]
        adapters = ["dc_api_x.adapters.http", "dc_api_x.adapters.sql", "dc_api_x.adapters.files"]
        assert loaded == adapters, loaded
        assert "dc_api_x.pagination" not in sys.modules and "dc_api_x.auth" not in sys.modules
        import dc_api_x.pagination as pg
        assert ps.paginators.get("offset") is pg.OffsetPaginator
        assert ps.plugins["dc_api_x.pagination"].registers["paginators"] == ps.paginators.names()
        assert repr(ps.pm.get_plugin("dc_api_x.auth")).startswith("<built-in plugin dc_api_x.auth")
        # a built-in imported before the set is built is registered as the module itself
        again = plugins.enable_plugins(entry_points=False, make_current=False)
        assert again.pm.get_plugin("dc_api_x.pagination") is pg
        assert again.paginators.names() == ps.paginators.names()
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


# -------------------------------------------------------------------------- version ranges
def _versioned(spec: Any) -> types.ModuleType:
    mod = make_module("versioned", register_adapters=lambda registry: registry.register("v", DummyAdapter))
    mod.DC_API_X_REQUIRES = spec
    return mod


def test_incompatible_plugin_gives_one_warning_and_is_skipped() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ps = build(_versioned(">=99"), _plain_module())
    msgs = [str(w.message) for w in caught]
    found = plugins_mod.core_version()
    assert len(msgs) == 1
    assert "'versioned'" in msgs[0] and "requires dc-api-x >=99" in msgs[0] and f"found {found}" in msgs[0]
    info = ps.plugins["versioned"]
    assert info.status == "incompatible" and info.reason == f"requires dc-api-x >=99, found {found}"
    assert "v" not in ps.adapters and "plain_adapter" in ps.adapters


def test_incompatible_plugin_loads_when_allowed(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.warns(PluginWarning, match="loading it anyway") as rec:
        ps = build(_versioned("<0.0.1"), allow_incompatible=True)
    assert len(rec) == 1
    assert ps.plugins["versioned"].status == "loaded" and "v" in ps.adapters
    clean_env.setenv("DC_API_X_ALLOW_INCOMPATIBLE", "1")
    with pytest.warns(PluginWarning, match="loading it anyway"):
        ps = build(_versioned("<0.0.1"))
    assert "v" in ps.adapters
    clean_env.setenv("DC_API_X_ALLOW_INCOMPATIBLE", "0")
    with pytest.warns(PluginWarning, match="skipped"):
        ps = build(_versioned("<0.0.1"))
    assert "v" not in ps.adapters


def test_compatible_and_invalid_version_specifiers() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        ps = build(_versioned(f">={plugins_mod.core_version()},<99"))
    assert ps.plugins["versioned"].status == "loaded"
    with pytest.warns(PluginWarning, match="invalid DC_API_X_REQUIRES 'banana'"):
        ps = build(_versioned("banana"), _plain_module())
    assert ps.plugins["versioned"].status == "failed" and "plain_adapter" in ps.adapters
    with pytest.warns(PluginWarning, match="expected a version specifier string"):
        build(_versioned(3))


def test_version_check_of_a_class_plugin_reads_its_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "DC_API_X_REQUIRES", ">=99", raising=False)
    with pytest.warns(PluginWarning, match="'PlainMethods'.*requires dc-api-x >=99"):
        ps = build(PlainMethods())
    assert ps.plugins["PlainMethods"].status == "incompatible"


# ------------------------------------------------------------------------ lifecycle / public API
def test_cleanups_run_at_close_last_first_and_once() -> None:
    order: list[str] = []

    def register_adapters(registry: Registry) -> None:
        registry.add_cleanup(lambda: order.append("first"))
        registry.add_cleanup(lambda: 1 / 0)  # a failing cleanup does not stop the others
        registry.add_cleanup(lambda: order.append("last"))

    with build(make_module("cleaner", register_adapters=register_adapters)) as ps:
        assert order == []
    assert order == ["last", "first"] and ps.closed
    ps.close()
    assert order == ["last", "first"]
    ps.add_cleanup(lambda: order.append("late"))  # after close: runs at once
    assert order == ["last", "first", "late"]


def test_making_a_new_set_current_closes_the_old_one() -> None:
    closed: list[int] = []
    mod = make_module("c", register_adapters=lambda registry: registry.add_cleanup(lambda: closed.append(1)))
    first = enable_plugins(entry_points=False, plugins=[mod], lazy=False)
    assert dc_api_x.get_plugins() is first and closed == []
    second = enable_plugins(entry_points=False)
    assert dc_api_x.get_plugins() is second and first.closed and closed == [1]


def test_cleanup_runs_at_interpreter_exit(tmp_path: Any) -> None:
    marker = tmp_path / "closed.txt"
    code = textwrap.dedent(f"""
        import types, dc_api_x
        mod = types.ModuleType("exit_plugin")
        def register_adapters(registry):
            registry.add_cleanup(lambda: open({str(marker)!r}, "a").write("+current"))
        mod.register_adapters = register_adapters
        other = types.ModuleType("other_plugin")
        def register_hooks(registry):
            registry.add_cleanup(lambda: open({str(marker)!r}, "a").write("+side"))
        other.register_hooks = register_hooks
        dc_api_x.enable_plugins(entry_points=False, plugins=[other], make_current=False, lazy=False)
        dc_api_x.enable_plugins(entry_points=False, plugins=[mod], lazy=False)
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert sorted(marker.read_text().split("+")) == ["", "current", "side"]


def test_module_level_getters_use_the_current_set_and_fresh_managers() -> None:
    mod = make_module(
        "getters",
        **{
            hook: (lambda label: lambda registry: registry.register(f"my_{label}", object))(attr)
            for hook, (attr, _l) in plugins_mod.KINDS.items()
            if hook != "register_transforms"  # the alias of register_transform_providers
        },
    )
    ps = enable_plugins(entry_points=False, plugins=[mod])
    for attr in (
        "adapters",
        "auth_providers",
        "hooks",
        "schema_providers",
        "transforms",
        "paginators",
        "config_providers",
    ):
        singular = {
            "adapters": "adapter",
            "auth_providers": "auth_provider",
            "hooks": "hook",
            "schema_providers": "schema_provider",
            "transforms": "transform",
            "paginators": "paginator",
            "config_providers": "config_provider",
        }[attr]
        getter = getattr(dc_api_x, f"get_{singular}")
        lister = getattr(dc_api_x, f"list_{attr}")
        assert getter(f"my_{attr}") is object
        assert lister() == ps.registries[attr].names() and f"my_{attr}" in lister()
        with pytest.raises(UnknownPluginError, match=rf"known: .*my_{attr}"):
            getter("no_such_thing")
    assert dc_api_x.get_plugin_manager() is ps.pm and ps.pm.get_plugin("getters") is mod
    other = enable_plugins(entry_points=False)
    assert other.pm is not ps.pm and other.pm.get_plugin("getters") is None
    assert dc_api_x.get_plugin_manager() is other.pm
    with pytest.raises(UnknownPluginError):
        dc_api_x.get_adapter("my_adapters")


def test_get_plugins_builds_defaults_lazily() -> None:
    assert plugins_mod._current is None
    ps = dc_api_x.get_plugins()
    assert plugins_mod._current is ps and dc_api_x.get_plugins() is ps


def test_unknown_adapter_paginator_and_auth_names_list_the_known_ones(plugins: dc_api_x.PluginSet) -> None:
    with pytest.raises(UnknownPluginError) as ei:
        dc_api_x.create_adapter({"adapter": "no_such_adapter", "url": "x"})
    known = plugins.adapters.names()
    assert str(ei.value) == f"unknown adapter 'no_such_adapter'; known: {', '.join(known) or '(none)'}"
    with pytest.raises(UnknownPluginError) as ei:
        dc_api_x.create_plugin("paginators", {"type": "no_such_pager", "limit": 3})
    assert str(ei.value).startswith("unknown paginator 'no_such_pager'; known: ")
    assert ei.value.known == plugins.paginators.names()
    with pytest.raises(UnknownPluginError) as ei:
        dc_api_x.create_plugin("auth_providers", "no_such_auth")
    assert str(ei.value).startswith("unknown auth provider 'no_such_auth'; known: ")
    assert ei.value.known == plugins.auth_providers.names()


def test_create_plugin_with_an_unknown_registry_lists_the_registries(plugins: dc_api_x.PluginSet) -> None:
    with pytest.raises(
        PluginError,
        match=r"no plugin registry 'paginator'; registries: adapters, "
        r"auth_providers, config_providers, hooks, paginators",
    ):
        dc_api_x.create_plugin("paginator", {"type": "offset"})


def test_create_adapter_and_adapters_are_context_managers() -> None:
    closed: list[str] = []

    class Tracked(DummyAdapter):
        name = "tracked"

        def close(self) -> None:
            closed.append(self.name)
            super().close()

    ps = build(make_module("trk", register_adapters=lambda registry: registry.register(Tracked)))
    with dc_api_x.create_adapter({"adapter": "tracked"}, plugins=ps) as adapter:
        assert isinstance(adapter, Tracked) and [s.name for s in adapter.discover()] == ["s"]
    assert closed == ["tracked"] and adapter._closed
    adapter.close()  # safe twice
    with pytest.raises(dc_api_x.ConfigError, match=r"adapter 'tracked': option 'bogus': unknown option"):
        dc_api_x.create_adapter({"adapter": "tracked", "bogus": 1}, plugins=ps)
    with pytest.raises(dc_api_x.ConfigError, match="'adapter'"):
        dc_api_x.create_adapter({"url": "x"}, plugins=ps)


def test_import_has_no_side_effects() -> None:
    code = textwrap.dedent("""
        import sys, dc_api_x
        from dc_api_x import plugins
        assert plugins._current is None, "a plugin set was built at import"
        assert not plugins._with_cleanups, "a plugin set exists after import"
        assert not [m for m in sys.modules if m.startswith("dcapix_")], "a third-party plugin was imported"
        loaded = [m for m in plugins.DEFAULT_PLUGINS if m in sys.modules]
        assert not loaded, f"built-in plugins imported at import time: {loaded}"
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_a_builtin_that_fails_to_import_is_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        plugins_mod, "DEFAULT_PLUGINS", (*plugins_mod.DEFAULT_PLUGINS, "dc_api_x.no_such_builtin_plugin")
    )
    with pytest.warns(
        PluginWarning,
        match=r"'dc_api_x.no_such_builtin_plugin' failed to import: "
        r"ModuleNotFoundError",
    ):
        ps = build(_plain_module())
    info = ps.plugins["dc_api_x.no_such_builtin_plugin"]
    assert info.status == "failed" and info.reason.startswith("import failed: ModuleNotFoundError")
    assert "plain_adapter" in ps.adapters
    assert all(ps.plugins[m].status == "loaded" for m in plugins_mod.DEFAULT_PLUGINS[:-1])


def test_registry_mapping_form_registers_like_register():
    """The guide's form: ``registry[name] = Entry`` inside a register_* hook."""
    import types

    from dc_api_x import enable_plugins
    from dc_api_x.ext.adapters import ProtocolAdapter

    class Guide(ProtocolAdapter):
        name = "guide_mapping"

    mod = types.ModuleType("guide_mapping_plugin")

    def register_adapters(registry):
        registry["guide_mapping"] = Guide
        registry["guide_lazy"] = "dc_api_x.ext.adapters:ProtocolAdapter"
        assert "guide_mapping" in registry and registry["guide_mapping"] is Guide

    mod.register_adapters = register_adapters  # type: ignore[attr-defined]
    ps = enable_plugins(entry_points=False, plugins=[mod])
    try:
        assert ps.adapters["guide_mapping"] is Guide
        assert ps.adapters["guide_lazy"] is ProtocolAdapter
        assert dict(ps.adapters.items())["guide_mapping"] is Guide
        assert sorted(ps.adapters.keys()) == ps.adapters.names()
    finally:
        ps.close()
