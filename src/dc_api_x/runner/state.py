"""The state store: bookmarks per pipeline, stream and partition.

Two backends behind one interface:

* **SQLite** (default): ``.dcapix/state.db`` in the project directory, stdlib :mod:`sqlite3`,
  WAL mode with ``synchronous=FULL`` so a committed state survives a power cut (one sync per commit);
* **PostgreSQL**: ``state_backend: postgresql://…`` (table ``dcapix_state``, psycopg 3).

A value is the JSON of an adapter's ``Batch.bookmark``. The runner writes it in one transaction
only after the destination's ``flush(stream)`` returned, so the stored state never runs ahead of
committed data. Every run of a pipeline holds a lock (a row with owner pid/host and a heartbeat in
``dcapix_locks``, see :mod:`.locks`) so two runs of one pipeline cannot interleave; while it is held,
every state write of that pipeline checks in the same transaction that the lock is still its own.

Other tables of the store (run history, schedule bookkeeping, locks) use :meth:`StateStore.transaction`
and :meth:`StateStore.execute`, which speak ``?`` placeholders on both backends. The run's lock and
history rows are written with ``durable=False``: atomic and seen by every other connection at once,
but not synced on their own (SQLite ``synchronous=NORMAL`` for that transaction, PostgreSQL
``synchronous_commit = off``) — a power cut may take back the last of them (a lock of a process the
cut ended, which :mod:`.locks` finds stale by the machine's boot id; a run's history row), never a
bookmark: the next durable commit (a state write) syncs them too.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..crashpoints import crash_point
from ..exceptions import StateError
from ..logs import redact_url
from ..values import json_default

__all__ = [
    "DBTransaction",
    "PostgresStateStore",
    "SQLiteStateStore",
    "StateEntry",
    "StateStore",
    "open_state_store",
]

_TABLE = "dcapix_state"
_DDL = (
    f"CREATE TABLE IF NOT EXISTS {_TABLE} ("
    " pipeline TEXT NOT NULL, stream TEXT NOT NULL, partition TEXT NOT NULL DEFAULT '',"
    " value TEXT NOT NULL, updated_at TEXT NOT NULL, run_id TEXT,"
    " PRIMARY KEY (pipeline, stream, partition))"
)


@dataclass(frozen=True)
class StateEntry:
    """One stored bookmark."""

    pipeline: str
    stream: str
    partition: str
    value: dict[str, Any]
    updated_at: str
    run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "stream": self.stream,
            "partition": self.partition,
            "value": self.value,
            "updated_at": self.updated_at,
            "run_id": self.run_id,
        }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _dumps(value: Mapping[str, Any]) -> str:
    # the stored forms are those of dc_api_x.values (base64 bytes, decimals in plain notation);
    # a state written before them (hex bytes, "1E-10" decimals) still loads: it is plain JSON text
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, default=json_default)
    except (TypeError, ValueError) as exc:
        raise StateError(f"state value is not JSON-serialisable: {exc}") from None


def _loads(text: str, pipeline: str, stream: str, partition: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise StateError(
            f"state for pipeline {pipeline!r}, stream {stream!r}{_part(partition)} is unreadable: {exc}; "
            "fix it with `dcapix state set` or `dcapix state reset`, or run with --full-refresh"
        ) from None
    if not isinstance(value, dict):
        raise StateError(
            f"state for pipeline {pipeline!r}, stream {stream!r}{_part(partition)} is unreadable: "
            f"expected a JSON object, got {type(value).__name__}"
        )
    return value


def _part(partition: str) -> str:
    return f", partition {partition!r}" if partition else ""


#: rows of a query.
Rows = list[tuple[Any, ...]]


class DBTransaction:
    """One open transaction of a store: ``execute(sql, params)`` with ``?`` placeholders returns the
    rows (``[]`` for statements without a result); ``rowcount`` is that of the last statement."""

    rowcount: int = -1

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Rows:
        raise NotImplementedError


class StateStore:
    """The state-store interface (see the module docstring)."""

    #: a description for messages (path or redacted URL).
    location: str = ""
    #: ``sqlite`` or ``postgresql`` (for the few statements that differ).
    dialect: str = ""
    #: seconds without heartbeat after which another process takes a run lock over (the project's
    #: ``lock_timeout``).
    lock_timeout: float = 60.0
    #: days of run history kept (the project's ``history_days``; 0: forever).
    history_days: float = 90.0

    def __init__(self) -> None:
        #: pipeline -> owner token of the run locks this store holds (state writes are fenced by them).
        self._fences: dict[str, str] = {}
        self._ensured: set[str] = set()
        self._ensure_mutex = threading.Lock()

    def get(self, pipeline: str, stream: str, partition: str = "") -> dict[str, Any] | None:
        """The stored bookmark, or ``None``. Unreadable JSON raises :class:`StateError`."""
        for e in self.list(pipeline, stream, partition=partition):
            return e.value
        return None

    def set(
        self,
        pipeline: str,
        stream: str,
        value: Mapping[str, Any],
        partition: str = "",
        run_id: str | None = None,
    ) -> None:
        """Store one bookmark (one transaction)."""
        self.set_many(pipeline, [(stream, partition, value)], run_id=run_id)

    def set_many(
        self, pipeline: str, items: Iterable[tuple[str, str, Mapping[str, Any]]], run_id: str | None = None
    ) -> None:
        """Store several bookmarks in one transaction: ``(stream, partition, value)``."""
        raise NotImplementedError

    def list(
        self, pipeline: str | None = None, stream: str | None = None, *, partition: str | None = None
    ) -> list[StateEntry]:
        """Stored entries, optionally filtered."""
        raise NotImplementedError

    def delete(
        self, pipeline: str | None = None, stream: str | None = None, *, partition: str | None = None
    ) -> int:
        """Delete matching entries; returns how many."""
        raise NotImplementedError

    def lock(
        self,
        pipeline: str,
        *,
        run_id: str | None = None,
        timeout: float | None = None,
        on_lost: Any = None,
    ) -> Any:
        """The run lock of ``pipeline`` as a context manager (:class:`~.locks.RunLock`): owner pid and
        host, a heartbeat, takeover of a stale lock; a live holder makes it raise
        :class:`~.locks.LockBusyError` naming that holder."""
        from .locks import RunLock

        return RunLock(self, pipeline, run_id=run_id, timeout=timeout, on_lost=on_lost)

    # -- tables beside the state (run history, schedules, locks) -----------------------------------
    def transaction(self, *, durable: bool = True) -> contextlib.AbstractContextManager[DBTransaction]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite); committed when the block ends.
        ``durable=False``: not synced on its own (module docstring; locks and run history only)."""
        raise NotImplementedError

    def execute(self, sql: str, params: Iterable[Any] = (), *, durable: bool = True) -> Rows:
        """One statement in its own transaction; returns its rows."""
        with self.transaction(durable=durable) as tx:
            return tx.execute(sql, params)

    def ensure_tables(self, key: str, ddl: Iterable[str]) -> None:
        """Run ``CREATE … IF NOT EXISTS`` statements once per store (``key`` names the set)."""
        if key in self._ensured:
            return
        with self._ensure_mutex:
            if key in self._ensured:
                return
            for stmt in ddl:
                try:
                    self.execute(stmt)
                except StateError:
                    # two processes creating the same PostgreSQL table at once: one of them loses
                    # the catalog race; the table exists either way
                    if self.dialect != "postgresql":
                        raise
                    self.execute(stmt)
            self._ensured.add(key)

    def _check_fence(self, tx: DBTransaction, pipeline: str) -> None:
        """Inside a state write: while this store holds the run lock of ``pipeline``, the lock must
        still be ours (refreshing its heartbeat), or the write is refused."""
        owner = self._fences.get(pipeline)
        if owner is None:
            return
        import time

        tx.execute(
            "UPDATE dcapix_locks SET heartbeat_at = ? WHERE pipeline = ? AND owner = ?",
            (time.time(), pipeline, owner),
        )
        if tx.rowcount != 1:
            raise StateError(
                f"pipeline {pipeline!r}: the run lock was taken over by another process; "
                "state not stored (the other run continues from the last stored state)"
            )

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _where(pipeline: str | None, stream: str | None, partition: str | None, ph: str) -> tuple[str, list[str]]:
    conds, args = [], []
    for col, val in (("pipeline", pipeline), ("stream", stream), ("partition", partition)):
        if val is not None:
            conds.append(f"{col} = {ph}")
            args.append(val)
    return (" WHERE " + " AND ".join(conds)) if conds else "", args


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the store in WAL mode (a property of the file, kept once set).

    With ``synchronous=FULL`` a commit in WAL mode syncs the log once; in the default rollback-journal
    mode it syncs the journal, the database and the directory (four ``fdatasync`` per commit here).
    The demo run's state store made 16 syncs and now makes 8 (its commits, and the checkpoint when
    the last connection closes); at high machine load those syncs were a quarter of a small sync's
    wall time (issue 15). The guarantees stay: a commit is
    durable (on power loss too) and atomic, and a crashed writer's transaction is rolled back at the
    next open. Where WAL cannot be used (a file system without shared memory, a read-only
    directory) the store keeps the journal mode the file has."""
    try:
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
    except sqlite3.Error:
        pass


class SQLiteStateStore(StateStore):
    """State in an SQLite file (created with its directory on first use)."""

    dialect = "sqlite"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self.location = str(self.path)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._mutex = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn()
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"state store {self.location}: cannot open: {exc}") from None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            _use_wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(_DDL)
            self._local.conn = conn
            with self._mutex:
                self._conns.append(conn)
        return conn

    def set_many(
        self, pipeline: str, items: Iterable[tuple[str, str, Mapping[str, Any]]], run_id: str | None = None
    ) -> None:
        rows = [(pipeline, s, p, _dumps(v), _now(), run_id) for s, p, v in items]
        if not rows:
            return
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_fence(_SQLiteTx(conn), pipeline)
            except StateError:
                conn.execute("ROLLBACK")
                raise
            conn.executemany(
                f"INSERT INTO {_TABLE} (pipeline, stream, partition, value, updated_at, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pipeline, stream, partition) DO UPDATE SET "
                "value = excluded.value, updated_at = excluded.updated_at, run_id = excluded.run_id",
                rows,
            )
            crash_point("state.write")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise StateError(f"state store {self.location}: cannot write state: {exc}") from None

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[DBTransaction]:
        conn = self._conn()
        try:
            try:
                if not durable:
                    conn.execute("PRAGMA synchronous=NORMAL")  # (set outside a transaction)
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StateError(f"state store {self.location}: {exc}") from None
            try:
                yield _SQLiteTx(conn)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise StateError(f"state store {self.location}: {exc}") from None
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        finally:
            if not durable:  # every other commit of this connection syncs again
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA synchronous=FULL")

    def list(
        self, pipeline: str | None = None, stream: str | None = None, *, partition: str | None = None
    ) -> list[StateEntry]:
        where, args = _where(pipeline, stream, partition, "?")
        try:
            cur = self._conn().execute(
                f"SELECT pipeline, stream, partition, value, updated_at, run_id FROM {_TABLE}{where} "
                "ORDER BY pipeline, stream, partition",
                args,
            )
            rows = cur.fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"state store {self.location}: cannot read state: {exc}") from None
        return [StateEntry(p, s, part, _loads(v, p, s, part), u, r) for p, s, part, v, u, r in rows]

    def delete(
        self, pipeline: str | None = None, stream: str | None = None, *, partition: str | None = None
    ) -> int:
        where, args = _where(pipeline, stream, partition, "?")
        try:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            n = conn.execute(f"DELETE FROM {_TABLE}{where}", args).rowcount
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StateError(f"state store {self.location}: cannot delete state: {exc}") from None
        return int(n)

    def close(self) -> None:
        with self._mutex:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(sqlite3.Error):
                c.close()
        self._local = threading.local()


class PostgresStateStore(StateStore):
    """State in a PostgreSQL table ``dcapix_state`` (psycopg 3, one connection per thread)."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.location = redact_url(self.url)
        self._local = threading.local()
        self._conns: list[Any] = []
        self._mutex = threading.Lock()
        self._conn()

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                import psycopg

                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
                conn.execute(_DDL)
            except Exception as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise StateError(
                    f"state store {self.location}: cannot connect: {redact_url(first)}"
                ) from None
            self._local.conn = conn
            with self._mutex:
                self._conns.append(conn)
        return conn

    def set_many(
        self, pipeline: str, items: Iterable[tuple[str, str, Mapping[str, Any]]], run_id: str | None = None
    ) -> None:
        rows = [(pipeline, s, p, _dumps(v), _now(), run_id) for s, p, v in items]
        if not rows:
            return
        conn = self._conn()
        try:
            with conn.transaction(), conn.cursor() as cur:
                self._check_fence(_PgTx(cur), pipeline)
                cur.executemany(
                    f"INSERT INTO {_TABLE} (pipeline, stream, partition, value, updated_at, run_id) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (pipeline, stream, partition) DO UPDATE SET "
                    "value = excluded.value, updated_at = excluded.updated_at, run_id = excluded.run_id",
                    rows,
                )
        except StateError:
            raise
        except Exception as exc:
            raise StateError(f"state store {self.location}: cannot write state: {exc}") from None

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[DBTransaction]:
        conn = self._conn()
        try:
            with conn.transaction(), conn.cursor() as cur:
                if not durable:
                    cur.execute("SET LOCAL synchronous_commit = off")
                yield _PgTx(cur)
        except StateError:
            raise
        except Exception as exc:
            import psycopg

            if not isinstance(exc, psycopg.Error):
                raise
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StateError(f"state store {self.location}: {first}") from None

    def list(
        self, pipeline: str | None = None, stream: str | None = None, *, partition: str | None = None
    ) -> list[StateEntry]:
        where, args = _where(pipeline, stream, partition, "%s")
        try:
            rows = (
                self._conn()
                .execute(
                    f"SELECT pipeline, stream, partition, value, updated_at, run_id FROM {_TABLE}{where} "
                    "ORDER BY pipeline, stream, partition",
                    args,
                )
                .fetchall()
            )
        except StateError:
            raise
        except Exception as exc:
            raise StateError(f"state store {self.location}: cannot read state: {exc}") from None
        return [StateEntry(p, s, part, _loads(v, p, s, part), u, r) for p, s, part, v, u, r in rows]

    def delete(
        self, pipeline: str | None = None, stream: str | None = None, *, partition: str | None = None
    ) -> int:
        where, args = _where(pipeline, stream, partition, "%s")
        try:
            cur = self._conn().execute(f"DELETE FROM {_TABLE}{where}", args)
        except Exception as exc:
            raise StateError(f"state store {self.location}: cannot delete state: {exc}") from None
        return int(cur.rowcount)

    def close(self) -> None:
        with self._mutex:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(Exception):
                c.close()
        self._local = threading.local()


class _SQLiteTx(DBTransaction):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Rows:
        cur = self.conn.execute(sql, tuple(params))
        self.rowcount = cur.rowcount
        return cur.fetchall()


class _PgTx(DBTransaction):
    def __init__(self, cur: Any) -> None:
        self.cur = cur

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Rows:
        self.cur.execute(sql.replace("?", "%s"), tuple(params))
        self.rowcount = self.cur.rowcount
        return list(self.cur.fetchall()) if self.cur.description is not None else []


def open_state_store(
    backend: str | None = None, *, project_dir: str | os.PathLike[str] | None = None, path: str | None = None
) -> StateStore:
    """Open the store a ``state_backend`` value names.

    :param backend: ``"sqlite"`` (default), a path to an SQLite file, or a ``postgresql://`` URL.
    :param project_dir: where ``.dcapix/state.db`` lives for the default backend (cwd otherwise).
    :param path: an explicit ``--state-db`` (path or URL) overriding ``backend``.
    """
    spec = path or backend or "sqlite"
    if spec.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return PostgresStateStore(
            spec.replace("postgres://", "postgresql://", 1) if spec.startswith("postgres://") else spec
        )
    if spec == "sqlite":
        base = Path(project_dir) if project_dir is not None else Path.cwd()
        return SQLiteStateStore(base / ".dcapix" / "state.db")
    if spec.startswith("sqlite:///"):
        spec = spec[len("sqlite:///") :]
    return SQLiteStateStore(spec)
