"""The pipeline file's fast path (runner/config.py): a file of exactly typed values becomes the same
models ``model_validate`` gives, without building pydantic's validators (issue 15); anything else goes
through pydantic, with its coercions and its one-line errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import BaseModel

from dc_api_x.exceptions import ConfigError
from dc_api_x.runner import config as rc

SRC = {"adapter": "sql", "url": "sqlite:///shop.db", "streams": ["orders", {"name": "c", "table": "t"}]}
DST = {"adapter": "parquet", "path": "out/", "load_method": "overwrite"}

FAST = [
    {},
    {"pipelines": {}},
    {"pipelines": {"demo": {"source": SRC, "destination": DST}}},
    {
        "state_backend": "postgresql://u@h/db",
        "lock_timeout": 30,
        "history_days": 0,
        "path": None,
        "pipelines": {
            "a": {
                "source": {
                    **SRC,
                    "transforms": [{"type": "rename", "mapping": {"a": "b"}}],
                    "stream_maps": {"orders": {"secret": None}},
                    "select": ["orders"],
                    "stream_map": {"orders": "o"},
                    "concurrency": 2,
                    "partitions": 8,
                    "worker_pool": "processes",
                },
                "destination": {**DST, "load_method": None, "concurrency": None, "worker_pool": None},
                "select": ["orders"],
                "checkpoint_rows": 1,
                "checkpoint_seconds": 0.5,
                "prefetch": 0,
                "parallel": 3,
            },
            "b": {"source": SRC, "destination": DST, "select": None, "checkpoint_seconds": 60},
        },
    },
]

SLOW = [
    {"pipelines": {"a": {"source": SRC, "destination": DST, "schedule": "@daily"}}},
    {"pipelines": {"a": {"source": SRC, "destination": DST, "singer": {"tap": "tap-x"}}}},
    {"scheduler": {"max_concurrent": 2}, "pipelines": {}},
    {"lock_timeout": "5m"},
    {"pipelines": {"a": {"source": SRC, "destination": DST, "checkpoint_rows": "10"}}},
    {"pipelines": {"a": {"source": SRC, "destination": DST, "prefetch": True}}},
    {"pipelines": {"a": {"source": {**SRC, "transforms": {"orders": []}}, "destination": DST}}},
    {"pipelines": {"a": {"source": {**SRC, "select": ("x",)}, "destination": DST}}},
]

BAD = [
    ({"pipelines": {"a": {"source": SRC}}}, "'pipelines.a.destination': required option is missing"),
    (
        {"pipelines": {"a": {"source": SRC, "destination": DST, "bogus": 1}}},
        "'pipelines.a.bogus': unknown option",
    ),
    ({"pipelines": {"a": {"source": SRC, "destination": DST, "parallel": 0}}}, "greater than or equal to 1"),
    ({"pipelines": {"a": {"source": SRC, "destination": DST, "checkpoint_rows": 0}}}, "greater than 0"),
    ({"lock_timeout": 0}, "'lock_timeout': Input should be greater than 0"),
    ({"lock_timeout": float("nan")}, "'lock_timeout'"),
    ({"pipelines": {"a": {"source": {"url": "x"}, "destination": DST}}}, "'pipelines.a.source.adapter'"),
    (
        {"pipelines": {"a": {"source": {**SRC, "worker_pool": "fibers"}, "destination": DST}}},
        "'pipelines.a.source.worker_pool'",
    ),
    (
        {"pipelines": {"a": {"source": {**SRC, "partitions": 0}, "destination": DST}}},
        "'pipelines.a.source.partitions'",
    ),
    ({"pipelines": ["a"]}, "'pipelines'"),
]


def _shape(m: Any) -> Any:
    """Everything a model holds: class, field values (nested), extras and the fields given."""
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


@pytest.mark.parametrize("data", FAST)
def test_fast_path_gives_what_pydantic_gives(data: dict[str, Any]) -> None:
    fast = rc._fast_project(copy.deepcopy(data))
    slow = rc.ProjectConfig.model_validate(copy.deepcopy(data))
    assert _shape(fast) == _shape(slow)
    assert fast.model_dump() == slow.model_dump()
    assert repr(fast.model_dump()) == repr(slow.model_dump())  # the same key order too
    assert fast == slow
    for name, pipe in fast.pipelines.items():
        assert rc._fast_pipeline(copy.deepcopy(data["pipelines"][name])) == pipe
        assert pipe.source.options == slow.pipelines[name].source.options
        assert pipe.source.adapter_config() == slow.pipelines[name].source.adapter_config()


def test_fast_path_copies_lists_and_dicts_as_pydantic_does() -> None:
    src = {**SRC, "transforms": [{"type": "x"}], "stream_maps": {"o": {}}, "select": ["o"]}
    ep = rc._fast_endpoint(src)
    assert ep.transforms == src["transforms"] and ep.transforms is not src["transforms"]
    assert ep.stream_maps is not src["stream_maps"] and ep.select is not src["select"]
    assert ep.options["streams"] is src["streams"]  # adapter options: kept as given (extra="allow")
    assert rc._fast_endpoint(src).model_dump() == rc.Endpoint.model_validate(src).model_dump()


@pytest.mark.parametrize("data", SLOW)
def test_other_values_go_through_pydantic(data: dict[str, Any]) -> None:
    with pytest.raises(rc._Slow):
        rc._fast_project(copy.deepcopy(data))
    assert rc._validate(rc.ProjectConfig, copy.deepcopy(data), "f") == rc.ProjectConfig.model_validate(data)


@pytest.mark.parametrize(("data", "expected"), BAD)
def test_errors_are_pydantics_one_line(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(rc._Slow):
        rc._fast_project(copy.deepcopy(data))
    with pytest.raises(ConfigError) as err:
        rc._validate(rc.ProjectConfig, copy.deepcopy(data), "config file 'x.yml'")
    msg = str(err.value)
    assert msg.startswith("config file 'x.yml': ") and expected in msg and "\n" not in msg


def test_load_config_builds_no_validator(tmp_path: Any) -> None:
    """A plain pipeline file is loaded without building the models' pydantic validators (the test
    runs in a fresh interpreter: the suite's other tests build them)."""
    import json
    import subprocess
    import sys

    f = tmp_path / "dcapix.json"
    f.write_text(json.dumps({"pipelines": {"demo": {"source": SRC, "destination": DST}}}))
    code = (
        "import sys; from dc_api_x.runner import config as rc\n"
        "cfg = rc.load_config(sys.argv[1])\n"
        "assert cfg.pipeline(None)[1].destination.options == {'path': 'out/'}, cfg\n"
        "assert cfg.path == sys.argv[1]\n"
        "print([m.__pydantic_complete__ for m in (rc.ProjectConfig, rc.PipelineConfig, rc.Endpoint,"
        " rc.SingerConfig, rc.SchedulerConfig)])"
    )
    res = subprocess.run([sys.executable, "-c", code, str(f)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[False, False, False, False, False]"
