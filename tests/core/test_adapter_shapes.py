"""The adapter constructor shapes of the plugin guide, next to the toolkit's Options-model adapters,
built by one rule (``dc_api_x.factories``) everywhere an adapter is made: ``create_adapter``,
``ApiClient``, ``dcapix run`` (the runner), the tap and the target."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import dc_api_x
from dc_api_x import AdapterError, ApiClient, ConfigError, create_adapter, enable_plugins
from dc_api_x.ext.adapters import AdapterOptions, ProtocolAdapter, Response
from dc_api_x.factories import build_adapter, check_adapter_options
from dc_api_x.types import Batch, StreamSpec, WriteResult

SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}}}


# ------------------------------------------------------------ one JSONL-directory store, five shapes
class JsonlDirMixin:
    """Reads and writes ``<directory>/<stream>.jsonl``: the ETL side shared by the shapes below."""

    directory: Path
    load_methods: Sequence[str] = ("append",)
    seen: dict[str, Any]

    def discover(self) -> list[StreamSpec]:
        return [
            StreamSpec(p.stem, SCHEMA, key_properties=("id",), replication_key="id")
            for p in sorted(self.directory.glob("*.jsonl"))
        ]

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        path = self.directory / f"{stream.name}.jsonl"
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        after = (state or {}).get("id", 0)
        rows = [r for r in rows if r["id"] > after][:limit]
        for i in range(0, len(rows), 2):
            chunk = rows[i : i + 2]
            yield Batch.from_records(chunk, schema=SCHEMA, bookmark={"id": chunk[-1]["id"]})

    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        with open(self.directory / f"{stream.name}.jsonl", "a") as fh:
            for r in batch.records:
                fh.write(json.dumps(r) + "\n")
        return WriteResult(rows=len(batch))

    def flush(self, stream: StreamSpec | None = None) -> None:
        pass

    def finish_write(self, stream: StreamSpec) -> None:
        pass

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return {"success": True, "data": {"method": method, "path": path, "seen": self.seen}}

    def close(self) -> None:
        self.closed = True


class ConnStringAdapter(JsonlDirMixin, ProtocolAdapter):
    """The guide's first shape: ``__init__(self, connection_string)`` receives the URL."""

    def __init__(self, connection_string: str) -> None:
        self.seen = {"connection_string": connection_string}
        self.directory = Path(connection_string.removeprefix("jsonl-dir://"))


class KwargsConfig(BaseModel):
    directory: str
    batch: int = 2
    url: str | None = None


class KwargsAdapter(JsonlDirMixin, ProtocolAdapter):
    """The guide's pydantic shape: ``__init__(self, **kwargs)`` validating with its own model."""

    def __init__(self, **kwargs: Any) -> None:
        self.config = KwargsConfig(**kwargs)
        self.seen = dict(kwargs)
        self.directory = Path(self.config.directory)


class RealClient:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class InjectedAdapter(JsonlDirMixin, ProtocolAdapter):
    """The guide's testable shape: ``__init__(self, client=None, **kwargs)``."""

    def __init__(self, client: Any = None, **kwargs: Any) -> None:
        self.client = client or RealClient(**kwargs)
        self.seen = {"client": type(self.client).__name__, **kwargs}
        self.directory = Path(kwargs.get("directory") or getattr(self.client, "directory", "."))


class PlainClass(JsonlDirMixin):
    """Not even a ProtocolAdapter subclass (the guide's TestableAdapter is a plain class)."""

    name = ""

    def __init__(self, directory: str, *, flag: bool = False) -> None:
        self.seen = {"directory": directory, "flag": flag}
        self.directory = Path(directory)


class Factory:
    """The guide's lifecycle example registers a bound method as the adapter factory."""

    def __init__(self) -> None:
        self.made: list[Any] = []

    def create_adapter(self, url: str, **options: Any) -> ConnStringAdapter:
        adapter = ConnStringAdapter(url)
        adapter.seen = {"url": url, **options}
        self.made.append(adapter)
        return adapter


class ModelOptions(AdapterOptions):
    directory: str
    base_url: str = ""


class ModelAdapter(JsonlDirMixin, ProtocolAdapter):
    """The toolkit's own shape: an ``Options`` model, the options as one mapping."""

    name = "model"
    Options = ModelOptions

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.seen = self.options.model_dump()
        self.directory = Path(self.options.directory)


FACTORY = Factory()


def register_adapters(registry: Any) -> None:
    registry["conn_str"] = ConnStringAdapter
    registry["kwargs"] = KwargsAdapter
    registry["injected"] = InjectedAdapter
    registry["plain"] = PlainClass
    registry["factory"] = FACTORY.create_adapter
    registry["model"] = ModelAdapter


class ShapesPlugin:
    register_adapters = staticmethod(register_adapters)


@pytest.fixture
def shapes() -> Iterator[dc_api_x.PluginSet]:
    ps = enable_plugins(entry_points=False, plugins=[ShapesPlugin()])
    yield ps
    ps.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "people.jsonl").write_text(
        "".join(json.dumps({"id": i, "name": f"n{i}"}) + "\n" for i in range(1, 6))
    )
    return src


# ------------------------------------------------------------------------------- the rule itself
def test_create_adapter_passes_each_shape_what_it_accepts(shapes: Any, data: Path) -> None:
    d = str(data)
    cases = {
        "conn_str": ({"url": f"jsonl-dir://{d}"}, {"connection_string": f"jsonl-dir://{d}"}),
        "kwargs": (
            {"url": "x://y", "directory": d, "batch": 3},
            {"url": "x://y", "directory": d, "batch": 3},
        ),
        "injected": (
            {"url": "x://y", "directory": d},
            {"client": "RealClient", "url": "x://y", "directory": d},
        ),
        "plain": ({"directory": d}, {"directory": d, "flag": False}),
        "factory": ({"url": "u://1", "extra": 2}, {"url": "u://1", "extra": 2}),
        "model": ({"directory": d}, {"directory": d, "base_url": ""}),
    }
    for name, (options, seen) in cases.items():
        adapter = create_adapter({"adapter": name, **options})
        assert adapter.seen == seen, name
        assert adapter.name == name  # an adapter without a class-level name gets its registered one
    assert isinstance(FACTORY.made[-1], ConnStringAdapter)


def test_a_positional_url_and_an_option_named_like_the_parameter_both_work(shapes: Any, data: Path) -> None:
    a = create_adapter({"adapter": "conn_str", "connection_string": "jsonl-dir://x"})
    assert a.seen == {"connection_string": "jsonl-dir://x"}
    mock = object()
    b = create_adapter({"adapter": "injected", "client": mock})
    assert b.client is mock  # dependency injection through the options


def test_what_a_shape_cannot_take_is_one_config_error_line(shapes: Any) -> None:
    with pytest.raises(ConfigError) as ei:
        create_adapter({"adapter": "conn_str", "url": "jsonl-dir://x", "key": "value"})
    assert str(ei.value) == (
        "adapter 'conn_str': option 'key' is not accepted; "
        "ConnStringAdapter(connection_string) accepts: connection_string (the url)"
    )
    assert ei.value.field == "key" and "\n" not in str(ei.value)
    with pytest.raises(
        ConfigError, match=r"adapter 'conn_str': option 'connection_string': required option is missing"
    ):
        create_adapter({"adapter": "conn_str"})
    with pytest.raises(
        ConfigError,
        match=r"adapter 'plain': option 'url' is not accepted; .* accepts: directory \(the url\), flag",
    ):
        create_adapter({"adapter": "plain", "url": "x://", "directory": "d"})
    # the adapter's own pydantic model: a ConfigError naming the field
    with pytest.raises(
        ConfigError, match=r"^adapter 'kwargs': option 'directory': required option is missing$"
    ):
        create_adapter({"adapter": "kwargs", "batch": 1})
    with pytest.raises(ConfigError, match=r"adapter 'kwargs': option 'batch': "):
        create_adapter({"adapter": "kwargs", "directory": "d", "batch": "many"})
    # the toolkit's Options model is unchanged: unknown options are errors naming the field
    with pytest.raises(ConfigError, match=r"adapter 'model': option 'bogus': unknown option"):
        create_adapter({"adapter": "model", "directory": "d", "bogus": 1})


def test_a_constructor_failing_otherwise_is_an_adapter_error_with_secrets_redacted() -> None:
    class Boom:
        def __init__(self, url: str) -> None:
            raise RuntimeError(f"cannot reach {url}")

    with pytest.raises(AdapterError) as ei:
        build_adapter("boom", Boom, {"url": "postgresql://app:s3cr3t-pw@db.internal/x"})
    assert str(ei.value) == (
        "adapter 'boom' could not be created: RuntimeError: cannot reach postgresql://app:***@db.internal/x"
    )
    assert isinstance(ei.value.__cause__, RuntimeError)


def test_check_adapter_options_validates_without_constructing(shapes: Any) -> None:
    reg = shapes.adapters
    check_adapter_options("conn_str", reg["conn_str"], {"url": "x"})
    check_adapter_options("model", reg["model"], {"directory": "d"})
    with pytest.raises(ConfigError, match="option 'bogus'"):
        check_adapter_options("model", reg["model"], {"directory": "d", "bogus": 1})
    with pytest.raises(ConfigError, match="option 'key' is not accepted"):
        check_adapter_options("conn_str", reg["conn_str"], {"url": "x", "key": 1})


# ------------------------------------------------------------------------------------ ApiClient
def test_api_client_builds_every_shape_and_returns_one_type(shapes: Any, data: Path) -> None:
    d = str(data)
    with ApiClient(url=f"jsonl-dir://{d}", adapter="conn_str") as api:
        res = api.get("resource")
    assert isinstance(res, Response) and res.status_code == 200 and res.ok
    assert res.data == {
        "success": True,
        "data": {"method": "GET", "path": "resource", "seen": {"connection_string": f"jsonl-dir://{d}"}},
    }
    assert res.json() is res.data and res.content == b"" and res.url == "resource"
    with ApiClient(url="proto://h", adapter="injected", adapter_options={"key": "value"}) as api:
        assert api.adapter.seen == {"client": "RealClient", "url": "proto://h", "key": "value"}
    with ApiClient(url="proto://h", adapter="kwargs", adapter_options={"directory": d}) as api:
        assert api.adapter.config.url == "proto://h"
    with ApiClient(url="http://127.0.0.1:1", adapter="model", adapter_options={"directory": d}) as api:
        assert api.adapter.seen["base_url"] == "http://127.0.0.1:1"  # Options with base_url: there
    with pytest.raises(ConfigError, match="option 'key' is not accepted"):
        ApiClient(url="proto://h", adapter="conn_str", adapter_options={"key": "value"})


# ------------------------------------------------------------------- the runner, the tap, the target
@pytest.mark.parametrize("src", ["conn_str", "kwargs", "injected", "plain", "factory"])
def test_dcapix_run_reads_and_writes_through_guide_shapes(
    shapes: Any, data: Path, tmp_path: Path, src: str
) -> None:
    from dc_api_x.runner.config import PipelineConfig
    from dc_api_x.runner.pipeline import run_pipeline

    d = str(data)
    source = {
        "conn_str": {"url": f"jsonl-dir://{d}"},
        "kwargs": {"directory": d},
        "injected": {"directory": d},
        "plain": {"directory": d},
        "factory": {"url": f"jsonl-dir://{d}"},
    }[src]
    out = tmp_path / f"out-{src}"
    pipe = PipelineConfig.model_validate(
        {"source": {"adapter": src, **source}, "destination": {"adapter": "kwargs", "directory": str(out)}}
    )
    metrics = run_pipeline(f"shapes-{src}", pipe, None)
    assert metrics.status == "done"
    rows = [json.loads(x) for x in (out / "people.jsonl").read_text().splitlines()]
    assert rows == [{"id": i, "name": f"n{i}"} for i in range(1, 6)]


def test_the_tap_reads_through_a_guide_shape(shapes: Any, data: Path) -> None:
    from tap_dcapix.tap import TapDcApiX

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        tap = TapDcApiX(config={"adapter": "conn_str", "url": f"jsonl-dir://{data}"})
        try:
            tap.sync_all()
            tap.message_writer.flush()
        finally:
            tap.close()
    msgs = [json.loads(x) for x in buf.getvalue().splitlines() if x.strip()]
    assert [m["record"]["id"] for m in msgs if m["type"] == "RECORD"] == [1, 2, 3, 4, 5]
    with pytest.raises(ConfigError, match="option 'key' is not accepted"):
        TapDcApiX(config={"adapter": "conn_str", "url": "jsonl-dir://x", "key": 1})


@pytest.mark.parametrize(
    ("adapter", "options"), [("kwargs", "directory"), ("plain", "directory"), ("conn_str", "url")]
)
def test_the_target_writes_through_a_guide_shape(
    shapes: Any, tmp_path: Path, adapter: str, options: str
) -> None:
    from singer_sdk.plugin_base import _ConfigInput
    from target_dcapix.target import TargetDcApiX

    out = tmp_path / "out"
    value = str(out) if options == "directory" else f"jsonl-dir://{out}"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"adapter": adapter, options: value}))
    lines = [
        {"type": "SCHEMA", "stream": "people", "schema": SCHEMA, "key_properties": ["id"]},
        *({"type": "RECORD", "stream": "people", "record": {"id": i, "name": f"n{i}"}} for i in (1, 2, 3)),
    ]
    text = "".join(json.dumps(m) + "\n" for m in lines)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        TargetDcApiX.invoke(config=_ConfigInput.from_cli_args(str(cfg)), file_input=io.BytesIO(text.encode()))  # type: ignore[arg-type]
    rows = [json.loads(x) for x in (out / "people.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3]


def test_settings_of_keyword_adapters_come_from_their_signature(shapes: Any) -> None:
    from dc_api_x.factories import keyword_options_schema
    from dc_api_x.meltano import plugin_definition
    from dc_api_x.singer_settings import adapter_options_schema

    conn = adapter_options_schema("conn_str", plugins=shapes)
    assert set(conn["properties"]) == {"url", "connection_string"} and "required" not in conn
    assert conn["properties"]["url"]["type"] == "string"
    plain = keyword_options_schema(PlainClass)
    assert plain is not None and set(plain["properties"]) == {"url", "directory", "flag"}
    assert "required" not in plain  # the url can fill directory (rule 2)
    assert plain["properties"]["flag"] == {"type": "boolean", "default": False}
    assert plain["properties"]["directory"]["type"] == "string" and plain["additionalProperties"] is False
    kwargs = keyword_options_schema(KwargsAdapter)
    assert kwargs == {
        "type": "object",
        "properties": {"url": kwargs["properties"]["url"]},
        "additionalProperties": True,
    }
    assert keyword_options_schema(ModelAdapter) is None  # its Options model describes it
    snippet = plugin_definition({"adapter": "conn_str", "url": "jsonl-dir:///data"}, plugins=shapes)
    assert {s["name"] for s in snippet["settings"]} >= {"url", "connection_string"}
    assert snippet["config"] == {"adapter": "conn_str", "url": "jsonl-dir:///data"}
