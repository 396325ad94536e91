"""What a run tells the adapters' head starts about itself.

A head start (an adapter's ``open_ahead``, or the function it registered as ``ahead``; docs/adapters.md)
may do more than open a connection: the SQL adapter's begins a PostgreSQL source's discovery and first
read while ``dcapix run`` still imports its modules. That read is only of use when this process then
reads the source's streams whole. ``dcapix run`` says here, from its own arguments, before it calls
any head start, whether it will (not with ``--limit``, partitions, ``--workers`` or another executor);
an adapter asks :func:`whole_reads` before it begins a read. This module imports nothing, so the
runner and the adapters both may, without either importing the other.
"""

from __future__ import annotations

__all__ = ["whole_reads"]

_whole = True


def whole_reads(flag: bool | None = None) -> bool:
    """Whether this process's run reads each source stream whole, here; ``flag`` sets it first
    (``dcapix run`` at its start, and back to true when a run's head starts are closed)."""
    global _whole
    if flag is not None:
        _whole = bool(flag)
    return _whole
