"""``dc_api_x.__all__``: sorted, complete, every name importable."""

from __future__ import annotations
import __future__

import importlib
import types

import dc_api_x
from dc_api_x import plugins as plugins_mod

#: What the plugin-system issue promises at the package level.
REQUIRED = {
    "enable_plugins",
    "get_plugin_manager",
    "get_plugins",
    "hookimpl",
    "hookspec",
    "create_adapter",
    "create_plugin",
    "PluginError",
    "UnknownPluginError",
    "PluginWarning",
    "PluginInfo",
    "PluginSet",
    "Registry",
    *(
        f"{verb}_{kind}"
        for verb, kind in [
            ("get", "adapter"),
            ("list", "adapters"),
            ("get", "auth_provider"),
            ("list", "auth_providers"),
            ("get", "hook"),
            ("list", "hooks"),
            ("get", "schema_provider"),
            ("list", "schema_providers"),
            ("get", "transform"),
            ("list", "transforms"),
            ("get", "paginator"),
            ("list", "paginators"),
            ("get", "config_provider"),
            ("list", "config_providers"),
        ]
    ),
}


def test_all_is_sorted_and_unique() -> None:
    assert dc_api_x.__all__ == sorted(dc_api_x.__all__)
    assert len(set(dc_api_x.__all__)) == len(dc_api_x.__all__)


def test_every_name_is_importable() -> None:
    for name in dc_api_x.__all__:
        obj = getattr(dc_api_x, name)
        assert obj is not None, name
        exec(f"from dc_api_x import {name}", {})  # the form users write


def test_all_is_complete() -> None:
    assert set(dc_api_x.__all__) >= REQUIRED, REQUIRED - set(dc_api_x.__all__)
    public = {
        name
        for name, obj in vars(dc_api_x).items()
        if not name.startswith("_")
        and not isinstance(obj, types.ModuleType)
        and not isinstance(obj, __future__._Feature)
        and name != "TYPE_CHECKING"
    }
    assert public <= set(dc_api_x.__all__), public - set(dc_api_x.__all__)
    # the registry getters are the plugin module's own
    for kind in ("adapter", "paginator", "auth_provider", "transform"):
        assert getattr(dc_api_x, f"get_{kind}") is getattr(plugins_mod, f"get_{kind}")


def test_submodule_alls_are_importable_and_sorted() -> None:
    for modname in ("dc_api_x.plugins", "dc_api_x.hookspecs", "dc_api_x.logs", "dc_api_x.exceptions"):
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            assert hasattr(mod, name), f"{modname}.{name}"
    assert dc_api_x.hookimpl is importlib.import_module("dc_api_x.hookspecs").hookimpl
    assert dc_api_x.__version__ == plugins_mod.core_version()


def test_names_moved_out_of_plugins_and_config_still_import_from_there() -> None:
    """Registry lives in dc_api_x.registry, the factories in dc_api_x.factories (issue 10): plugins
    and applications written against the old paths keep working."""
    from dc_api_x import config, factories, registry
    from dc_api_x.config import load_settings
    from dc_api_x.plugins import Registry, create_adapter, create_plugin

    assert Registry is registry.Registry is dc_api_x.Registry
    assert create_adapter is factories.create_adapter is dc_api_x.create_adapter
    assert create_plugin is factories.create_plugin is dc_api_x.create_plugin
    assert load_settings is factories.load_settings
    for mod in (registry, factories):
        assert mod.__all__ == sorted(mod.__all__) and all(hasattr(mod, n) for n in mod.__all__)
    assert not hasattr(config, "no_such_name")
