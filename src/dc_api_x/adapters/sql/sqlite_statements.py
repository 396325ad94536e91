"""The statements of the SQLite backend's own reads (a plain file, no SQLAlchemy: issue 15).

What :meth:`dc_api_x.ext.sql.SQLRead.select` and ``SQLiteBackend._select_sentinel`` build with
SQLAlchemy, written as SQLite text with ``?`` parameters: the same columns, filter, order and limit.
Identifiers are double-quoted with embedded quotes doubled, as SQLAlchemy's SQLite dialect quotes
a name that needs it; values are always bound parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...ext.sql import SQLRead

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "quote",
    "rowid_alias",
    "table_select",
    "table_select_keys",
    "table_select_rowids",
    "table_select_sentinel",
]


def quote(name: str) -> str:
    """An SQLite identifier in double quotes (embedded quotes doubled), as SQLAlchemy's SQLite
    dialect quotes a name that needs it."""
    return '"' + name.replace('"', '""') + '"'


def _table_from(read: SQLRead) -> str:
    src = read.source
    table = quote(src.table or "")
    return f"{quote(src.schema)}.{table}" if src.schema else table


def _order_limit(read: SQLRead, names: list[str], params: list[Any], head: int = 0) -> str:
    """``ORDER BY (replication key, primary key) [LIMIT ?]`` of a read (``names``: how the
    statement names each column of the read, in :attr:`SQLRead.props` order; ``head``: rows before
    the table's, which the limit makes room for)."""
    sql = ""
    boundary = read.boundary
    cols = list(read.props)
    if boundary is not None:
        keys = [boundary.rk, *boundary.pks]
        sql += " ORDER BY " + ", ".join(f"{names[cols.index(k)]} ASC" for k in keys)
    if read.limit is not None:
        sql += " LIMIT ?"
        params.append(read.limit + read.extra_rows() + head)
    return sql


def table_select(read: SQLRead, target: pa.Schema) -> tuple[str, list[Any]]:
    """The sqlite3 read of a table: :meth:`SQLRead.select`'s statement, written without SQLAlchemy
    (the columns, ``rk >= ?`` when resuming, ordered by (replication key, primary key), a limit)."""
    names = [quote(n) for n in read.props]
    return _ordered_select(read, ", ".join(names), names)


def _ordered_select(read: SQLRead, columns: str, names: list[str]) -> tuple[str, list[Any]]:
    """``SELECT columns FROM table``, with ``rk >= ?`` when resuming, the read's order and limit."""
    sql = f"SELECT {columns} FROM {_table_from(read)}"
    params: list[Any] = []
    boundary = read.boundary
    if boundary is not None and boundary.value is not None:
        sql += f" WHERE {quote(boundary.rk)} >= ?"
        params.append(boundary.value)
    return sql + _order_limit(read, names, params), params


def table_select_keys(read: SQLRead, rowid: str) -> tuple[str, list[Any]]:
    """The first step of a read by rowid: :func:`table_select`'s filter, order and limit, selecting
    only the rowid (``rowid``: the name it goes by in the table), so SQLite's sorter holds the sort
    keys and rowids rather than whole rows."""
    return _ordered_select(read, quote(rowid), [quote(n) for n in read.props])


def table_select_rowids(read: SQLRead, rowid: str, n: int) -> str:
    """The second step of a read by rowid: the rowid and the read's columns of ``n`` rows
    (``WHERE rowid IN (?, …)``; in no particular order, the caller puts them in key order)."""
    names = [quote(n) for n in read.props]
    marks = ", ".join("?" * n)
    rid = quote(rowid)
    return f"SELECT {rid}, {', '.join(names)} FROM {_table_from(read)} WHERE {rid} IN ({marks})"


def rowid_alias(con: Any, read: SQLRead) -> str | None:
    """The name the rowid of the read's table goes by (``rowid``, ``_rowid_`` or ``oid``: the first
    that no column shadows), or ``None`` for a view, a ``WITHOUT ROWID`` table, a table whose
    columns shadow all three, or an SQLite older than 3.37 (no ``table_list`` pragma)."""
    src = read.source
    schema = src.schema or "main"
    rows = con.execute(f"PRAGMA {quote(schema)}.table_list({quote(src.table or '')})").fetchall()
    if len(rows) != 1 or rows[0][2] != "table" or rows[0][4]:
        return None
    cols = {
        r[0].lower() for r in con.execute("SELECT name FROM pragma_table_info(?, ?)", [src.table, schema])
    }
    return next((a for a in ("rowid", "_rowid_", "oid") if a not in cols), None)


def table_select_sentinel(read: SQLRead, target: pa.Schema) -> tuple[str, list[Any]]:
    """The ADBC read of a table: :meth:`SQLiteBackend._select_sentinel`'s statement, written
    without SQLAlchemy (a first row of typed sentinel values, marked ``_o = 0``)."""
    import pyarrow.types as pt

    heads, cols = [], []
    for i, f in enumerate(target):
        c = quote(f.name)
        if pt.is_integer(f.type) or pt.is_boolean(f.type):
            heads.append("0")
        elif pt.is_floating(f.type):
            heads.append("0.5")
        elif pt.is_binary(f.type):
            heads.append("X'00'")
            c = f"CAST({c} AS BLOB)"
        else:
            heads.append("''")
            c = f"CAST({c} AS TEXT)"
        heads[-1] += f" AS s{i}"
        cols.append(f"{c} AS s{i}")
    sql = (
        f"SELECT 0 AS _o, {', '.join(heads)} "
        f"UNION ALL SELECT 1 AS _o, {', '.join(cols)} FROM {_table_from(read)}"
    )
    params: list[Any] = []
    boundary = read.boundary
    if boundary is not None and boundary.value is not None:
        sql += f" WHERE {quote(boundary.rk)} >= ?"
        params.append(boundary.value)
    order = _order_limit(read, [f"s{i}" for i in range(len(target))], params, head=1)
    if order.startswith(" ORDER BY "):
        order = " ORDER BY _o ASC, " + order[len(" ORDER BY ") :]
    return sql + order, params
