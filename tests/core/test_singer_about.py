"""``tap-dcapix --about`` from the cache (:mod:`dc_api_x.singer_about`): the SDK's answer, per environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dc_api_x.singer_about import about_cache_key, about_format


@pytest.mark.parametrize(
    ("argv", "fmt"),
    [
        (["--about"], None),
        (["--about", "--format", "json"], "json"),
        (["--format", "markdown", "--about"], "markdown"),
        (["--about", "--format=JSON"], "json"),
        (["--about", "--format", "yaml"], False),  # the SDK's command names the choices
        (["--about", "--config", "c.json"], False),
        (["--config", "c.json"], False),
        ([], False),
    ],
)
def test_about_format(argv: list[str], fmt: object) -> None:
    assert about_format(argv) == fmt


def _about(tmp_path: Path, *args: str, **env: str) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    full.update(XDG_CACHE_HOME=str(tmp_path / "cache"), **env)
    res = subprocess.run(
        [sys.executable, "-m", "tap_dcapix", "--about", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_cached_answer_is_the_sdk_answer(tmp_path: Path) -> None:
    uncached = _about(tmp_path, "--format", "json", DC_API_X_ABOUT_CACHE="0")
    assert not (tmp_path / "cache").exists()
    first = _about(tmp_path, "--format", "json")
    files = sorted((tmp_path / "cache" / "dc-api-x").iterdir())
    assert [f.name.startswith("about-tap-dcapix-json-") for f in files] == [True]
    assert first == uncached and '"name": "tap-dcapix"' in first
    # the next call prints the file (not a new answer)
    files[0].write_text("from the cache\n")
    assert _about(tmp_path, "--format", "json") == "from the cache\n"


def test_key_changes_with_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = about_cache_key("tap-dcapix", "json", ("tap_dcapix",))
    assert about_cache_key("tap-dcapix", "json", ("tap_dcapix",)) == key
    assert about_cache_key("tap-dcapix", None, ("tap_dcapix",)) != key
    monkeypatch.setenv("DC_API_X_ENTRY_POINT_GROUPS", "more_plugins")
    assert about_cache_key("tap-dcapix", "json", ("tap_dcapix",)) != key
    monkeypatch.delenv("DC_API_X_ENTRY_POINT_GROUPS")
    # a distribution installed on sys.path
    (tmp_path / "newdist-1.0.dist-info").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    assert about_cache_key("tap-dcapix", "json", ("tap_dcapix",)) != key


def test_stale_answers_are_removed(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "dc-api-x"
    cache.mkdir(parents=True)
    (cache / "about-tap-dcapix-text-0000.txt").write_text("old")
    (cache / ".about-tap-dcapix-text-0000.txt.x.tmp").write_text("partial")
    (cache / "about-tap-dcapix-json-0000.txt").write_text("other format")
    text = _about(tmp_path)
    names = sorted(p.name for p in cache.iterdir())
    assert "about-tap-dcapix-json-0000.txt" in names and len(names) == 2
    assert "old" not in text and "tap-dcapix" in text
