"""A plain PostgreSQL source's discovery and first read begun in the head-start thread
(``adapters/sql/pg_ahead.py``, issue 15), on the real PostgreSQL: the run takes them only when they
are exactly its own (same stream, statement, full read), and gets the same values, errors and
bookmarks; anything else is closed — thread, cursor, connections — and the run reads as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dc_api_x.adapters.sql import pg_ahead, pg_ranges, pgcopy, preopen
from dc_api_x.exceptions import AdapterError
from dc_api_x.plugins import create_adapter
from dc_api_x.testing import isolated_plugins

pytestmark = pytest.mark.postgres

N = 3000
TABLE = """
CREATE TABLE {s}.items (
  id bigint PRIMARY KEY, n integer, amount numeric(12,3), label text, at timestamptz, d date,
  doc jsonb, u uuid, ip inet, flag boolean, raw bytea
);
INSERT INTO {s}.items SELECT g, g % 97, g * 1.125, 'label ' || g,
  timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', date '2020-01-01' + g % 1000,
  jsonb_build_object('g', g), md5(g::text)::uuid, ('10.1.' || (g % 256) || '.7')::inet, g % 3 = 0,
  decode(lpad(to_hex(g), 6, '0'), 'hex')
FROM generate_series(1, {n}) g;
CREATE TABLE {s}.other (k integer PRIMARY KEY, v text);
INSERT INTO {s}.other SELECT g, 'v' || g FROM generate_series(1, 50) g;
ANALYZE {s}.items;
"""


@pytest.fixture(autouse=True)
def _without_sqlalchemy_plugin() -> Iterator[None]:
    """Without dc-api-x-sqlalchemy (whose SQL extension sends every PostgreSQL URL through SQLAlchemy)."""
    with isolated_plugins(entry_points=True, blocked=["sqlalchemy"]):
        yield


@pytest.fixture
def source(pg_url: str, pg_schema: str, pg_exec: Any) -> dict[str, Any]:
    """The options of a source of the schema's tables, with an ``application_name`` of its own (its
    server backends can be counted)."""
    pg_exec(TABLE.format(s=pg_schema, n=N))
    app = f"ahead_{uuid.uuid4().hex[:8]}"
    url = "postgresql://" + pg_url.split("://", 1)[1] + f"?application_name={app}"
    return {"adapter": "sql", "url": url, "schema": pg_schema, "streams": ["items"], "app": app}


@pytest.fixture(autouse=True)
def _closed_after() -> Iterator[None]:
    preopen.close_all()  # (also: reads begun ahead allowed, whatever a former test's run said)
    yield
    preopen.close_all()


def _config(src: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {k: v for k, v in {**src, **over}.items() if k != "app"}


def _begin(src: dict[str, Any], **over: Any) -> pg_ahead.ReadAhead:
    """Open the source's handle ahead as ``dcapix run`` does, and wait for the thread's read."""
    config = _config(src, **over)
    assert preopen.open_ahead({k: v for k, v in config.items() if k != "adapter"}, role="source")
    uri = preopen._opening[next(iter(preopen._opening))].uri
    preopen._opening[uri].ready.wait(30)
    ahead = preopen.ahead_of(uri)
    assert ahead is not None
    assert ahead.decided.wait(30)
    return ahead


def _read(config: dict[str, Any], stream: int = 0, **kw: Any) -> tuple[pa.Table, list[Any]]:
    with create_adapter(config) as ad:
        spec = ad.discover()[stream]
        batches = list(ad.read(spec, **kw))
    return pa.concat_tables([b.to_arrow() for b in batches]), [b.bookmark for b in batches]


def _taken(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What :meth:`ReadAhead.take_read` returned, call by call."""
    out: list[Any] = []
    real = pg_ahead.ReadAhead.take_read

    def spy(self: Any, *a: Any, **kw: Any) -> Any:
        got = real(self, *a, **kw)
        out.append(got)
        return got

    monkeypatch.setattr(pg_ahead.ReadAhead, "take_read", spy)
    return out


def _nothing_left(pg_exec: Any, app: str) -> None:
    """No thread of the head start or of a range reader, nothing registered, no server backend."""
    assert preopen._aheads == {} and preopen._opening == {}
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if n.startswith(("dcapix-pg-preopen", "dcapix-pg-range"))], names
    for _ in range(100):  # (a backend exits a moment after its client closed the connection)
        rows = pg_exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,))
        if rows[0][0] == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{rows[0][0]} server connections of {app} left open")


def _plain_read(src: dict[str, Any], **kw: Any) -> tuple[pa.Table, list[Any]]:
    """The same read with nothing begun ahead (the reference)."""
    assert preopen._aheads == {}
    return _read(_config(src), **kw)


def _large(monkeypatch: pytest.MonkeyPatch, ranges: bool) -> None:
    """Make the small table count as a large one: our COPY decoder, page ranges when ``ranges``."""
    monkeypatch.setattr(pgcopy, "MIN_ROWS", 100)
    if ranges:
        monkeypatch.setattr(pg_ranges, "MIN_ROWS", 100)
        monkeypatch.setattr(pg_ranges, "RANGE_BYTES", 16 << 10)


@pytest.mark.parametrize("kind", ["adbc", "copy", "ranges", "adbc ranges"])
def test_the_read_begun_ahead_is_taken_with_the_same_values(
    source: dict[str, Any], pg_exec: Any, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A small table (ADBC on the connection opened ahead), a large one through our COPY decoder (one
    COPY, or page ranges in one snapshot), and page ranges over ADBC (``DCAPIX_PG_COPY=0``): the run
    takes what the thread began, opens no connection of its own, and reads the very values."""
    if kind != "adbc":
        _large(monkeypatch, ranges="ranges" in kind)
    if kind == "copy":
        monkeypatch.setattr(pg_ranges, "MIN_ROWS", 10**9)
    if kind == "adbc ranges":
        monkeypatch.setenv(pgcopy.ENV, "0")
    ref, ref_marks = _plain_read(source)
    assert ref.num_rows == N
    copy_opened: list[str] = []  # (the thread that opened each COPY connection)
    real_init = pgcopy.CopyConnection.__init__

    def opening(self: Any, *a: Any, **kw: Any) -> None:
        copy_opened.append(threading.current_thread().name)
        real_init(self, *a, **kw)

    monkeypatch.setattr(pgcopy.CopyConnection, "__init__", opening)
    ahead = _begin(source)
    # the decoder's first connection opened by the head start's second thread while discovery ran
    # (none for a table ADBC reads), then used by the read: the only one in this thread
    assert copy_opened[:1] == (["dcapix-pg-preopen-copy"] if kind in ("copy", "ranges") else [])
    assert "dcapix-pg-preopen" not in copy_opened
    assert ahead.started is not None
    assert (ahead.started.ranges is not None) == ("ranges" in kind)
    assert (ahead.started.own is not None) == (kind in ("copy", "ranges"))
    taken = _taken(monkeypatch)
    from dc_api_x.adapters.sql import pg_direct

    opened: list[Any] = []
    real = pg_direct.DirectConnection._open

    def counting(self: Any) -> Any:
        if type(self._conn) is pg_direct._Unopened:
            opened.append(self)
        return real(self)

    monkeypatch.setattr(pg_direct.DirectConnection, "_open", counting)
    got, marks = _read(_config(source))
    assert taken == [ahead]
    assert opened == []  # discovery's rows and the read were the thread's
    assert got.schema.equals(ref.schema, check_metadata=True)
    assert got.equals(ref) and marks == ref_marks
    _nothing_left(pg_exec, source["app"])


def test_discovery_takes_the_thread_s_catalog_rows(
    source: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The specs of a discovery that took the thread's catalog rows are those of one that queried."""
    with create_adapter(_config(source, streams=["items", "other"])) as ad:
        ref = [s.model_dump() if hasattr(s, "model_dump") else repr(s) for s in ad.discover()]
    ahead = _begin(source, streams=["items", "other"])
    asked: list[Any] = []
    real = pg_ahead.ReadAhead.catalog

    def spy(self: Any, schema: str, names: Any) -> Any:
        got = real(self, schema, names)
        asked.append(got is not None)
        return got

    monkeypatch.setattr(pg_ahead.ReadAhead, "catalog", spy)
    with create_adapter(_config(source, streams=["items", "other"])) as ad:
        specs = [s.model_dump() if hasattr(s, "model_dump") else repr(s) for s in ad.discover()]
        assert asked == [True]
        assert [s for s in ad.discover()]  # asked again: queried (each result is given once)
        assert asked == [True, False]
    assert specs == ref
    assert ahead.closed


def test_the_switch_interval_is_shorter_only_while_the_read_is_begun(source: dict[str, Any]) -> None:
    """The interpreter's switch interval is :data:`preopen.SWITCH_INTERVAL` while the head start
    begins the read (its threads get the lock back sooner after each round trip), and what it was
    again once the read is started."""
    import sys

    before = sys.getswitchinterval()
    seen: list[float] = []
    real = pg_ahead.start_read

    def spy(*a: Any, **kw: Any) -> Any:
        seen.append(sys.getswitchinterval())
        return real(*a, **kw)

    try:
        pg_ahead.start_read = spy  # type: ignore[assignment]
        _begin(source)
    finally:
        pg_ahead.start_read = real  # type: ignore[assignment]
    assert seen == [min(before, preopen.SWITCH_INTERVAL)]
    for _ in range(100):
        if sys.getswitchinterval() == before:
            break
        time.sleep(0.01)
    assert sys.getswitchinterval() == before


@pytest.mark.parametrize(
    "how",
    ["another stream first", "columns", "limit", "bookmark", "replication key", "partition"],
)
def test_what_is_not_the_run_s_own_read_is_closed_and_read_again(
    source: dict[str, Any], pg_exec: Any, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Another stream asked for first, the run's own columns or limit, a bookmark from the state, a
    replication key configured, a partition: what the thread began is closed (or never begun) and
    the run reads as before, with the values of a read without a head start."""
    _large(monkeypatch, ranges=True)  # (the most that can be begun: COPY connections, range threads)
    streams: list[Any] = ["items", "other"]
    kw: dict[str, Any] = {}
    stream = 0
    if how == "another stream first":
        stream = 1
    elif how == "columns":
        kw = {"columns": ["id", "label"]}
    elif how == "limit":
        kw = {"limit": 7}
    elif how in ("bookmark", "replication key"):
        streams = [{"table": "items", "replication_key": "at"}, "other"]
        if how == "bookmark":
            kw = {"state": {"replication_key": "at", "replication_key_value": "2024-01-02T00:00:00+00:00"}}
    ref = _read(_config(source, streams=streams), stream, **kw)
    ahead = _begin(source, streams=streams)
    assert (ahead.reader is None) == (how in ("bookmark", "replication key"))
    taken = _taken(monkeypatch)
    if how == "partition":
        with create_adapter(_config(source, streams=streams)) as ad:
            spec = ad.discover()[0]
            parts = ad.partitions(spec, max_partitions=2)
            assert parts
            got = pa.concat_tables([b.to_arrow() for p in parts for b in ad.read_partition(spec, p)]).sort_by(
                "id"
            )
            assert ahead.closed and taken == []
            assert got.equals(_plain_read(source)[0].sort_by("id"))
    else:
        got_table, marks = _read(_config(source, streams=streams), stream, **kw)
        assert got_table.equals(ref[0]) and marks == ref[1]
        assert taken in ([], [None])
        assert ahead.closed
    _nothing_left(pg_exec, source["app"])


def test_a_missing_table_is_the_run_s_error(source: dict[str, Any], pg_exec: Any) -> None:
    """A table that does not exist: nothing is read ahead, and the run's discovery says so, as without
    a head start."""
    config = _config(source, streams=["nope"])
    with pytest.raises(AdapterError) as ref:
        _read(config)
    ahead = _begin(source, streams=["nope"])
    assert ahead.reader is None
    with pytest.raises(AdapterError) as exc:
        _read(config)
    assert str(exc.value) == str(ref.value) and "nope" in str(exc.value)
    _nothing_left(pg_exec, source["app"])


@pytest.mark.parametrize("large", [False, True])
def test_an_unreadable_table_is_the_run_s_error(
    source: dict[str, Any], pg_exec: Any, monkeypatch: pytest.MonkeyPatch, large: bool
) -> None:
    """A relation whose read fails on the server (a view dividing by zero, read with ADBC, or with
    our COPY decoder once it counts as large): the run raises the very error it raises without a
    head start, one line."""
    s = source["schema"]
    pg_exec(f"CREATE VIEW {s}.bad AS SELECT k, 1 / (k - 25) AS q FROM {s}.other")
    if large:
        monkeypatch.setattr(pgcopy, "MIN_ROWS", 0)
    config = _config(source, streams=["bad"])
    with pytest.raises(AdapterError) as ref:
        _read(config)
    _begin(source, streams=["bad"])
    with pytest.raises(AdapterError) as exc:
        _read(config)
    assert str(exc.value) == str(ref.value)
    assert "division by zero" in str(exc.value) and "\n" not in str(exc.value).strip()
    _nothing_left(pg_exec, source["app"])


def test_closing_mid_read_closes_the_thread_and_its_connections(
    source: dict[str, Any], pg_exec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read taken from the thread and left after its first batch (the run stopped), and a read
    begun ahead that no one took (the run ended before it read): closing the adapter, or the end of
    the run (``close_all``), stops the threads and closes every connection."""
    monkeypatch.setattr(pgcopy, "BATCH_BYTES", 16000)  # (many batches: the thread waits on the queue)
    ahead = _begin(source)
    with create_adapter(_config(source)) as ad:
        spec = ad.discover()[0]
        it = iter(ad.read(spec))
        first = next(it)
        assert len(first) > 0 and ahead.taken
        assert ahead._queue.qsize() <= pg_ahead.QUEUE_BATCHES  # bounded: the thread waits
    it.close()
    assert ahead.closed
    _nothing_left(pg_exec, source["app"])
    monkeypatch.setattr(pgcopy, "MIN_ROWS", 100)
    monkeypatch.setattr(pg_ranges, "MIN_ROWS", 100)
    monkeypatch.setattr(pg_ranges, "RANGE_BYTES", 16 << 10)
    ahead = _begin(source)
    assert ahead.started is not None and ahead.started.ranges is not None
    preopen.close_all()  # the run's end
    assert ahead.closed
    _nothing_left(pg_exec, source["app"])


def test_nothing_is_begun_for_a_query_stream_or_with_sql_extensions(source: dict[str, Any]) -> None:
    """A ``query`` stream, or a plugin that registers SQL extensions (the SQLAlchemy path): only the
    handle is opened ahead, as before."""
    config = {k: v for k, v in _config(source).items() if k != "adapter"}
    assert preopen.open_ahead({**config, "streams": [{"name": "q", "query": "SELECT 1 AS x"}]}, role="source")
    assert [o.plan for o in preopen._opening.values()] == [None]
    preopen.close_all()

    class Extensions:
        @staticmethod
        def register_sql_extensions(registry: Any) -> None:
            pass

    with isolated_plugins(Extensions()):
        assert preopen.open_ahead(config, role="source")
        assert [o.plan for o in preopen._opening.values()] == [None]
    preopen.close_all()
    assert preopen.open_ahead(config, role="destination")
    assert [o.plan for o in preopen._opening.values()] == [None]
    preopen.close_all()
    assert preopen.open_ahead({**config, "partitions": 4}, role="source")  # (an endpoint file's)
    assert [o.plan for o in preopen._opening.values()] == [None]
    preopen.close_all()


@pytest.mark.parametrize(
    "flags",
    [{"limit": 10}, {"partitions": 2}, {"workers": 2}, {"executor": "dask"}, {}],
)
def test_dcapix_run_begins_no_read_it_will_not_take(
    source: dict[str, Any], tmp_path: Path, flags: dict[str, Any]
) -> None:
    """``dcapix run --limit`` or with partitions reads no stream whole here: only the handle is
    opened ahead (``startup.open_endpoints_ahead`` → ``dc_api_x.ahead.whole_reads``)."""
    import argparse

    from dc_api_x.ahead import whole_reads
    from dc_api_x.runner import startup

    (tmp_path / "src.json").write_text(json.dumps(_config(source)))
    (tmp_path / "dst.json").write_text(json.dumps({"adapter": "parquet", "path": str(tmp_path / "o")}))
    args = argparse.Namespace(
        source=str(tmp_path / "src.json"), destination=str(tmp_path / "dst.json"), pipeline=None,
        config=None, dry_run=False, via_singer=False, limit=None, partitions=None, workers=None,
        executor="local",
    )  # fmt: skip
    for k, v in flags.items():
        setattr(args, k, v)
    if not flags:
        whole_reads(False)  # (a former run's in this process: this run's arguments decide)
    closers = startup.open_endpoints_ahead(args)
    assert closers
    assert [o.plan is not None for o in preopen._opening.values()] == [not flags]
    startup.close_opened_ahead(closers)
    assert whole_reads() is True  # (the next run's)


def test_plan_of_reads_the_options_as_the_adapter_does() -> None:
    plan = pg_ahead.plan_of({"schema": "s", "streams": ["t", "o.u", {"table": "v", "columns": ["a"]}]})
    assert plan is not None
    assert [(s.table, s.schema) for s in plan.streams] == [("t", "s"), ("u", "o"), ("v", "s")]
    assert plan.discoveries == [("s", ("t", "v")), ("o", ("u",))]
    assert plan.stream_name(plan.streams[1], "public") == "o-u"
    assert plan.stream_name(plan.streams[0], "public") == "t"
    odd: dict[str, Any]
    for odd in (
        {},
        {"streams": []},
        {"streams": ["t"], "read_connections": "2"},
        {"streams": [{"query": "SELECT 1", "name": "q"}]},
        {"streams": [{"table": "t", "columns": "a"}]},
        {"streams": [{"table": "t", "primary_key": "a", "primary_keys": ["a"]}]},
        {"streams": [{"schema": "s"}]},
        {"streams": [3]},
    ):
        assert pg_ahead.plan_of(odd) is None, odd


def test_dcapix_run_takes_the_read_and_writes_the_same_parquet(
    source: dict[str, Any], tmp_path: Path
) -> None:
    """``dcapix run`` (an ad-hoc run: the head start begins before the run's imports) takes the
    thread's read and writes the Parquet file the SQLAlchemy path writes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    env["DC_API_X_BLOCKED_PLUGINS"] = "sqlalchemy"
    outs = []
    psycopg = source["url"].replace("postgresql:", "postgresql+psycopg:", 1)
    for name, url in (("direct", source["url"]), ("sqlalchemy", psycopg)):
        out = tmp_path / name
        (tmp_path / "src.json").write_text(json.dumps({**_config(source), "url": url}))
        (tmp_path / "dst.json").write_text(json.dumps({"adapter": "parquet", "path": str(out)}))
        res = subprocess.run(
            [
                sys.executable, "-m", "dc_api_x.cli", "-vv", "run", "--no-progress", "--no-state",
                "--source", str(tmp_path / "src.json"), "--destination", str(tmp_path / "dst.json"),
            ],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
        assert ("the read begun ahead taken" in res.stderr) == (name == "direct"), res.stderr[-3000:]
        (file,) = sorted(out.rglob("*.parquet"))
        outs.append(pq.read_table(file))
    assert outs[0].num_rows == N
    assert outs[0].schema.equals(outs[1].schema, check_metadata=True)
    assert outs[0].equals(outs[1])


def test_a_name_with_quotes_is_read_ahead_and_taken(
    source: dict[str, Any], pg_exec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table whose name holds a single and a double quote: its size is asked with the name as a
    quoted literal, and its read is taken with the values of a plain read."""
    table = f"{source['schema']}." + '"O\'Brien ""x"""'
    pg_exec(f"CREATE TABLE {table} AS SELECT g AS id, 'n' || g AS name FROM generate_series(1, 500) g")
    pg_exec(f"ANALYZE {table}")
    monkeypatch.setattr(pgcopy, "MIN_ROWS", 1000)
    streams = ['O\'Brien "x"']
    ref, _ = _read(_config(source, streams=streams))
    wanted: list[bool] = []
    real = pg_ahead.ReadAhead._copy_wanted

    def spy(self: Any, s: Any) -> bool:
        wanted.append(real(self, s))
        return wanted[-1]

    monkeypatch.setattr(pg_ahead.ReadAhead, "_copy_wanted", spy)
    ahead = _begin(source, streams=streams)
    # the size query found the table (500 rows < 1000: ADBC reads it; a name it did not find would
    # count as large)
    assert wanted == [False]
    assert ahead.started is not None and ahead.started.own is None
    taken = _taken(monkeypatch)
    got, _ = _read(_config(source, streams=streams))
    assert taken == [ahead] and got.num_rows == 500 and got.equals(ref)
    _nothing_left(pg_exec, source["app"])
