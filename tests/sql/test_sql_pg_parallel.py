"""Parallel COPY of large PostgreSQL append batches (real PostgreSQL): batches in flight are reported
``committed=False``; ``flush`` waits for them; the committed batches are always a prefix (a failed batch
and every later one are rolled back, the error names adapter/stream/field); upserts stay sequential."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dc_api_x.adapters.sql import postgresql
from dc_api_x.adapters.sql.pg_write import DirectTable
from dc_api_x.exceptions import SchemaError
from dc_api_x.plugins import create_adapter
from dc_api_x.testing import isolated_plugins
from dc_api_x.types import Batch, StreamSpec

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["sqlalchemy", "direct"])
def pg_url(request, pg_url):
    """Every test twice: a ``postgresql+psycopg://`` URL (tables set up through SQLAlchemy, ADBC's
    DB-API connections) and a plain ``postgresql://`` one (set up without SQLAlchemy, the driver
    manager's low-level connections: ``adapters/sql/pg_write.py``; dc-api-x-sqlalchemy blocked)."""
    if request.param == "sqlalchemy":
        yield pg_url
        return
    with isolated_plugins(entry_points=True, blocked=["sqlalchemy"]):
        yield pg_url.replace("postgresql+psycopg://", "postgresql://", 1)


N = postgresql._PARALLEL_MIN_ROWS  # rows per batch: just large enough to take the parallel path

SPEC = StreamSpec(
    name="items",
    schema={
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": ["string", "null"]},
            "amount": {"type": ["number", "null"]},
        },
    },
    key_properties=("id",),
)


def _batch(
    start: int, n: int = N, *, name: str = "n", bad_row: int | None = None, bookmark: dict | None = None
) -> Batch:
    names = [name] * n
    if bad_row is not None:
        names[bad_row] = "much too long"
    table = pa.table(
        {
            "id": pa.array(range(start, start + n), pa.int64()),
            "name": pa.array(names, pa.string()),
            "amount": pa.array([i * 0.5 for i in range(n)], pa.float64()),
        }
    )
    return Batch.from_arrow(table, schema=SPEC.schema, bookmark=bookmark)


def _ids(pg_exec, schema: str) -> list[int]:
    return [r[0] for r in pg_exec(f"SELECT id FROM {schema}.items ORDER BY id")]


def test_large_append_batches_are_in_flight_until_flush(pg_url, pg_schema, pg_exec):
    with create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema}) as ad:
        ad.start_write(SPEC)
        direct = pg_url.startswith("postgresql://")  # (the path under test)
        assert isinstance(ad._writes["items"].table, DirectTable) == direct
        results = [ad.write(SPEC, _batch(1 + i * N)) for i in range(5)]
        assert [r.rows for r in results] == [N] * 5
        assert not any(r.committed for r in results)  # handed to the COPY workers
        ad.flush(SPEC)
        assert _ids(pg_exec, pg_schema) == list(range(1, 5 * N + 1))  # exact: no loss, no duplicate
        small = ad.write(SPEC, _batch(5 * N + 1, n=3))  # small batches: written before write() returns
        assert small.committed and small.rows == 3
        ad.finish_write(SPEC)
    assert pg_exec(f"SELECT count(*), count(DISTINCT id) FROM {pg_schema}.items") == [(5 * N + 3, 5 * N + 3)]


def test_finish_write_waits_for_batches_in_flight(pg_url, pg_schema, pg_exec):
    with create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema}) as ad:
        ad.start_write(SPEC)
        for i in range(3):
            ad.write(SPEC, _batch(1 + i * N))
        ad.finish_write(SPEC)  # the runner calls finish_write (no flush) at the end of a stream
        assert _ids(pg_exec, pg_schema) == list(range(1, 3 * N + 1))


def test_failed_batch_among_parallel_ones_commits_only_the_batches_before_it(pg_url, pg_schema, pg_exec):
    pg_exec(
        f"CREATE TABLE {pg_schema}.items (id bigint PRIMARY KEY, name varchar(3), amount double precision)"
    )
    with create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema}) as ad:
        ad.start_write(SPEC)
        batches = [_batch(1), _batch(1 + N, bad_row=N - 1), _batch(1 + 2 * N), _batch(1 + 3 * N)]
        with pytest.raises(SchemaError) as ei:
            for b in batches:
                res = ad.write(SPEC, b)
                assert not res.committed
            ad.flush(SPEC)
        msg = str(ei.value)
        assert "adapter 'sql', stream 'items', field 'name'" in msg
        assert "rolled back" in msg and "too long" in msg
        # the batch before the bad one is committed; the bad one and every later one are not
        assert _ids(pg_exec, pg_schema) == list(range(1, N + 1))
        ad.flush(SPEC)  # nothing left in flight: a second flush does not raise again
        assert _ids(pg_exec, pg_schema) == list(range(1, N + 1))


def test_duplicate_key_across_concurrent_batches_is_the_sequential_error(pg_url, pg_schema, pg_exec):
    """Two batches in flight at once with the same key wait on each other's row lock: the lock
    timeout ends that, and the sequential replay reports the duplicate like a sequential write."""
    with create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema}) as ad:
        ad.start_write(SPEC)
        first = _batch(1)
        second = _batch(N)  # its first id is the last id of ``first``
        with pytest.raises(SchemaError, match=r"adapter 'sql', stream 'items'.*rolled back.*duplicate key"):
            ad.write(SPEC, first)
            ad.write(SPEC, second)
            ad.flush(SPEC)
    assert _ids(pg_exec, pg_schema) == list(range(1, N + 1))


def test_flush_decides_what_state_may_cover(pg_url, pg_schema, pg_exec):
    """A runner stores the bookmark of the last batch only after flush() returned: the batches
    committed then are exactly the ones written before the flush."""
    pg_exec(
        f"CREATE TABLE {pg_schema}.items (id bigint PRIMARY KEY, name varchar(3), amount double precision)"
    )
    saved: list[dict] = []
    with create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema}) as ad:
        ad.start_write(SPEC)
        batches = [
            _batch(1 + i * N, bad_row=(5 if i == 3 else None), bookmark={"id": (i + 1) * N}) for i in range(5)
        ]
        pending = None
        with pytest.raises(SchemaError, match=r"stream 'items', field 'name'"):
            for i, b in enumerate(batches):
                ad.write(SPEC, b)
                pending = b.bookmark
                if i % 2 == 1:
                    ad.flush(SPEC)
                    saved.append(pending)
            ad.flush(SPEC)
            saved.append(pending)
    assert saved == [{"id": 2 * N}]  # the checkpoint after the bad batch never happened
    ids = _ids(pg_exec, pg_schema)
    assert ids == list(range(1, 3 * N + 1))  # batches 0..2 (a prefix); nothing of 3 or 4
    assert max(ids) >= saved[-1]["id"]  # state never ahead of committed rows


def test_close_without_flush_leaves_a_prefix_of_batches(pg_url, pg_schema, pg_exec):
    ad = create_adapter({"adapter": "sql", "url": pg_url, "schema": pg_schema})
    try:
        ad.start_write(SPEC)
        for i in range(4):
            ad.write(SPEC, _batch(1 + i * N))
    finally:
        ad.close()  # (e.g. after an error elsewhere): what was in flight is committed or rolled back
    ids = _ids(pg_exec, pg_schema)
    assert len(ids) % N == 0 and ids == list(range(1, len(ids) + 1))
    assert pg_exec(
        "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' "
        "AND datname = current_database()"
    ) == [(0,)]


def test_upsert_and_overwrite_keep_their_semantics(pg_url, pg_schema, pg_exec):
    cfg = {"adapter": "sql", "url": pg_url, "schema": pg_schema}
    with create_adapter({**cfg, "load_method": "overwrite"}) as ad:
        ad.start_write(SPEC)
        for i in range(3):
            assert not ad.write(SPEC, _batch(1 + i * N)).committed  # staged in parallel
        assert pg_exec(f"SELECT count(*) FROM {pg_schema}.items") == [(0,)]  # not swapped in yet
        ad.finish_write(SPEC)
    assert _ids(pg_exec, pg_schema) == list(range(1, 3 * N + 1))
    with create_adapter({**cfg, "load_method": "upsert"}) as ad:
        ad.start_write(SPEC)
        res = ad.write(SPEC, _batch(N + 1, name="u"))  # sequential: committed when write() returns
        assert res.committed and res.details["affected"] == N
        res = ad.write(SPEC, _batch(2 * N + 1, name="v"))
        assert res.committed
        ad.finish_write(SPEC)
    rows = pg_exec(f"SELECT name, count(*) FROM {pg_schema}.items GROUP BY name ORDER BY name")
    assert rows == [("n", N), ("u", N), ("v", N)]
    assert pg_exec(f"SELECT count(DISTINCT id), max(id) FROM {pg_schema}.items") == [(3 * N, 3 * N)]


_KILL_SCRIPT = """
import os, signal, sys
import pyarrow as pa
from dc_api_x.plugins import create_adapter
from dc_api_x.types import Batch, StreamSpec
url, schema, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = StreamSpec(name="items", schema={"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": ["string", "null"]}}}, key_properties=("id",))
ad = create_adapter({"adapter": "sql", "url": url, "schema": schema})
ad.start_write(spec)
for i in range(6):
    t = pa.table({"id": pa.array(range(1 + i * n, 1 + (i + 1) * n), pa.int64()),
                  "name": pa.array(["x"] * n, pa.string())})
    assert not ad.write(spec, Batch.from_arrow(t, schema=spec.schema)).committed
os.kill(os.getpid(), signal.SIGKILL)  # with batches in flight, before any flush
"""


def test_sigkill_with_batches_in_flight_leaves_a_prefix(pg_url, pg_schema, pg_exec, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "kill.py"
    script.write_text(_KILL_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), pg_url, pg_schema, str(N)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -9, proc.stderr
    ids = _ids(pg_exec, pg_schema)
    # whole batches only, and only a prefix of them (the server aborted the open transactions)
    assert len(ids) % N == 0 and ids == list(range(1, len(ids) + 1))
