"""Database text forms of Arrow columns: PostgreSQL ``inet`` values as PostgreSQL's own text
output writes them (what psycopg reads), with Arrow kernels only."""

from __future__ import annotations

from typing import Any

__all__ = ["inet_text"]


#: PostgreSQL's text output of an ``inet`` host leaves out the prefix length of a whole address.
_INET_HOST_PREFIX = (
    (r"^([0-9.]+)/32$", r"\1"),  # IPv4 /32
    (r"^([0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)/128$", r"\1"),  # IPv6 /128
)


def inet_text(col: Any) -> Any:
    """A string column (or a list-of-strings column) of PostgreSQL ``inet`` values in the text
    PostgreSQL's output gives (what psycopg reads): ``10.0.0.1`` for a ``/32`` host (``::1`` for a
    ``/128``), every other prefix kept (``10.1.2.0/24``, ``2001:db8::1/64``). The ``inet::text``
    cast, which a read as text through Arrow uses, writes ``10.0.0.1/32``. Arrow kernels only."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    def host(arr: Any) -> Any:
        for pattern, replacement in _INET_HOST_PREFIX:
            arr = pc.replace_substring_regex(arr, pattern=pattern, replacement=replacement)
        return arr

    def one(arr: Any) -> Any:
        if pt.is_list(arr.type) or pt.is_large_list(arr.type):
            cls = pa.ListArray if pt.is_list(arr.type) else pa.LargeListArray
            if arr.offset:  # a slice: its own copy (from_arrays takes no null bitmap with a slice)
                arr = pa.concat_arrays([arr])
            values = one(arr.values)
            return cls.from_arrays(arr.offsets, values, type=arr.type, mask=arr.is_null())
        if pt.is_string(arr.type) or pt.is_large_string(arr.type):
            return host(arr)
        return arr

    if isinstance(col, pa.ChunkedArray):
        return pa.chunked_array([one(c) for c in col.chunks], type=col.type)
    return one(col)
