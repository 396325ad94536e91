"""The state store: bookmarks per pipeline, stream and partition.

Two backends behind one interface:

* **SQLite** (default): ``.dcapix/state.db`` in the project directory, stdlib :mod:`sqlite3`,
  ``synchronous=FULL`` so a committed state survives a power cut;
* **PostgreSQL**: ``state_backend: postgresql://…`` (table ``dcapix_state``, psycopg 3).

A value is the JSON of an adapter's ``Batch.bookmark``. The runner writes it in one transaction
only after the destination's ``flush(stream)`` returned, so the stored state never runs ahead of
committed data. Every run of a pipeline holds a lock (``flock`` on a file next to the SQLite
database, or a PostgreSQL advisory lock) so two runs of one pipeline cannot interleave.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import StateError
from ..logs import redact_url
from ..values import json_default

__all__ = [
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


class StateStore:
    """The state-store interface (see the module docstring)."""

    #: a description for messages (path or redacted URL).
    location: str = ""

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

    @contextlib.contextmanager
    def lock(self, pipeline: str) -> Iterator[None]:
        """Hold the run lock of ``pipeline``; a second holder gets :class:`StateError`."""
        raise NotImplementedError
        yield  # pragma: no cover

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


class SQLiteStateStore(StateStore):
    """State in an SQLite file (created with its directory on first use)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
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
            conn.executemany(
                f"INSERT INTO {_TABLE} (pipeline, stream, partition, value, updated_at, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pipeline, stream, partition) DO UPDATE SET "
                "value = excluded.value, updated_at = excluded.updated_at, run_id = excluded.run_id",
                rows,
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise StateError(f"state store {self.location}: cannot write state: {exc}") from None

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

    @contextlib.contextmanager
    def lock(self, pipeline: str) -> Iterator[None]:
        import fcntl

        safe = hashlib.sha1(pipeline.encode()).hexdigest()[:16]
        lock_dir = self.path.parent / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        lock_path = lock_dir / f"{safe}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                raise StateError(
                    f"pipeline {pipeline!r} is already running ({holder}); lock {lock_path} "
                    "(released automatically when that process exits)"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} since {_now()}".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._mutex:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(sqlite3.Error):
                c.close()
        self._local = threading.local()


class PostgresStateStore(StateStore):
    """State in a PostgreSQL table ``dcapix_state`` (psycopg 3, one connection per thread)."""

    def __init__(self, url: str) -> None:
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
                cur.executemany(
                    f"INSERT INTO {_TABLE} (pipeline, stream, partition, value, updated_at, run_id) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (pipeline, stream, partition) DO UPDATE SET "
                    "value = excluded.value, updated_at = excluded.updated_at, run_id = excluded.run_id",
                    rows,
                )
        except Exception as exc:
            raise StateError(f"state store {self.location}: cannot write state: {exc}") from None

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

    @contextlib.contextmanager
    def lock(self, pipeline: str) -> Iterator[None]:
        import psycopg

        key = int.from_bytes(hashlib.sha1(f"dcapix:{pipeline}".encode()).digest()[:8], "big", signed=True)
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            got = bool(row and row[0])
            if not got:
                raise StateError(
                    f"pipeline {pipeline!r} is already running (advisory lock {key} held in "
                    f"{self.location}; released when that process exits)"
                )
            yield
        finally:
            conn.close()

    def close(self) -> None:
        with self._mutex:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(Exception):
                c.close()
        self._local = threading.local()


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
