"""Reads stream with flat memory: a ~400 MB table is read by a process whose peak RSS stays far below it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

READER = """
import json, resource, sys
from dc_api_x.plugins import create_adapter
cfg = json.loads(sys.argv[1])
ad = create_adapter(cfg)
(spec,) = ad.discover()
rows = sum(len(b.to_arrow()) for b in ad.read(spec))
print(json.dumps({"rows": rows, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def _peak(cfg):
    res = subprocess.run(
        [sys.executable, "-c", READER, json.dumps(cfg)], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_pg_read_memory_is_flat(pg_url, pg_schema, pg_exec):
    pg_exec(
        f"CREATE TABLE {pg_schema}.wide AS SELECT i::bigint AS id, repeat(md5(i::text), 64) AS payload "
        f"FROM generate_series(1, 200000) AS i"
    )  # 200k rows x 2 KB = ~400 MB of text
    out = _peak({"adapter": "sql", "url": pg_url, "streams": [f"{pg_schema}.wide"], "batch_size": 10000})
    assert out["rows"] == 200000
    assert out["maxrss_mb"] < 400, out  # data ~400 MB; measured 150-270 MB


def test_sqlite_read_memory_is_flat(sqlite_db):
    url, run = sqlite_db
    run("CREATE TABLE wide (id INTEGER PRIMARY KEY, payload TEXT)")
    run(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000) "
        "INSERT INTO wide SELECT i, printf('%.2000c', 'x') FROM c"
    )
    out = _peak({"adapter": "sql", "url": url, "batch_size": 10000})
    assert out["rows"] == 200000
    assert out["maxrss_mb"] < 400, out  # data ~400 MB; measured 150-270 MB
