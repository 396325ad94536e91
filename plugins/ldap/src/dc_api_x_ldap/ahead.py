"""The read begun ahead: ``dcapix run`` lets an adapter start work while the run still imports and
sets up (``open_ahead(options, role)``, called with the source's raw options right after the plugins
are loaded, before the destination's modules — pyarrow, the Parquet writer — and the runner's own;
an LDAP *destination* starts nothing ahead).

For the ``ldap`` adapter that is the whole beginning of a read, in a thread: connect and bind (the
native reader), the root DSE and the subschema, discovery of the configured streams, the server's
clock, and the first stream's paged search, received and decoded (in C, without the GIL) into a
queue of at most :data:`AHEAD_GROUPS` groups — so the server produces pages while the run imports
pyarrow. The adapter the run creates with the same options takes all of it over
(:func:`take`): its discovery returns the streams found ahead, and its :meth:`read` takes the search
when it is the very search the read would send (same base, scope, filter, attributes, page size
and controls: a read without a bookmark in its state, without a column selection or a limit);
any other read, or any other use of the connection, first cancels it (the connection is closed,
which ends the search on the server; the reader connects again). What nobody takes is closed when
the run ends (the function :meth:`LdapAdapter.open_ahead` returns).

Only the native reader (``reader: auto|native`` over ``ldap://`` or ``ldapi://``) reads ahead, and
only configured streams whose attributes are known without a scan of the directory
(``object_classes`` or ``attributes`` given): anything else starts as before, when the run asks.
Errors ahead are not reported here: the run's adapter then does the same work itself and reports
them as it always has.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["AHEAD_GROUPS", "Ahead", "building", "cancel", "close_untaken", "start", "take"]

log = logging.getLogger("dc_api_x_ldap")

#: groups (of ``source.GROUP_ENTRIES`` entries) received ahead of the conversion before the run
#: takes the search; the thread then waits (a read that is not taken costs the server at most this
#: many groups, plus the one being received)
AHEAD_GROUPS = 1

_lock = threading.Lock()
_pending: list[Ahead] = []
_local = threading.local()


class Ahead:
    """One adapter's work begun ahead, in a thread (:meth:`run`)."""

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self.options = adapter.options
        self.specs: list[Any] | None = None
        #: ``(key, pages, now)``: the prestarted search, its page source and the server's clock
        self.read: tuple[Any, Any, Any] | None = None
        self.taken = False
        self.thread = threading.Thread(target=self.run, name="dcapix-ldap-ahead", daemon=True)

    def run(self) -> None:
        a = self.adapter
        try:
            if a.native() is None:
                return
            self.specs = a.discover()
            if self.specs:
                self.read = a._start_search(self.specs[0])
        except Exception:  # only a head start: the run's adapter does it again and reports it
            log.debug("ldap: the read ahead stopped", exc_info=True)

    def close(self) -> None:
        self.thread.join()
        if self.read is not None:
            cancel(self.adapter._native, self.read[1])
            self.read = None
        self.adapter.close()


def cancel(native: Any, pages: Any) -> None:
    """Stop the search begun ahead whose pages ``pages`` come over ``native``'s connection: the
    connection is shut down first, so the reading thread stops at once (it would otherwise receive
    up to a group's pages before it looks), then closed (the server ends the search)."""
    sock = getattr(native, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    pages.close()


def start(cls: type, config: Mapping[str, Any]) -> Any:
    """Begin the read of an adapter of class ``cls`` with the raw options ``config`` in a thread;
    returns the function closing what nobody took, or ``None`` when nothing was started."""
    cfg = {k: v for k, v in config.items() if k != "adapter"}
    _local.building = True
    try:
        adapter = cls(cfg)
    except Exception:  # bad options: the run reports them
        return None
    finally:
        _local.building = False
    o = adapter.options
    if o.reader == "backend" or not o.streams:
        adapter.close()
        return None
    from .native import status, supports

    if not status()[0] or supports(o) is not None:
        adapter.close()
        return None
    first = o.streams[0]
    if first.object_classes is None and first.attributes is None:
        adapter.close()  # discovery would scan the directory first: not ahead
        return None
    ahead = Ahead(adapter)
    with _lock:
        _pending.append(ahead)
    ahead.thread.start()
    return close_untaken


def building() -> bool:
    """Whether the adapter being created is :func:`start`'s own (it takes nothing)."""
    return bool(getattr(_local, "building", False))


def take(options: Any) -> Ahead | None:
    """The work begun ahead for an adapter with ``options`` (equal ones), finished up to the running
    search, or ``None``."""
    with _lock:
        if not _pending:
            return None
        dump = options.model_dump()
        for ahead in _pending:
            if not ahead.taken and ahead.options.model_dump() == dump:
                ahead.taken = True
                _pending.remove(ahead)
                break
        else:
            return None
    ahead.thread.join()
    return ahead


def close_untaken() -> None:
    """Close the work begun ahead that no adapter took (end of ``dcapix run``)."""
    with _lock:
        left = [a for a in _pending if not a.taken]
        _pending.clear()
    for ahead in left:
        try:
            ahead.close()
        except Exception:  # pragma: no cover - clean-up of a head start
            log.debug("ldap: closing the read ahead failed", exc_info=True)
