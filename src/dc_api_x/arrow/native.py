"""The optional compiled RECORD-line scanner (``dc_api_x.arrow._recordscan``, built by ``setup.py`` when a C
compiler is at hand) and the Arrow arrays of its column buffers.

The scanner reads a block of Singer RECORD lines of one stream whose schema is flat and typed
(``int64``, boolean, string, float64 number and free-form JSON-text fields) into one buffer per
column in a single pass, without a Python object per value; it returns ``None`` for any block it
cannot read exactly as the Python path would (see ``_recordscan.c``), and the Python path reads it.
Without the extension (no compiler when the package was installed) or with the environment variable
``DC_API_X_NATIVE=0``, :func:`load` returns ``None`` and :func:`status` says why.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["arrays_of", "load", "status"]

#: Environment variable that turns the scanner off (``0``), e.g. to compare both paths.
ENV = "DC_API_X_NATIVE"


def load() -> ModuleType | None:
    """The extension module, or ``None`` (not built, or turned off by ``DC_API_X_NATIVE=0``)."""
    if os.environ.get(ENV, "1") == "0":
        return None
    try:
        from . import _recordscan
    except ImportError:
        return None
    return _recordscan


def status() -> tuple[bool, str]:
    """``(available, reason)``: whether the scanner is used, and why not."""
    if os.environ.get(ENV, "1") == "0":
        return False, f"turned off by {ENV}=0"
    try:
        from . import _recordscan  # noqa: F401
    except ImportError as exc:
        return False, (
            f"the native RECORD-line scanner (dc_api_x.arrow._recordscan) is not built: {exc}; reinstall "
            "dc-api-x where a C compiler and the Python headers are present"
        )
    return True, "built"


def arrays_of(
    columns: Sequence[tuple[int, bytes | None, bytes, bytes | None, int]], kinds: bytes, rows: int
) -> list[pa.Array]:
    """The Arrow arrays of the scanner's column buffers (``kinds``: one letter per column, as
    given to ``scan``): int64, boolean, float64, or string (strings and JSON texts), no copy."""
    import pyarrow as pa

    out: list[Any] = []
    buf = pa.py_buffer
    for (nulls, valid, data, offsets, _), kind in zip(columns, kinds.decode(), strict=True):
        vbuf = None if valid is None else buf(valid)
        if kind in "sj":
            assert offsets is not None
            out.append(pa.StringArray.from_buffers(rows, buf(offsets), buf(data), vbuf, nulls))
        else:
            typ = pa.int64() if kind == "i" else pa.float64() if kind == "n" else pa.bool_()
            out.append(pa.Array.from_buffers(typ, rows, [vbuf, buf(data)], nulls))
    return out
