"""dc_api_x.singer_settings: settings schemas from pydantic options (refs inlined, secrets marked,
union over adapters) and the Meltano settings list."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from dc_api_x import enable_plugins
from dc_api_x.config import OptionsModel
from dc_api_x.ext.adapters import ProtocolAdapter
from dc_api_x.singer_settings import (
    adapter_settings_schema,
    inline_refs,
    is_secret_name,
    meltano_settings,
    model_settings_schema,
    secret_settings,
)


class Creds(OptionsModel):
    user: str
    password: SecretStr


class Node(OptionsModel):
    name: str
    children: list[Node] = []


class AOpts(OptionsModel):
    url: str = Field(description="where")
    creds: Creds | None = None
    api_token: str | None = None
    primary_key: str = "id"
    replication_key: str | None = None
    tree: Node | None = None
    size: int = 10


class BOpts(OptionsModel):
    url: int = 5
    path: str
    ratio: float = 0.5
    flag: bool = False


class AAdapter(ProtocolAdapter):
    name = "aa"
    Options = AOpts
    secret_options = ("url",)


class BAdapter(ProtocolAdapter):
    name = "bb"
    Options = BOpts


class Plugin:
    @staticmethod
    def register_adapters(registry: Any) -> None:
        registry.register(AAdapter)
        registry.register(BAdapter)


def test_inline_refs_recursive_and_nested() -> None:
    schema = model_settings_schema(AOpts)
    text = repr(schema)
    assert "$ref" not in text and "$defs" not in text and "'title'" not in text
    creds = next(v for v in schema["properties"]["creds"]["anyOf"] if v.get("type") == "object")
    assert creds["properties"]["password"]["secret"] is True
    assert creds["properties"]["password"]["writeOnly"] is True
    assert inline_refs({"$defs": {"X": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/X"}}}) == {
        "properties": {"a": {"type": "string"}}
    }


def test_secret_marking_by_declaration_type_and_name() -> None:
    schema = model_settings_schema(AOpts, secrets=["url"])
    props = schema["properties"]
    assert props["url"]["secret"] is True and props["url"]["description"] == "where"
    assert props["api_token"]["secret"] is True
    assert not props["primary_key"].get("secret") and not props["replication_key"].get("secret")
    assert is_secret_name("client_secret") and is_secret_name("auth") and not is_secret_name("primary_key")
    assert set(secret_settings(schema)) == {"url", "api_token"}


def test_union_over_adapters() -> None:
    ps = enable_plugins(entry_points=False, builtins=False, plugins=[Plugin], make_current=False)
    try:
        schema = adapter_settings_schema(plugins=ps)
        props = schema["properties"]
        assert props["adapter"]["enum"] == ["aa", "bb"]
        assert schema["required"] == ["adapter"]
        assert {v.get("type") for v in props["url"]["anyOf"]} == {"string", "integer"}
        assert props["url"]["secret"] is True  # one of the variants is secret
        assert "aa, bb" in props["url"]["description"] and "Required by: aa" in props["url"]["description"]
        assert "bb" in props["path"]["description"]
        one = adapter_settings_schema("bb", plugins=ps)
        assert set(one["properties"]) == {"adapter", "url", "path", "ratio", "flag"}
        assert one["required"] == ["adapter", "path"]
        items = {s["name"]: s for s in meltano_settings(schema)}
        assert items["size"]["kind"] == "integer" and items["size"]["value"] == 10
        assert items["ratio"]["kind"] == "decimal" and items["flag"]["kind"] == "boolean"
        assert items["creds"]["sensitive"] is True  # holds a secret
        assert items["url"]["sensitive"] is True
        assert "sensitive" not in items["path"]
    finally:
        ps.close()
