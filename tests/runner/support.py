"""Small real adapters for the runner tests: an SQLite reader and an SQLite writer (stdlib sqlite3).

They implement the ``ProtocolAdapter`` contract honestly (keyset-paginated incremental reads with a
bookmark; buffered writes committed by ``flush``; overwrite through a staging table) so the
runner's ordering guarantees can be tested against a real database file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dc_api_x.ext.adapters import AdapterOptions, ProtocolAdapter
from dc_api_x.types import Batch, StreamSpec, WriteResult

_TYPES = {"INTEGER": "integer", "REAL": "number", "TEXT": "string"}


class SrcOptions(AdapterOptions):
    path: str
    batch_size: int = 100
    delay: float = 0.0
    incremental: bool = True
    password: str | None = None
    fail_at_row: int | None = None
    #: after yielding this many batches, sleep ``stall`` seconds once (a source that stalls)
    stall_after: int | None = None
    stall: float = 0.0


class SQLiteSource(ProtocolAdapter):
    """Reads every table of an SQLite file; incremental on ``id`` when ``incremental``."""

    name = "t_sqlite_src"
    Options = SrcOptions
    secret_options = ("password",)

    def _conn(self) -> sqlite3.Connection:
        return sqlite3.connect(self.options.path, check_same_thread=False)

    #: this instance's counters, reported by :meth:`figures` (the runner sums them per role)
    discoveries = 0
    batches_read = 0

    def figures(self) -> dict[str, int]:
        return {"discoveries": self.discoveries, "batches_read": self.batches_read}

    def discover(self) -> list[StreamSpec]:
        self.discoveries += 1
        conn = self._conn()
        try:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                    "ORDER BY name"
                )
            ]
            specs = []
            for t in tables:
                cols = conn.execute(f'PRAGMA table_info("{t}")').fetchall()
                props = {c[1]: {"type": [_TYPES.get(c[2].upper(), "string"), "null"]} for c in cols}
                pk = tuple(c[1] for c in cols if c[5])
                specs.append(
                    StreamSpec(
                        t,
                        {"type": "object", "properties": props},
                        key_properties=pk,
                        replication_key="id" if self.options.incremental else None,
                        options={"table": t, "query": f"SELECT * FROM {t}"},
                    )
                )
            return specs
        finally:
            conn.close()

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        conn = self._conn()
        try:
            last = int(state["id"]) if state and "id" in state else None
            seen = 0
            while True:
                n = self.options.batch_size if limit is None else min(self.options.batch_size, limit - seen)
                if n <= 0:
                    return
                if last is None:
                    cur = conn.execute(f'SELECT * FROM "{stream.name}" ORDER BY id LIMIT ?', (n,))
                else:
                    cur = conn.execute(
                        f'SELECT * FROM "{stream.name}" WHERE id > ? ORDER BY id LIMIT ?', (last, n)
                    )
                names = [d[0] for d in cur.description]
                rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
                if not rows:
                    return
                if self.options.fail_at_row is not None and seen + len(rows) >= self.options.fail_at_row:
                    raise self.error("injected failure", stream=stream.name)
                seen += len(rows)
                self.batches_read += 1
                last = rows[-1]["id"]
                if self.options.delay:
                    time.sleep(self.options.delay)
                yield Batch.from_records(
                    rows, schema=stream.schema, bookmark={"id": last} if self.options.incremental else None
                )
                if (
                    self.options.stall_after is not None
                    and seen == self.options.stall_after * self.options.batch_size
                ):
                    time.sleep(self.options.stall)
        finally:
            conn.close()


class DstOptions(AdapterOptions):
    path: str


class SQLiteDestination(ProtocolAdapter):
    """Writes streams as tables of an SQLite file; ``flush`` commits."""

    name = "t_sqlite_dst"
    Options = DstOptions
    load_methods = ("append", "upsert", "overwrite")

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.conn = sqlite3.connect(self.options.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA synchronous=FULL")
        self._method: dict[str, str] = {}
        self._in_tx = False

    def _table(self, stream: StreamSpec) -> str:
        t = stream.name
        return f"{t}__stage" if self._method.get(t) == "overwrite" else t

    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        super().start_write(stream, load_method=load_method)
        method = load_method or "append"
        self._method[stream.name] = method
        cols = ", ".join(f'"{k}"' for k in stream.properties)
        pk = (
            f", PRIMARY KEY ({', '.join(stream.key_properties)})"
            if stream.key_properties and method == "upsert"
            else ""
        )
        if method == "overwrite":
            self.conn.execute(f'DROP TABLE IF EXISTS "{stream.name}__stage"')
        self.conn.execute(f'CREATE TABLE IF NOT EXISTS "{self._table(stream)}" ({cols}{pk})')

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        if not self._in_tx:
            self.conn.execute("BEGIN")
            self._in_tx = True
        names = batch.column_names
        verb = "INSERT OR REPLACE" if self._method.get(stream.name) == "upsert" else "INSERT"
        sql = (
            f'{verb} INTO "{self._table(stream)}" ({", ".join(chr(34) + n + chr(34) for n in names)}) '
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        self.conn.executemany(sql, [tuple(r.get(n) for n in names) for r in batch.records])
        return WriteResult(rows=len(batch), committed=False)

    def flush(self, stream: StreamSpec | None = None) -> None:
        if self._in_tx:
            self.conn.execute("COMMIT")
            self._in_tx = False

    def finish_write(self, stream: StreamSpec) -> None:
        self.flush(stream)
        if self._method.get(stream.name) == "overwrite":
            self.conn.execute("BEGIN")
            self.conn.execute(f'DROP TABLE IF EXISTS "{stream.name}"')
            self.conn.execute(f'ALTER TABLE "{stream.name}__stage" RENAME TO "{stream.name}"')
            self.conn.execute("COMMIT")

    def close(self) -> None:
        if not self._closed:
            if self._in_tx:
                self.conn.execute("ROLLBACK")
                self._in_tx = False
            self.conn.close()
        super().close()


def register_adapters(registry: Any) -> None:
    registry.register(SQLiteSource)
    registry.register(SQLiteDestination)


def make_source_db(path: Any, rows: int, *, start: int = 1, table: str = "items") -> None:
    """Create (or extend) ``table`` with rows ``start … start+rows-1``."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" (id INTEGER PRIMARY KEY, name TEXT, amount REAL)')
        conn.executemany(
            f'INSERT INTO "{table}" VALUES (?, ?, ?)',
            [(i, f"n{i}", i * 1.5) for i in range(start, start + rows)],
        )
    conn.close()


def table_rows(path: Any, table: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()
    finally:
        conn.close()
