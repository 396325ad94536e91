"""``validate_options`` without pydantic's validator for options of exact types (issue 15):
:func:`dc_api_x.config.construct_exact` gives what ``model_validate`` gives, or declines."""

from __future__ import annotations

import copy
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dc_api_x.adapters.files.base import FilesOptions
from dc_api_x.adapters.files.parquet import ParquetAdapter
from dc_api_x.adapters.sql.adapter import SQLAdapter, SQLOptions
from dc_api_x.config import EndpointConfig, OptionsModel, PluginConfig, construct_exact, validate_options
from dc_api_x.exceptions import ConfigError


def _shape(m: Any) -> Any:
    if isinstance(m, BaseModel):
        return (
            type(m).__name__,
            {k: _shape(v) for k, v in m.__dict__.items()},
            {k: _shape(v) for k, v in (m.model_extra or {}).items()},
            sorted(m.model_fields_set),
        )
    if isinstance(m, dict):
        return ("dict", {k: _shape(v) for k, v in m.items()})
    if isinstance(m, list):
        return ("list", [_shape(v) for v in m])
    return (type(m).__name__, m)


EXACT = [
    (SQLOptions, {"url": "sqlite:///x.db"}),
    (SQLOptions, {"url": "sqlite:///x.db", "streams": ["a", "b"], "schema": "s", "batch_size": 5}),
    (SQLOptions, {"url": "u", "schema_": "s", "include": ["a*"], "exclude": None, "batch_bytes": 0}),
    (SQLOptions, {"url": "u", "load_method": "upsert", "arrow": False, "read_connections": 1}),
    (SQLOptions, {"url": "u", "engine_options": {"pool_size": 3}, "stream_name_separator": "."}),
    (FilesOptions, {}),
    (FilesOptions, {"path": "/tmp/o", "primary_keys": ["id"], "batch_size": 1, "rows_per_file": None}),
    (FilesOptions, {"compression": "zstd", "file_per_batch": True, "storage_options": {"anon": True}}),
    (ParquetAdapter.Options, {"path": "out", "compression": "snappy", "ordered": False}),
    (EndpointConfig, {"adapter": "sql", "url": "u", "streams": ["a"]}),
    (PluginConfig, {"type": "rename", "mapping": {"a": "b"}}),
]

DECLINED = [
    (SQLOptions, {}),  # a required option missing: pydantic's error
    (SQLOptions, {"url": "u", "bogus": 1}),  # unknown
    (SQLOptions, {"url": "u", "batch_size": "5"}),  # a coercion
    (SQLOptions, {"url": "u", "batch_size": 0}),  # out of range
    (SQLOptions, {"url": "u", "batch_size": True}),
    (SQLOptions, {"url": "u", "load_method": "merge"}),
    (SQLOptions, {"url": "u", "streams": [{"name": "a", "table": "t"}]}),  # a nested model
    (SQLOptions, {"url": "u", "schema": "a", "schema_": "b"}),  # the same field twice
    (SQLOptions, {"url": "u", "engine_options": {1: 2}}),
    (FilesOptions, {"schema": {"id": {"type": "integer"}}}),  # a union pydantic decides
    (FilesOptions, {"streams": [{"name": "a", "path": "p"}]}),
    (FilesOptions, {"sample_size": 1.0}),
    (EndpointConfig, {"url": "u"}),
]


@pytest.mark.parametrize(("model", "data"), EXACT)
def test_exact_options_are_built_as_pydantic_builds_them(model: type[BaseModel], data: dict) -> None:
    fast = construct_exact(model, copy.deepcopy(data))
    assert fast is not None
    slow = model.model_validate(copy.deepcopy(data))
    assert _shape(fast) == _shape(slow)
    assert fast == slow and repr(fast.model_dump()) == repr(slow.model_dump())


@pytest.mark.parametrize(("model", "data"), DECLINED)
def test_other_options_are_left_to_pydantic(model: type[BaseModel], data: dict) -> None:
    assert construct_exact(model, copy.deepcopy(data)) is None
    try:
        expected: Any = model.model_validate(copy.deepcopy(data))
    except Exception:
        with pytest.raises(ConfigError) as err:
            validate_options(model, copy.deepcopy(data), plugin="adapter 'x'")
        assert str(err.value).startswith("adapter 'x': option ") and "\n" not in str(err.value)
    else:
        assert validate_options(model, copy.deepcopy(data), plugin="adapter 'x'") == expected


def test_models_with_validators_or_other_configuration_are_left_to_pydantic() -> None:
    class Checked(OptionsModel):
        a: int = 0

        @field_validator("a")
        @classmethod
        def _double(cls, v: int) -> int:
            return v * 2

    class Stripped(OptionsModel):
        model_config = ConfigDict(str_strip_whitespace=True)
        s: str = ""

    class Strict(OptionsModel):
        n: int = Field(default=0, strict=True, le=5)

    class ValidatedDefault(OptionsModel):
        n: int = Field(default=0, validate_default=True)

    class Init(OptionsModel):
        n: int = 0

        def __init__(self, **data: Any) -> None:
            super().__init__(**data)

    class Sub(Init):
        m: Literal["x"] = "x"

    class NameOnly(OptionsModel):
        model_config = ConfigDict(validate_by_alias=False, validate_by_name=True)
        s: str = Field(default="", alias="x")

    for model, data in [
        (Checked, {"a": 2}),
        (Stripped, {"s": " x "}),
        (Strict, {"n": 1}),
        (ValidatedDefault, {}),
        (Init, {"n": 1}),
        (Sub, {"m": "x"}),
        (NameOnly, {"x": "a"}),
    ]:
        assert construct_exact(model, data) is None, model
    assert validate_options(Checked, {"a": 2}, plugin="p").a == 4
    assert validate_options(Stripped, {"s": " x "}, plugin="p").s == "x"


def test_adapters_configure_through_the_exact_path_and_name_bad_options() -> None:
    opts = SQLAdapter.configure({"url": "sqlite:///x.db", "streams": ["a"]})
    assert isinstance(opts, SQLOptions) and opts.streams == ["a"] and opts.batch_bytes is not None
    with pytest.raises(
        ConfigError, match=r"^adapter 'sql': option 'batch_size': Input should be greater than 0$"
    ):
        SQLAdapter.configure({"url": "u", "batch_size": 0})
    with pytest.raises(ConfigError, match=r"^adapter 'parquet': option 'bogus': unknown option$"):
        ParquetAdapter.configure({"path": "x", "bogus": 1})
