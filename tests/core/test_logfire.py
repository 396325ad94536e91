"""The logfire integration, checked with logfire's own in-memory test exporter (``capfire``): a request
and a stream sync produce spans and logs carrying adapter, method, redacted path, stream and rows.
No network: ``capfire`` configures logfire with ``send_to_logfire=False``."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from logfire.testing import CaptureLogfire, capfire  # noqa: F401  (capfire is the fixture)

from dc_api_x import ApiClient, TransportError
from dc_api_x.logs import (
    disable_logfire,
    enable_logfire,
    logfire_enabled,
    logfire_span,
    register_secret,
    setup_logging,
)

SECRET = "v9f8e7d6c5b4a"  # a value dc-api-x knows to be secret (logfire's own scrubber would not)


@pytest.fixture
def logfire_on(capfire: CaptureLogfire) -> Iterator[CaptureLogfire]:  # noqa: F811
    enable_logfire(configure=False)  # capfire configured logfire (in memory)
    yield capfire
    disable_logfire()


def spans(cap: CaptureLogfire, prefix: str) -> list[dict[str, Any]]:
    """Exported spans whose formatted message starts with ``prefix``."""
    out = cap.exporter.exported_spans_as_dict(fixed_line_number=None)
    return [s for s in out if s["attributes"].get("logfire.msg", "").startswith(prefix)]


def test_a_request_is_a_span_with_adapter_method_redacted_path_and_status(
    logfire_on: CaptureLogfire, plugins: Any, http_server: Any
) -> None:
    register_secret(SECRET)
    http_server.route("GET", f"/items/{SECRET}", lambda req: (200, {}, [{"id": 1}, {"id": 2}]))
    with ApiClient(http_server.url, adapter="http") as api:
        assert [h.name for h in api.hooks] == ["logfire", "logging", "metrics"]
        api.get(f"/items/{SECRET}", params={"page": 1})
    (span,) = spans(logfire_on, "dcapix GET")
    attrs = span["attributes"]
    assert attrs["logfire.msg"] == "dcapix GET /items/***" and span["name"] == "dcapix {method} {path}"
    assert (attrs["adapter"], attrs["method"], attrs["path"]) == ("http", "GET", "/items/***")
    assert attrs["status_code"] == 200 and attrs["bytes"] == len(b'[{"id": 1}, {"id": 2}]')
    assert attrs["url"] == f"{http_server.url}/items/***?page=1"
    assert attrs["code.filepath"] == "test_logfire.py"  # the caller, not dc_api_x internals
    assert SECRET not in str(logfire_on.exporter.exported_spans_as_dict())


def test_a_failed_request_records_the_error_on_its_span(logfire_on: CaptureLogfire, plugins: Any) -> None:
    api = ApiClient("http://127.0.0.1:9", adapter="http", adapter_options={"retries": 1})  # discard port
    with api, pytest.raises(TransportError):
        api.get("/down")
    (span,) = spans(logfire_on, "dcapix GET")
    assert span["attributes"]["logfire.level_num"] >= 17  # error
    assert [e["name"] for e in span["events"]] == ["exception"]


def test_a_stream_sync_is_a_span_with_stream_and_row_counts(
    logfire_on: CaptureLogfire, plugins: Any, tmp_path: Path
) -> None:
    from dc_api_x.runner.config import PipelineConfig
    from dc_api_x.runner.pipeline import run_pipeline

    db = tmp_path / "shop.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL)")
    con.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i * 1.5) for i in range(1, 41)])
    con.commit()
    con.close()
    setup_logging(1)  # INFO records reach logfire as logs
    try:
        pipe = PipelineConfig.model_validate(
            {
                "source": {"adapter": "sql", "url": f"sqlite:///{db}", "streams": ["orders"]},
                "destination": {"adapter": "jsonl", "path": str(tmp_path / "out")},
            }
        )
        run_pipeline("shop", pipe, None)
    finally:
        logging.getLogger("dc_api_x").setLevel(logging.WARNING)
    (span,) = spans(logfire_on, "dcapix sync")
    attrs = span["attributes"]
    assert attrs["logfire.msg"] == "dcapix sync orders"
    assert (attrs["pipeline"], attrs["stream"], attrs["source"], attrs["destination"]) == (
        "shop",
        "orders",
        "sql",
        "jsonl",
    )
    assert (attrs["rows"], attrs["status"]) == (40, "done") and attrs["batches"] >= 1
    logs = spans(logfire_on, "pipeline shop: stream orders")
    assert logs, "the runner's INFO record did not reach logfire"
    assert logs[0]["parent"]["span_id"] == span["context"]["span_id"]  # logged inside the sync span


def test_off_by_default_and_spans_are_no_ops_then(plugins: Any, http_server: Any) -> None:
    assert not logfire_enabled()
    with logfire_span("nothing {x}", x=1) as span:
        span.set_attribute("y", 2)  # no error, nothing recorded
    http_server.route("GET", "/x", lambda req: (200, {}, {}))
    with ApiClient(http_server.url, adapter="http") as api:
        assert sorted(h.name for h in api.hooks) == ["logging", "metrics"]
