"""ADBC PostgreSQL database handles opened ahead of their first use (``dcapix run``, issue 15).

Opening an ADBC PostgreSQL database handle connects to the server and reads ``pg_type`` for the
driver's type resolver: ~0.045 CPU-s and a server round trip or three, paid once per database by the
first discovery or write of a run (:class:`~dc_api_x.adapters.sql.pg_direct.DirectDatabase`); its first
connection then costs a server backend start and authentication. The driver manager releases the GIL
for the whole of ``AdbcDatabaseInit`` and ``AdbcConnectionInit``, so ``dcapix run`` opens both in a
thread (:func:`preopen`) as soon as it knows an endpoint's URL, and they are ready by the time the run
has imported its adapters. :meth:`DirectDatabase.handle` takes them (:func:`take`) when its libpq URI is
the same (the connection becomes the backend's first one, used by its first ``connect()``); what no
backend took is closed when the run ends (:func:`close_all`).

For a source whose configured streams are tables, the thread goes on with the source's discovery
and first read on that connection (:mod:`.pg_ahead`, :class:`~.pg_ahead.ReadAhead`): the run takes
them when they are exactly what it would do (:func:`ahead_of`), and what it did not take is closed
when the backend closes its handle (:func:`release`) or the run ends (:func:`close_all`).

A handle that could not be opened ahead is not an error here: the backend opens it again itself, and
reports its error as it always has. This module imports nothing heavy (no pyarrow, no SQLAlchemy).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...ahead import whole_reads

if TYPE_CHECKING:  # pragma: no cover
    from .pg_ahead import AheadPlan, ReadAhead

__all__ = [
    "ahead_of",
    "bundled_driver_path",
    "close_all",
    "open_pg_database",
    "open_ahead",
    "pending",
    "preopen",
    "release",
    "take",
]

_lock = threading.Lock()
_opening: dict[str, _Opener] = {}
#: the discoveries and reads begun ahead (.pg_ahead), by libpq URI, until closed
_aheads: dict[str, ReadAhead] = {}


class _Opener(threading.Thread):
    """Opens one database handle (``adbc_driver_postgresql.connect(uri)``) and a connection of it
    (``adbc_driver_manager.AdbcConnection``, in autocommit mode as every ADBC connection starts);
    with a ``plan`` (a source of tables) it goes on with the source's discovery and first read on
    that connection (:class:`~.pg_ahead.ReadAhead`), which then stays the thread's."""

    def __init__(self, uri: str, builtin: bool, plan: AheadPlan | None = None) -> None:
        super().__init__(name="dcapix-pg-preopen", daemon=True)
        self.uri = uri
        self.builtin = builtin  # (pg_direct.open_handle)
        self.plan = plan
        self.db: Any = None
        self.conn: Any = None
        #: set once the handle is open (or could not be): :func:`take` waits for it
        self.ready = threading.Event()

        #: set by :func:`close_all` when nobody will take the handle: the thread closes it itself
        self.abandoned = False

    def run(self) -> None:
        switch = _SwitchFaster() if self.plan is not None else None
        try:
            self._run(switch)
        finally:
            if switch is not None:
                switch.restore()

    def _run(self, switch: _SwitchFaster | None) -> None:
        ahead = prep = None
        try:
            if self.plan is not None:  # (pyarrow and a COPY connection, while the handle opens)
                from .pg_ahead import Prep

                prep = Prep(self.uri)
            try:
                from .pg_direct import open_handle

                # (the driver build DCAPIX_ADBC_POSTGRESQL_DRIVER names, if set; the built-in type
                # resolver when the database has no types of its own: pg_direct.open_handle)
                db, conn = open_handle(self.uri, self.builtin)
            except BaseException:  # the backend opens it again and words the error
                if prep is not None:
                    prep.close(wait=False)
                return
            if self.plan is not None and conn is not None:
                from .pg_ahead import ReadAhead

                ahead = ReadAhead(self.uri, self.plan, db, conn, _forget, prep)
            elif prep is not None:
                prep.close()
            with _lock:
                keep = not self.abandoned
                if keep:
                    self.db = db
                    if ahead is not None:
                        _aheads[self.uri] = ahead  # (the connection stays the thread's)
                    else:
                        self.conn = conn
        finally:
            self.ready.set()
        if not keep:
            if ahead is not None:
                ahead.close()  # (its connection; the thread is this one)
            _close(conn, db)
            return
        if ahead is None:
            _import_pyarrow()
        else:  # (pyarrow is being imported by the ahead's own thread: pg_ahead.Prep)
            ahead.run(switch.restore if switch is not None else None)


#: the interpreter's thread switch interval while the head-start threads begin a read (seconds)
SWITCH_INTERVAL = 0.0005


class _SwitchFaster:
    """:data:`SWITCH_INTERVAL` as the interpreter's switch interval until :meth:`restore`.

    While the main thread imports the run's modules (pure Python, ~0.13 s), a thread back from a
    server round trip waits for the interpreter's lock up to the switch interval (5 ms by default)
    before the main thread is made to let go: the head start's discovery, size query, COPY
    connection, snapshot export and range threads are a dozen such waits, most of the time from the
    handle to the first ``COPY``. A shorter interval only costs the main thread more frequent
    (cheap) hand-overs while another thread wants the lock."""

    def __init__(self) -> None:
        self.before = sys.getswitchinterval()
        self.set = min(self.before, SWITCH_INTERVAL)
        sys.setswitchinterval(self.set)
        self.done = False

    def restore(self) -> None:
        if not self.done:
            self.done = True
            if sys.getswitchinterval() == self.set:  # (unless someone else changed it since)
                sys.setswitchinterval(self.before)


def _forget(ahead: ReadAhead) -> None:
    with _lock:
        if _aheads.get(ahead.uri) is ahead:
            del _aheads[ahead.uri]


def ahead_of(uri: str) -> ReadAhead | None:
    """The discovery and read begun ahead on a connection of ``uri`` (:mod:`.pg_ahead`), if any."""
    with _lock:
        return _aheads.get(uri)


def release(db: Any) -> None:
    """Close what was begun ahead on a connection of the database handle ``db`` (before ``db`` is
    closed: a handle with an open connection cannot be)."""
    with _lock:
        found = [a for a in _aheads.values() if a.db is db]
    for ahead in found:
        ahead.close()


def _import_pyarrow() -> None:
    """Import pyarrow, which the handle's first read needs, in the opener's thread once the handle
    is open (the thread has nothing else to do). A run whose destination does not import it while
    loading (PostgreSQL → PostgreSQL) otherwise imports it in the main thread at its first read,
    after the state store's syncs and discovery's round trips, which this import can fill instead
    (the interpreter's lock is free while the main thread waits on them); where the main thread
    imports it itself (a Parquet destination), one of the two waits for the other. ``dcapix run``
    chose Arrow's allocator before (``startup.arrow_system_allocator``)."""
    if "pyarrow" in sys.modules:
        return
    try:
        import pyarrow  # noqa: F401
    except Exception:  # pragma: no cover - the read imports it again and reports the error
        pass


def bundled_driver_path(module: Any) -> str | None:
    """The shared library an ADBC driver wheel bundles beside its package (``module``:
    ``adbc_driver_postgresql`` or ``adbc_driver_sqlite``), the path ``module._driver_path()`` returns
    for it, found without :mod:`importlib.resources`: that function asks
    ``importlib.resources.files(package)`` for the package's directory, which imports
    ``importlib.resources`` with its readers, ``zipfile`` and ``tempfile`` (37 M instructions in a
    bare interpreter, 2-7 M in a run that has ``pathlib`` already; issue 15). ``None`` when the
    package is not a plain directory holding ``lib<package>.so`` (another install: the driver's own
    lookup decides)."""
    file = getattr(module, "__file__", None)
    name = getattr(module, "__name__", "")
    if not isinstance(file, str) or os.path.basename(file) != "__init__.py" or not os.path.isabs(file):
        return None
    path = os.path.join(os.path.dirname(file), f"lib{name}.so")
    if os.path.normpath(path) != path or not os.path.isfile(path):
        return None
    return path


def open_pg_database(uri: str, db_kwargs: Mapping[str, str] | None = None) -> Any:
    """``adbc_driver_postgresql.connect(uri, db_kwargs)`` (an ADBC database handle), with the wheel's
    bundled library named directly (:func:`bundled_driver_path`, no :mod:`importlib.resources`
    lookup) when it lies beside the package; the driver's own ``connect`` otherwise."""
    import adbc_driver_postgresql

    driver = bundled_driver_path(adbc_driver_postgresql)
    if driver is None:
        return adbc_driver_postgresql.connect(uri, db_kwargs=dict(db_kwargs) if db_kwargs else None)
    import adbc_driver_manager

    return adbc_driver_manager.AdbcDatabase(**{**(db_kwargs or {}), "driver": driver, "uri": uri})


def open_ahead(config: Mapping[str, Any], role: str = "source") -> Callable[[], None] | None:
    """Start opening the database handle the SQL adapter of the raw options ``config`` opens first,
    when it reads and writes over ADBC: a plain ``postgresql://`` URL, no ``engine_options``,
    ``arrow`` not off (the built-in type resolver unless a stream is a custom ``query``); a
    source's and a destination's alike (``role``). Returns :func:`close_all` (closes a handle
    nobody took), or ``None`` when nothing was started (not such an endpoint, the driver not
    installed, or a handle of that URI is being opened already).
    :meth:`.SQLAdapter.open_ahead` calls it after its own checks; ``dcapix run`` also calls it on
    the ``--source`` file before it imports the adapter
    (:func:`dc_api_x.runner.startup.open_endpoints_ahead`)."""
    url = config.get("url")
    if (
        type(url) is not str
        or not url.lstrip()[:8].lower().startswith("postgres")
        or config.get("engine_options")
        or config.get("arrow") is False
    ):
        return None
    from .pg_direct import adbc_findable, builtin_resolver_allowed, plain_url

    plain = plain_url(url)
    builtin = builtin_resolver_allowed(config.get("streams"))
    if plain is None or not adbc_findable():
        return None
    plan = None
    if role == "source" and builtin and whole_reads() and not _sql_extensions():
        from .pg_ahead import plan_of

        plan = plan_of(config)
    if not preopen(plain.uri, builtin, plan):
        return None
    return close_all


def _sql_extensions() -> bool:
    """Whether a loaded plugin may register SQL extensions (the ``register_sql_extensions`` hook;
    no built-in does): with one the PostgreSQL backend discovers and reads through SQLAlchemy, so
    nothing is begun ahead. Asked without filling the registry (which imports the plugins' modules)."""
    try:
        from ...plugins import get_plugins

        return bool(get_plugins().pm.hook.register_sql_extensions.get_hookimpls())
    except Exception:  # pragma: no cover - a broken plugin set: the run words it
        return True


def preopen(uri: str, builtin: bool = True, plan: AheadPlan | None = None) -> bool:
    """Start opening the database handle of the libpq URI ``uri`` in a thread (``False``: one is
    being opened already, or the ADBC PostgreSQL driver cannot be imported); ``builtin``: it may get
    the built-in type resolver (no ``query`` stream: :func:`.pg_direct.open_handle`); ``plan``: the
    source's discovery and first read to begin on its connection (:mod:`.pg_ahead`)."""
    with _lock:
        if uri in _opening:
            return False
    try:
        import adbc_driver_postgresql  # noqa: F401  (imported here: not in the thread, beside other imports)
    except ImportError:
        return False
    opener = _Opener(uri, builtin, plan)
    with _lock:
        if uri in _opening:
            return False
        _opening[uri] = opener
    opener.start()
    return True


def take(uri: str, builtin: bool = True) -> tuple[Any, Any] | None:
    """``(handle, connection or None)`` opened ahead for ``uri`` (waiting for them), or ``None``;
    each is taken once. The connection is ``None`` when the thread reads the source's catalog and
    first stream on it (:func:`ahead_of`; it stays the thread's). A handle that may have the built-in
    type resolver is not given to a taker that must not (``builtin`` false: it runs a ``query``
    stream): closed, ``None``."""
    with _lock:
        opener = _opening.pop(uri, None)
    if opener is None:
        return None
    opener.ready.wait()
    if opener.db is None:
        return None
    if opener.builtin and not builtin:
        release(opener.db)
        _close(opener.conn, opener.db)
        return None
    return opener.db, opener.conn


def close_all() -> None:
    """Close what was begun ahead and not closed yet (:mod:`.pg_ahead`: its thread stopped), then
    the handles nobody took; one still being opened (a server slow to answer) is closed by its
    thread once open, without this run waiting for it. (:func:`dc_api_x.ahead.whole_reads` is
    true again: the next run's arguments decide.)"""
    whole_reads(True)
    with _lock:
        openers = list(_opening.values())
        _opening.clear()
        aheads = list(_aheads.values())
        ready = []
        for opener in openers:
            opener.abandoned = True
            if opener.db is not None:
                ready.append((opener.conn, opener.db))
                opener.db = opener.conn = None
    for ahead in aheads:
        ahead.close()
    for conn, db in ready:
        _close(conn, db)


def _close(*handles: Any) -> None:
    for h in handles:
        if h is not None:
            try:
                h.close()
            except Exception:  # pragma: no cover - a connection the server dropped
                pass


def pending() -> list[str]:
    """The URIs whose handles were opened ahead and not taken yet (tests)."""
    with _lock:
        return list(_opening)
