"""The docs agree with the code: one ``docs/hooks.md`` heading per hookspec, written as its signature."""

from __future__ import annotations

import re
from pathlib import Path

from dc_api_x import enable_plugins

DOCS = Path(__file__).resolve().parents[2] / "docs"
HEADING = re.compile(r"^## (\w+)\(([^)]*)\)\s*$", re.M)


def hookspecs() -> dict[str, list[str]]:
    pm = enable_plugins(entry_points=False, builtins=False, make_current=False).pm
    specs = {}
    for name, caller in vars(pm.hook).items():
        if not name.startswith("_") and caller.has_spec():
            specs[name] = list(caller.spec.argnames)
    return specs


def test_hooks_md_has_one_heading_per_hookspec_and_vice_versa() -> None:
    text = (DOCS / "hooks.md").read_text()
    headings = HEADING.findall(text)
    documented = {name: [a.strip() for a in args.split(",") if a.strip()] for name, args in headings}
    assert len(documented) == len(headings), "a hook is documented twice"
    specs = hookspecs()
    assert specs, "no hookspecs found"
    assert sorted(documented) == sorted(specs), (
        f"missing: {sorted(set(specs) - set(documented))}, stale: {sorted(set(documented) - set(specs))}"
    )
    for name, args in specs.items():
        assert documented[name] == args, f"## {name}({', '.join(args)}) is the signature"


def test_every_hook_section_has_params_when_and_example() -> None:
    text = (DOCS / "hooks.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert sections
    for sec in sections:
        title = sec.splitlines()[0]
        for part in ("**Parameters**", "**When it is called**", "**Example**", "```python"):
            assert part in sec, f"{title}: no {part}"
        name = title.split("(")[0]
        assert f"def {name}(registry)" in sec, f"{title}: the example does not implement the hook"


def test_the_docs_name_only_hooks_that_exist() -> None:
    specs = hookspecs()
    for doc in ("hooks.md", "writing_plugins.md", "architecture.md", "adapters.md"):
        text = (DOCS / doc).read_text()
        for name in set(re.findall(r"\bregister_[a-z_]+\b", text)) - {"register_secret"}:
            assert name in specs, f"{doc} mentions {name}, which is not a hook"


def test_the_adapter_example_in_adapters_md_runs() -> None:
    """The complete adapter of docs/adapters.md is real code: run it (it asserts its own results)."""
    import sys
    import types

    text = (DOCS / "adapters.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "adapters.md should have exactly one runnable python block"
    mod = types.ModuleType("dcapix_docs_adapter_example")
    sys.modules[mod.__name__] = mod
    try:
        exec(compile(blocks[0], str(DOCS / "adapters.md"), "exec"), mod.__dict__)
    finally:
        del sys.modules[mod.__name__]
    assert mod.dst.tables["numbers"][-1] == {"n": 5, "label": "row 5"}
    assert mod.src._closed and mod.dst._closed


def test_every_hook_example_in_hooks_md_is_a_working_plugin() -> None:
    import types

    from dc_api_x import plugins as plugins_mod

    text = (DOCS / "hooks.md").read_text()
    for sec in re.split(r"^## ", text, flags=re.M)[1:]:
        hook = sec.split("(")[0]
        (code,) = re.findall(r"```python\n(.*?)```", sec, flags=re.S)
        mod = types.ModuleType(f"docs_example_{hook}")
        exec(compile(code, f"docs/hooks.md ({hook})", "exec"), mod.__dict__)
        ps = enable_plugins(entry_points=False, builtins=False, plugins=[mod], make_current=False, lazy=False)
        info = ps.plugins[mod.__name__]
        attr = plugins_mod.KINDS[hook][0]
        assert info.status == "loaded", (hook, info.reason)
        assert list(info.registers) == [attr] and info.registers[attr], hook
        ps.close()  # cleanups of the examples must be safe to run
