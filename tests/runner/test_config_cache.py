"""The parse cache of YAML pipeline files (``$XDG_CACHE_HOME/dc-api-x/config``, issue 15): used only
for the identical text of the same file, exactly what PyYAML returns, never for values JSON cannot
carry exactly."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
import yaml

from dc_api_x.runner.config import CONFIG_CACHE_ENV, load_config, read_config_file

CACHE = "cache"

TEXT = """\
# a comment
state_backend: sqlite
pipelines:
  p:
    source: {adapter: sql, url: "sqlite:///shop.db", streams: [a, b]}
    destination:
      adapter: parquet
      path: out/
      ratio: 0.1
      big: 12345678901234567890
      flags: [yes, no, on, ~, 0x1F, 1_000, "007", 1e3]
    checkpoint_rows: 500
  q: &same
    source: {adapter: sql, url: "sqlite:///x.db"}
    destination: {adapter: parquet, path: o2/}
  r: *same
"""


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CONFIG_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / CACHE))


def _cached(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / CACHE / "dc-api-x" / "config").glob("*"))


def _no_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import yaml`` fail: a result now can only come from the cache."""
    monkeypatch.setitem(sys.modules, "yaml", None)


def test_one_cache_file_per_pipeline_file_and_nothing_next_to_it(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "dcapix.yml").write_text(TEXT)
        assert read_config_file(tmp_path / d / "dcapix.yml") == yaml.safe_load(TEXT)
        read_config_file(tmp_path / d / "dcapix.yml")
    assert len(_cached(tmp_path)) == 2
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["dcapix.yml"]


def test_second_read_comes_from_the_cache_and_equals_pyyaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dcapix.yml"
    path.write_text(TEXT)
    expected = yaml.safe_load(TEXT)
    assert read_config_file(path) == expected
    [cache] = _cached(tmp_path)
    assert cache.stat().st_mode & 0o777 == 0o600  # the text may hold credentials, like the file
    _no_yaml(monkeypatch)
    again = read_config_file(path)
    assert again == expected
    assert json.dumps(again) == json.dumps(expected)  # same key order, same int/float/bool types
    dest = again["pipelines"]["p"]["destination"]
    assert dest["big"] == 12345678901234567890 and dest["ratio"] == 0.1
    assert dest["flags"] == [True, False, True, None, 31, 1000, "007", "1e3"]  # YAML 1.1 as PyYAML
    assert load_config(path).pipelines["p"].checkpoint_rows == 500


def test_a_changed_file_is_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dcapix.yml"
    path.write_text(TEXT)
    read_config_file(path)
    changed = TEXT.replace("checkpoint_rows: 500", "checkpoint_rows: 501")
    path.write_text(changed)  # same size: only the text tells
    assert read_config_file(path)["pipelines"]["p"]["checkpoint_rows"] == 501
    _no_yaml(monkeypatch)
    assert read_config_file(path) == yaml.safe_load(changed)  # (the module object kept by the test)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("when: 2026-12-02\n", {"when": dt.date(2026, 12, 2)}),
        ("1: one\n", {1: "one"}),
        ("x: .inf\n", {"x": float("inf")}),
        ("x: !!binary aGk=\n", {"x": b"hi"}),
    ],
)
def test_values_json_cannot_carry_are_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, value: object
) -> None:
    path = tmp_path / "f.yml"
    path.write_text(text)
    assert read_config_file(path) == value
    assert _cached(tmp_path) == []
    assert read_config_file(path) == value


def test_a_broken_cache_is_ignored_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "dcapix.yml"
    path.write_text(TEXT)
    read_config_file(path)
    [cache] = _cached(tmp_path)
    entry = json.loads(cache.read_text())
    cache.write_text('{"format": 1, "text": ')  # torn write
    assert read_config_file(path) == yaml.safe_load(TEXT)
    assert json.loads(cache.read_text()) == entry
    for key, value in (("format", 99), ("path", str(tmp_path / "other.yml"))):
        cache.write_text(json.dumps({**entry, key: value, "data": {"other": 1}}))
        assert read_config_file(path) == yaml.safe_load(TEXT)


def test_switched_off_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_CACHE_ENV, "0")
    path = tmp_path / "dcapix.yml"
    path.write_text(TEXT)
    assert read_config_file(path) == yaml.safe_load(TEXT)
    assert _cached(tmp_path) == []


def test_invalid_yaml_is_still_one_error_and_not_cached(tmp_path: Path) -> None:
    from dc_api_x.exceptions import ConfigError

    path = tmp_path / "dcapix.yml"
    path.write_text("pipelines: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid yml: while parsing"):
        read_config_file(path)
    assert _cached(tmp_path) == []


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-dir"))
    path = tmp_path / "dcapix.yml"
    path.write_text(TEXT)
    assert read_config_file(path) == read_config_file(path) == yaml.safe_load(TEXT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dcapix.yml", "not-a-dir"]
