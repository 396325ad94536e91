"""Config providers and ``load_settings``: defaults < file < env < a plugin's provider, with real files."""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from dc_api_x import ConfigError, enable_plugins, list_config_providers
from dc_api_x.config import OptionsModel, load_settings
from dc_api_x.config_providers import EnvProvider, FileProvider
from dc_api_x.ext.config import ConfigProvider


class Db(OptionsModel):
    host: str = "localhost"
    port: int = 5432


class Settings(OptionsModel):
    name: str = "model-default"
    timeout: float = 30.0
    db: Db = Db()
    tags: list[str] = []
    extra: Any = None
    note: str = ""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.upper().startswith(("DCAPIX_", "MYAPP_")):
            monkeypatch.delenv(var)


@pytest.fixture
def ps() -> Any:
    s = enable_plugins(entry_points=False)
    yield s
    s.close()


def write(path: Path, data: dict[str, Any]) -> str:
    if path.suffix == ".json":
        path.write_text(json.dumps(data))
    elif path.suffix == ".toml":
        lines = []
        tables = {k: v for k, v in data.items() if isinstance(v, dict)}
        for k, v in data.items():
            if not isinstance(v, dict):
                lines.append(f"{k} = {json.dumps(v)}")
        for t, vals in tables.items():
            lines.append(f"[{t}]")
            lines.extend(f"{k} = {json.dumps(v)}" for k, v in vals.items())
        path.write_text("\n".join(lines) + "\n")
    else:
        import yaml

        path.write_text(yaml.safe_dump(data))
    return str(path)


def test_builtin_providers_registered(ps: Any) -> None:
    assert set(list_config_providers()) >= {"defaults", "file", "env"}
    prio = {n: ps.config_providers.get(n).priority for n in ("defaults", "file", "env")}
    assert prio == {"defaults": 0, "file": 10, "env": 20}


def test_precedence_defaults_file_env(ps: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "c.yaml", {"name": "from-file", "timeout": 2, "db": {"host": "file-host"}})
    defaults = {"name": "from-defaults", "timeout": 1, "note": "d"}
    monkeypatch.setenv("DCAPIX_NAME", "from-env")
    monkeypatch.setenv("DCAPIX_DB__PORT", "6543")

    s = load_settings(Settings, file=cfg, defaults=defaults)
    assert s.name == "from-env"  # env > file > defaults
    assert s.timeout == 2  # file > defaults
    assert s.note == "d"  # only in defaults
    assert s.db == Db(host="file-host", port=6543)  # nested keys merged across layers

    monkeypatch.delenv("DCAPIX_NAME")
    assert load_settings(Settings, file=cfg, defaults=defaults).name == "from-file"
    assert load_settings(Settings, defaults=defaults).name == "from-defaults"
    s = load_settings(Settings)
    assert (s.name, s.timeout, s.db.host, s.db.port) == ("model-default", 30.0, "localhost", 6543)


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".toml", ".json"])
def test_file_formats(ps: Any, tmp_path: Path, suffix: str) -> None:
    data = {"name": "n", "timeout": 1.5, "tags": ["a", "b"], "db": {"host": "h", "port": 1}}
    s = load_settings(Settings, file=write(tmp_path / f"c{suffix}", data))
    assert s.model_dump(include={"name", "timeout", "tags", "db"}) == data


def test_missing_file_names_it(ps: Any, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as ei:
        load_settings(Settings, file=str(missing))
    assert str(missing) in str(ei.value) and "does not exist" in str(ei.value)
    assert "config provider 'file'" in str(ei.value)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("bad.yaml", "name: [unclosed\n", "not valid YAML"),
        ("bad.toml", "name = \n", "not valid TOML"),
        ("bad.json", "{'name': 1}", "not valid JSON"),
        ("list.yaml", "- a\n- b\n", "top level must be a mapping"),
        ("conf.ini", "[x]\n", "unknown config file type '.ini'"),
    ],
)
def test_bad_files(ps: Any, tmp_path: Path, name: str, text: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as ei:
        load_settings(Settings, file=str(path))
    assert str(path) in str(ei.value)
    assert "\n" not in str(ei.value)


def test_empty_file_is_no_settings(ps: Any, tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_settings(Settings, file=str(path)).name == "model-default"


def test_unknown_key_and_bad_value_name_the_field(
    ps: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(tmp_path / "c.yaml", {"name": "x", "tiemout": 3})
    with pytest.raises(ConfigError) as ei:
        load_settings(Settings, file=cfg)
    assert "'tiemout'" in str(ei.value) and "unknown option" in str(ei.value)
    monkeypatch.setenv("DCAPIX_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="'timeout'"):
        load_settings(Settings)


def test_env_json_values_and_prefix(ps: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCAPIX_TAGS", '["x", "y"]')
    monkeypatch.setenv("DCAPIX_EXTRA", '{"k": [1, 2]}')
    monkeypatch.setenv("DCAPIX_NOTE", '{"looks": "like json"}')  # a str field keeps the text
    monkeypatch.setenv("DCAPIX_UNRELATED_THING", "ignored")  # not a field: ignored, not an error
    monkeypatch.setenv("dcapix_timeout", "4")  # case-insensitive
    s = load_settings(Settings)
    assert s.tags == ["x", "y"] and s.extra == {"k": [1, 2]} and s.note == '{"looks": "like json"}'
    assert s.timeout == 4.0
    monkeypatch.setenv("MYAPP_NAME", "mine")
    assert load_settings(Settings, env_prefix="MYAPP_").name == "mine"


def test_env_provider_without_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCAPIX_A", "1")
    monkeypatch.setenv("DCAPIX_B__C", '{"d": true}')
    monkeypatch.setenv("DCAPIX_B__E", "[1]")
    assert EnvProvider(env_prefix="DCAPIX_").load() == {"a": "1", "b": {"c": {"d": True}, "e": [1]}}


def test_file_provider_direct(tmp_path: Path) -> None:
    assert FileProvider().load() == {}
    path = write(tmp_path / "x.json", {"a": {"b": 1}})
    assert FileProvider(file=path).load() == {"a": {"b": 1}}


def test_only_some_providers(ps: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "c.yaml", {"name": "from-file"})
    monkeypatch.setenv("DCAPIX_NAME", "from-env")
    assert load_settings(Settings, file=cfg, providers=["defaults", "file"]).name == "from-file"


def test_defaults_mapping_is_not_modified(ps: Any, tmp_path: Path) -> None:
    defaults = {"db": {"host": "d"}}
    cfg = write(tmp_path / "c.yaml", {"db": {"host": "f", "port": 1}})
    load_settings(Settings, file=cfg, defaults=defaults)
    assert defaults == {"db": {"host": "d"}}


# ------------------------------------------------------------------------ third-party providers
class VaultProvider(ConfigProvider):
    """A third-party provider above the environment (priority 30)."""

    name = "vault"
    priority = 30

    def load(self) -> dict[str, Any]:
        assert self.model is Settings and self.env_prefix == "DCAPIX_"
        return {"name": "from-vault", "db": {"host": "vault-host"}}


class LowProvider(ConfigProvider):
    """A third-party provider between defaults and the file (priority 5)."""

    name = "low"
    priority = 5

    def load(self) -> dict[str, Any]:
        return {"name": "from-low", "timeout": 7, "note": "low"}


def make_plugin(**providers: type[ConfigProvider]) -> types.ModuleType:
    mod = types.ModuleType("my_config_plugin")

    def register_config_providers(registry: Any) -> None:
        for name, cls in providers.items():
            registry.register(name, cls)

    mod.register_config_providers = register_config_providers  # type: ignore[attr-defined]
    return mod


def test_third_party_provider_with_higher_priority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ps = enable_plugins(entry_points=False, plugins=[make_plugin(vault=VaultProvider, low=LowProvider)])
    try:
        cfg = write(tmp_path / "c.toml", {"name": "from-file", "timeout": 2})
        monkeypatch.setenv("DCAPIX_NAME", "from-env")
        monkeypatch.setenv("DCAPIX_DB__PORT", "1")
        s = load_settings(Settings, file=cfg, defaults={"note": "d", "timeout": 1})
        assert s.name == "from-vault"  # 30 > env 20
        assert s.db == Db(host="vault-host", port=1)
        assert s.timeout == 2  # file 10 > low 5
        assert s.note == "low"  # low 5 > defaults 0
        assert ps.config_providers.plugin_of("vault") == "my_config_plugin"
    finally:
        ps.close()


class BrokenProvider(ConfigProvider):
    name = "broken"
    priority = 15

    def load(self) -> dict[str, Any]:
        raise RuntimeError("vault unreachable")


class NotAMappingProvider(ConfigProvider):
    name = "listy"
    priority = 15

    def load(self) -> Any:
        return ["a"]


@pytest.mark.parametrize(
    ("cls", "match"),
    [
        (BrokenProvider, "config provider 'broken' failed: RuntimeError: vault unreachable"),
        (NotAMappingProvider, "config provider 'listy': load\\(\\) returned list"),
    ],
)
def test_failing_provider_is_named(cls: type[ConfigProvider], match: str) -> None:
    ps = enable_plugins(entry_points=False, plugins=[make_plugin(**{cls.name: cls})])
    try:
        with pytest.raises(ConfigError, match=match):
            load_settings(Settings)
    finally:
        ps.close()


def test_provider_base_contract() -> None:
    p = ConfigProvider(file="x.yaml", env_prefix="P_", defaults={"a": 1}, model=BaseModel)
    assert (p.file, p.env_prefix, p.defaults, p.model, p.priority) == (
        "x.yaml",
        "P_",
        {"a": 1},
        BaseModel,
        50,
    )
    with pytest.raises(NotImplementedError):
        p.load()
