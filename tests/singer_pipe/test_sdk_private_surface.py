"""The fence around singer-sdk's private surface.

tap-dcapix and target-dcapix replace singer-sdk's per-record paths by batch-wise ones, which means
overriding or reading a few private singer-sdk names. They are listed here, each with why; a test
fails *naming* the one a new singer-sdk release renamed or removed (or whose override no longer
has the SDK's parameters), another fails when the code starts to use a private name not listed,
and ``pyproject.toml`` bounds singer-sdk below the first release not tested (checked here too).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
from importlib import import_module
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = sorted([*(ROOT / "taps").rglob("*.py"), *(ROOT / "targets").rglob("*.py")])

#: (singer-sdk class, our subclass) -> {private name: why we need it}
PRIVATE: dict[tuple[str, str], dict[str, str]] = {
    ("singer_sdk.tap_base:Tap", "tap_dcapix.tap:TapDcApiX"): {
        "_validate_config": "overridden: the adapter's own model validates (singer-sdk's validator "
        "would copy other adapters' option defaults from the --about union schema into the config)",
    },
    ("singer_sdk.streams.core:Stream", "tap_dcapix.streams:AdapterStream"): {
        "_sync_records": "overridden: RECORD lines written batch-wise, a STATE after each adapter batch",
        "_stream_version": "the ACTIVATE_VERSION version the SDK chose, carried by every RECORD line",
        "_write_state_message": "a STATE right after the RECORD lines it covers",
        "_finalize_state": "the stream's state finalised at the end of its sync, as the SDK does",
        "_check_max_record_limit": "the dry-run record limit (--test) raises as in the SDK",
        "_sync_batches": "overridden: batch_config parquet writes each adapter batch's Arrow table to "
        "Parquet BATCH files, a STATE after each BATCH message (tap_dcapix.batchfiles)",
    },
    ("singer_sdk.target_base:Target", "target_dcapix.target:TargetDcApiX"): {
        "_process_schema_message": "overridden: checks the message, drains the old sink on a schema change",
        "_process_record_message": "overridden: the per-record hot path (no SDK conformance per record)",
        "_process_state_message": "overridden: a STATE is held until the records before it are committed",
        "_process_activate_version_message": "overridden: checks the message",
        "_process_batch_message": "overridden: checks the message before the SDK reads the files",
        "_write_state_message": "overridden: STATE printed only when every record before it is committed",
        "_handle_termination": "overridden: SIGTERM aborts like an error instead of draining in the handler",
        "_handle_max_record_age": "overridden: drains by batch_wait_limit_seconds (SDK: 5 minutes)",
        "_last_full_drain_at": "when every sink was last drained (the age of the oldest buffered record)",
        "_reset_max_record_age": "restart that clock when there was nothing to drain",
        "_sinks_active": "whether a sink holds records not yet written (before a STATE is printed)",
        "_sinks_to_clear": "the same for the sinks of a previous schema version",
    },
    ("singer_sdk.sinks.core:Sink", "target_dcapix.sinks:DcApiXSink"): {
        "_validate_and_parse": "overridden: records are validated by a compiled validator, not conformed",
        "_singer_validate_message": "overridden: key properties are checked by the sink itself",
        "_pending_batch": "the SDK's buffer, unused (the sink has its own): emptied at a drain",
        "_context_draining": "the draining context the SDK hands to process_batch",
        "_total_records_read": "BATCH files: their records counted without a second 'written' tally",
        "_warned_missing_fields": "one warning per field the schema does not declare, as the SDK does",
    },
}


def _load(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)  # type: ignore[no-any-return]


def _sdk_source(cls: type) -> str:
    return "\n".join(inspect.getsource(c) for c in cls.__mro__ if c.__module__.startswith("singer_sdk"))


def _exists(cls: type, name: str) -> bool:
    return hasattr(cls, name) or re.search(rf"self\.{re.escape(name)}\b", _sdk_source(cls)) is not None


FENCED = [(sdk, ours, name) for (sdk, ours), names in PRIVATE.items() for name in names]


@pytest.mark.parametrize(
    ("sdk", "ours", "name"), FENCED, ids=[f"{s.split(':')[1]}.{n}" for s, _, n in FENCED]
)
def test_every_private_name_still_exists_in_singer_sdk(sdk: str, ours: str, name: str) -> None:
    cls = _load(sdk)
    assert _exists(cls, name), (
        f"singer-sdk {version('singer-sdk')} has no {sdk}.{name} any more; {ours} relies on it: "
        f"{PRIVATE[(sdk, ours)][name]}"
    )
    mine = _load(ours).__dict__.get(name)
    if callable(mine):  # an override: the SDK's parameters must still be ours
        theirs = inspect.signature(getattr(cls, name)).parameters
        assert list(inspect.signature(mine).parameters) == list(theirs), (
            f"singer-sdk {version('singer-sdk')} changed the parameters of {sdk}.{name}: "
            f"{list(theirs)}; {ours} overrides it"
        )


def _private_names(path: Path) -> set[str]:
    """Private names a file defines as methods or reads/writes as attributes."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.FunctionDef):
            out.add(node.name)
    return {n for n in out if n.startswith("_") and not n.startswith("__")}


def test_the_code_uses_no_private_singer_sdk_name_that_is_not_fenced() -> None:
    sdk_classes = {_load(sdk) for sdk, _ in PRIVATE}
    sdk_source = "\n".join(_sdk_source(c) for c in sdk_classes)
    fenced = {n for names in PRIVATE.values() for n in names}
    unlisted = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in CODE
        for name in _private_names(path)
        if name not in fenced and re.search(rf"(def |self\.){re.escape(name)}\b", sdk_source)
    )
    assert not unlisted, "private singer-sdk names used but not fenced in PRIVATE:\n" + "\n".join(unlisted)


def test_nothing_is_imported_from_a_private_singer_sdk_module_or_name() -> None:
    bad = []
    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("singer_sdk"):
                parts = [*(node.module or "").split("."), *(a.name for a in node.names)]
                if any(p.startswith("_") for p in parts):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module} import ...")
    assert not bad, "\n".join(bad)


def test_the_config_callback_result_has_what_the_tap_and_target_read(tmp_path: Path) -> None:
    """``invoke(config=…)`` receives what ``cb_config`` returns (a private class): ``.config`` and
    ``.parse_env``."""
    from tap_dcapix.tap import TapDcApiX

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"adapter": "sql", "url": "sqlite:///x.db"}))
    got = TapDcApiX.cb_config(None, None, (str(cfg), "ENV"))  # type: ignore[arg-type]
    assert got.config == {"adapter": "sql", "url": "sqlite:///x.db"} and got.parse_env is True


def test_singer_sdk_has_a_tested_upper_bound() -> None:
    """pyproject bounds singer-sdk below the next minor release, and the suite runs on a version
    inside the bound (the one the private names above were checked against)."""
    from packaging.requirements import Requirement

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [
        Requirement(r)
        for extra in project["optional-dependencies"].values()
        for r in extra
        if Requirement(r).name == "singer-sdk"
    ]
    assert reqs, "pyproject.toml does not require singer-sdk"
    for req in reqs:
        assert any(s.operator in ("<", "<=", "~=", "==") for s in req.specifier), f"{req}: no upper bound"
        assert req.specifier.contains(version("singer-sdk")), f"installed singer-sdk is outside {req}"
