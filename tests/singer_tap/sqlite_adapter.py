"""A small adapter registered by the tap tests through ``enable_plugins(plugins=[...])``.

It reads one table of a real SQLite file with the stdlib ``sqlite3`` module and implements the
adapter bookmark contract (``replication_key``, ``replication_key_value``, ``keys_at_value``) in
small batches, so the tap's state handling is exercised independently of the built-in SQL adapter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dc_api_x.config import OptionsModel
from dc_api_x.ext.adapters import ProtocolAdapter
from dc_api_x.types import Batch, StreamSpec

_TYPES = {
    "INTEGER": {"type": ["integer", "null"]},
    "REAL": {"type": ["number", "null"]},
    "TEXT": {"type": ["string", "null"]},
}


class LiteOptions(OptionsModel):
    path: str
    table: str
    primary_key: str = "id"
    replication_key: str | None = None
    batch_size: int = 3
    password: str | None = None


class LiteAdapter(ProtocolAdapter):
    name = "lite"
    Options = LiteOptions
    secret_options = ("password",)

    def discover(self) -> list[StreamSpec]:
        o = self.options
        with sqlite3.connect(o.path) as con:
            cols = con.execute(f'PRAGMA table_info("{o.table}")').fetchall()
        if not cols:
            raise self.error(f"no table {o.table!r} in {o.path}", stream=o.table)
        props = {c[1]: dict(_TYPES.get(c[2].upper(), {"type": ["string", "null"]})) for c in cols}
        return [
            StreamSpec(
                name=o.table,
                schema={"type": "object", "properties": props},
                key_properties=(o.primary_key,),
                replication_key=o.replication_key,
                replication_keys=tuple(props),
            )
        ]

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        o = self.options
        rk, pk = stream.replication_key, o.primary_key
        cols = list(columns) if columns else list(stream.properties)
        sql = f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{o.table}"'
        args: list[Any] = []
        last_val: Any = None
        keys: list[list[Any]] = []
        if rk:
            if state and state.get("replication_key_value") is not None:
                last_val = state["replication_key_value"]
                keys = [list(k) for k in state.get("keys_at_value") or []]
                done = [k[0] for k in keys]
                marks = ",".join("?" * len(done)) or "NULL"
                sql += f' WHERE ("{rk}" > ? OR ("{rk}" = ? AND "{pk}" NOT IN ({marks})))'
                args += [last_val, last_val, *done]
            sql += f' ORDER BY "{rk}", "{pk}"'
        else:
            sql += f' ORDER BY "{pk}"'
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        con = sqlite3.connect(o.path)
        try:
            cur = con.execute(sql, args)
            while True:
                rows = cur.fetchmany(o.batch_size)
                if not rows:
                    break
                recs = [dict(zip(cols, r, strict=True)) for r in rows]
                bookmark = None
                if rk:
                    for rec in recs:
                        if rec[rk] != last_val:
                            last_val, keys = rec[rk], []
                        keys.append([rec[pk]])
                    bookmark = {
                        "replication_key": rk,
                        "replication_key_value": last_val,
                        "keys_at_value": [list(k) for k in keys],
                    }
                yield Batch.from_records(recs, schema=stream.schema, bookmark=bookmark)
        finally:
            con.close()


class LitePlugin:
    """The plugin object passed to ``enable_plugins(plugins=[LitePlugin])``."""

    @staticmethod
    def register_adapters(registry: Any) -> None:
        registry.register(LiteAdapter)
