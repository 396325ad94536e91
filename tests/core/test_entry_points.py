"""Real installed third-party plugin distributions (tests/plugins_dist), found through entry points."""

from __future__ import annotations

import sys
import warnings
from importlib import metadata
from typing import Any

import pytest

import dc_api_x
from dc_api_x import PluginWarning, enable_plugins
from dc_api_x import plugins as plugins_mod
from dc_api_x.ext.adapters import ProtocolAdapter, Response
from dc_api_x.ext.pagination import PageRequest, Paginator

from .conftest import TEST_GROUP

pytestmark = pytest.mark.usefixtures("plugin_dists", "clean_env")

EXAMPLE = "dcapix-example-plugin"


def build(**kwargs: Any) -> dc_api_x.PluginSet:
    kwargs.setdefault("make_current", False)
    kwargs.setdefault("lazy", False)
    return enable_plugins(**kwargs)


def test_example_distribution_is_discovered_with_distribution_and_version() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)  # the default group holds only good plugins
        ps = build()
    info = ps.plugins["example"]
    assert (info.status, info.distribution, info.version, info.group, info.builtin) == (
        "loaded",
        EXAMPLE,
        metadata.version(EXAMPLE),
        "dc_api_x.plugins",
        False,
    )
    assert info.module == "dcapix_example_plugin"
    assert info.registers == {
        "adapters": ["example"],
        "transforms": ["example_upper"],
        "paginators": ["example_pages"],
    }
    assert ps.adapters.plugin_of("example") == "example"


def test_entry_point_named_like_a_builtin_short_name_still_loads() -> None:
    ps = build()
    http_builtin = "dc_api_x.adapters.http"
    assert ps.plugins[http_builtin].status == "loaded" and ps.plugins[http_builtin].builtin
    info = ps.plugins["http"]  # the third-party entry point called "http"
    assert (info.status, info.distribution, info.builtin) == ("loaded", EXAMPLE, False)
    assert info.registers == {"hooks": ["example_trace"]}
    from dc_api_x.ext.hooks import RequestHook

    hook_cls = ps.hooks.get("example_trace")
    assert issubclass(hook_cls, RequestHook) and hook_cls.__module__ == "dcapix_example_plugin.trace"


def test_entry_points_false_sees_no_third_party_plugin() -> None:
    ps = build(entry_points=False)
    assert set(ps.plugins) == set(plugins_mod.DEFAULT_PLUGINS)
    assert "example" not in ps.adapters


def test_example_adapter_reads_resumes_writes_and_closes() -> None:
    ps = enable_plugins()
    with dc_api_x.create_adapter({"adapter": "example", "rows": 5, "batch_size": 2}) as src:
        assert isinstance(src, ProtocolAdapter) and type(src).__module__ == "dcapix_example_plugin.adapter"
        stream = src.get_stream("numbers")
        batches = list(src.read(stream))
        assert [b.bookmark for b in batches] == [{"n": 2}, {"n": 4}, {"n": 5}]
        assert [r["n"] for b in batches for r in b.records] == [1, 2, 3, 4, 5]
        resumed = list(src.read(stream, state=batches[0].bookmark))
        assert [r["n"] for b in resumed for r in b.records] == [3, 4, 5]
        with dc_api_x.create_adapter({"adapter": "example"}, plugins=ps) as dst:
            dst.start_write(stream, load_method="append")
            for b in batches:
                assert dst.write(stream, b).rows == len(b)
            dst.finish_write(stream)
            assert dst.written["numbers"] == [r for b in batches for r in b.records]
    assert src._closed and dst._closed
    with pytest.raises(dc_api_x.ConfigError, match=r"adapter 'example': option 'rows'"):
        dc_api_x.create_adapter({"adapter": "example", "rows": -1})


def test_plugin_cleanup_closes_adapters_left_open() -> None:
    ps = build()
    adapter = dc_api_x.create_adapter({"adapter": "example"}, plugins=ps)
    assert not adapter._closed
    ps.close()
    assert adapter._closed


def test_example_paginator_and_transform() -> None:
    enable_plugins()
    pager_cls = dc_api_x.get_paginator("example_pages")
    assert issubclass(pager_cls, Paginator)
    pager = dc_api_x.create_plugin("paginators", {"type": "example_pages", "param": "skip"})
    pages = [[1, 2], [3, 4], []]
    seen: list[dict[str, Any]] = []
    while not pager.finished:
        req = PageRequest(url="/items")
        pager.prepare(req)
        seen.append(dict(req.params))
        records = pages[len(seen) - 1]
        pager.advance(Response(status_code=200, url="http://127.0.0.1/items", data=records), records)
    assert seen == [{}, {"skip": 2}, {"skip": 4}]
    upper = dc_api_x.create_plugin("transforms", {"type": "example_upper", "fields": ["label"]})
    out = upper.apply(dc_api_x.Batch.from_records([{"n": 1, "label": "abc"}], bookmark={"n": 1}))
    assert out.records == [{"n": 1, "label": "ABC"}] and out.bookmark == {"n": 1}


@pytest.mark.parametrize(
    "name", ["example", "dcapix-example-plugin", "dcapix_example_plugin", "DCAPIX-Example-Plugin"]
)
def test_blocking_by_entry_point_module_or_distribution_name(name: str) -> None:
    ps = build(blocked=[name])
    assert ps.plugins["example"].status == "blocked" and "example" not in ps.adapters
    if name != "example" and name != "dcapix_example_plugin":  # a distribution name blocks all its plugins
        assert ps.plugins["http"].status == "blocked"


def test_blocking_through_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DC_API_X_BLOCKED_PLUGINS", "http,example")
    ps = build()
    assert ps.plugins["http"].status == ps.plugins["example"].status == "blocked"
    assert ps.plugins["dc_api_x.adapters.http"].status == "loaded"


def test_failed_incompatible_and_broken_plugins_are_isolated() -> None:
    sys.modules.pop("dcapix_incompatible_plugin", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ps = build(entry_point_groups=[TEST_GROUP])
    found = plugins_mod.core_version()
    by_plugin: dict[str, list[str]] = {}
    for w in caught:
        assert issubclass(w.category, PluginWarning) and w.filename == __file__
        name = str(w.message).split("'")[1]
        by_plugin.setdefault(name, []).append(str(w.message))
    assert sorted(by_plugin) == [
        "broken_hook",
        "broken_import",
        "future_core",
        "incompatible",
        "missing_attr",
    ]
    assert all(len(v) == 1 for v in by_plugin.values()), by_plugin  # ONE warning per plugin
    inc = by_plugin["incompatible"][0]
    assert "dcapix-incompatible-plugin" in inc and "requires dc-api-x <0.0.1" in inc
    assert f"found {found}" in inc

    status = {n: (i.status, i.reason) for n, i in ps.plugins.items() if i.group == TEST_GROUP}
    assert status == {
        "incompatible": ("incompatible", f"requires dc-api-x <0.0.1, found {found}"),
        "broken_import": (
            "failed",
            "import failed: RuntimeError: dcapix_broken_plugin.bad_import exploded at import",
        ),
        "broken_hook": (
            "failed",
            "ValueError in register_adapters: broken_hook refuses to register adapters",
        ),
        "missing_attr": (
            "failed",
            "import failed: AttributeError: module 'dcapix_broken_plugin.bad_hook' "
            "has no attribute 'does_not_exist'",
        ),
        "future_core": ("incompatible", f"requires dc-api-x >=99, found {found}"),
    }
    # the incompatible distribution was skipped before import; nothing of the broken ones survived
    assert "dcapix_incompatible_plugin" not in sys.modules
    for name in ("broken_partial", "incompatible_adapter", "future_adapter"):
        assert name not in ps.adapters
    assert "broken_pages" not in ps.paginators
    # ... and every other plugin still loaded and works
    assert ps.plugins["example"].status == "loaded" and ps.plugins["http"].status == "loaded"
    assert all(ps.plugins[m].status == "loaded" for m in plugins_mod.DEFAULT_PLUGINS)
    with dc_api_x.create_adapter({"adapter": "example", "rows": 1}, plugins=ps) as a:
        assert [r["n"] for b in a.read(a.get_stream("numbers")) for r in b.records] == [1]


def test_test_group_through_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DC_API_X_ENTRY_POINT_GROUPS", TEST_GROUP)
    with pytest.warns(PluginWarning):
        ps = build()
    assert ps.plugins["broken_import"].status == "failed"


def test_incompatible_plugins_load_when_allowed(clean_env: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ps = build(entry_point_groups=[TEST_GROUP], allow_incompatible=True)
    anyway = [str(w.message) for w in caught if "loading it anyway" in str(w.message)]
    assert len(anyway) == 2 and any("'incompatible'" in m for m in anyway)
    assert ps.plugins["incompatible"].status == "loaded" and "incompatible_adapter" in ps.adapters
    assert ps.plugins["future_core"].status == "loaded" and "future_adapter" in ps.adapters
    assert ps.plugins["broken_import"].status == "failed"  # opting in does not revive broken plugins
    clean_env.setenv("DC_API_X_ALLOW_INCOMPATIBLE", "1")
    with pytest.warns(PluginWarning):
        ps = build(entry_point_groups=[TEST_GROUP])
    assert "incompatible_adapter" in ps.adapters


def test_same_entry_point_name_from_two_distributions_loads_both(monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.entry_points(group="dc_api_x.plugins")
    (example,) = [ep for ep in real if ep.name == "example"]
    clash = metadata.EntryPoint(
        name="example", value="dcapix_example_plugin.http_extras:plugin", group="dc_api_x.plugins"
    )

    def fake_entry_points(*, group: str) -> list[Any]:
        return [example, clash] if group == "dc_api_x.plugins" else []

    monkeypatch.setattr(plugins_mod.metadata, "entry_points", fake_entry_points)
    ps = build()
    assert ps.plugins["example"].status == "loaded" and ps.plugins["example"].distribution == EXAMPLE
    (other,) = [i for n, i in ps.plugins.items() if n.startswith("example") and n != "example"]
    assert other.status == "loaded" and other.registers == {"hooks": ["example_trace"]}


def test_two_real_plugins_registering_one_name_fail_the_later_one() -> None:
    import types

    twin = types.ModuleType("twin")
    twin.register_adapters = lambda registry: registry.register("example", ProtocolAdapter)  # type: ignore[attr-defined]
    with pytest.warns(
        PluginWarning, match=r"'twin' failed: adapter 'example' is provided by both 'example' and 'twin'"
    ):
        ps = build(plugins=[twin])
    assert ps.plugins["twin"].status == "failed" and ps.plugins["example"].status == "loaded"
    assert ps.adapters.get("example").__module__ == "dcapix_example_plugin.adapter"
    ps = build(plugins=[twin], blocked=["example"])
    assert ps.adapters.get("example") is ProtocolAdapter


def test_a_plugin_declared_in_two_groups_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    (example,) = [ep for ep in metadata.entry_points(group="dc_api_x.plugins") if ep.name == "example"]

    def fake_entry_points(*, group: str) -> list[Any]:
        return [example] if group in ("dc_api_x.plugins", "extra.group") else []

    monkeypatch.setattr(plugins_mod.metadata, "entry_points", fake_entry_points)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        ps = build(entry_point_groups=["extra.group"])
    assert [n for n in ps.plugins if not ps.plugins[n].builtin] == ["example"]
    assert ps.plugins["example"].status == "loaded"


def test_an_allowlist_imports_only_the_allowed_entry_points(clean_env: pytest.MonkeyPatch) -> None:
    sys.modules.pop("dcapix_broken_plugin.bad_import", None)
    clean_env.setenv("DC_API_X_ALLOWED_PLUGINS", "dcapix-example-plugin")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ps = build(entry_point_groups=[TEST_GROUP])
    assert not caught  # the broken plugins were not even imported
    assert "dcapix_broken_plugin.bad_import" not in sys.modules
    assert ps.plugins["example"].status == "loaded" and "example" in ps.adapters
    others = {
        n: i for n, i in ps.plugins.items() if i.distribution not in ("dcapix-example-plugin", "dc-api-x")
    }
    assert others and all(i.status == "blocked" for i in others.values())
    assert ps.plugins["broken_import"].reason == "not in the allowlist (DC_API_X_ALLOWED_PLUGINS)"
    assert all(ps.plugins[m].status == "loaded" for m in plugins_mod.DEFAULT_PLUGINS)  # built-ins stay


def test_an_allowlist_argument_by_entry_point_name_and_an_empty_one() -> None:
    ps = build(allowed=["example"])
    assert ps.plugins["example"].status == "loaded" and ps.plugins["http"].status == "blocked"
    ps = build(allowed=[])
    assert all(i.status == "blocked" for i in ps.plugins.values() if not i.builtin)
    assert "example" not in ps.adapters and "http" in ps.adapters  # the built-in http adapter
