"""``target-dcapix --about``: every setting documented, adapter options generated, secrets marked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.singer_target.support import ROOT


def _about(fmt: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.singer_target.run_target", "--about", "--format", fmt],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_about_json_lists_target_settings_and_adapter_options_with_secrets():
    about = json.loads(_about("json"))
    assert about["name"] == "target-dcapix" and about["version"] != "[could not be detected]"
    expected = {"about", "activate-version", "batch", "validate-records", "hard-delete"}
    assert expected <= set(about["capabilities"])
    settings = about["settings"]
    props = settings["properties"]
    assert settings["required"] == ["adapter"]
    for name in (
        "adapter",
        "load_method",
        "batch_size_rows",
        "batch_size_bytes",
        "validate_records",
        "hard_delete",
        "max_parallelism",
        "stream_maps",
        "flattening_enabled",
        "add_record_metadata",
    ):
        assert name in props, name
    assert props["validate_records"]["default"] is True
    assert props["batch_size_rows"]["default"] == 100_000
    assert props["batch_size_bytes"]["default"] == 16 * 1024 * 1024
    assert set(props["load_method"]["enum"]) == {"append", "append-only", "upsert", "overwrite"}
    # the test adapter's options, generated from its pydantic model; its secret is marked
    assert props["token"]["secret"] is True and props["token"]["writeOnly"] is True
    assert "fail_on_write" in props and "path" in props
    # the built-in writing adapters are documented too (sql's url is a secret: it holds a password)
    assert props["url"]["secret"] is True
    # adapter options carry no JSON Schema default (the SDK would inject it into every adapter's config)
    assert all("default" not in props[k] for k in ("path", "row_group_size", "fail_on_write") if k in props)


def test_about_markdown_has_a_settings_table():
    text = _about("markdown")
    assert text.startswith("# `target-dcapix`")
    for name in ("| adapter |", "| load_method |", "| validate_records |", "| token |"):
        assert name in text, name
