"""PL/SQL procedures returning a ``SYS_REFCURSOR`` as streams.

A stream ``{"name": "orders", "procedure": "sales.open_orders", "parameters": [2024]}`` calls
``sales.open_orders(2024, <ref cursor>)`` with python-oracledb's ``Cursor.callproc`` (the OUT
``SYS_REFCURSOR`` parameter is a cursor created for it) and reads the ref cursor in batches of
``batch_size`` rows. Named parameters (``"parameters": {"p_year": 2024}``) pass the ref cursor as
``cursor_parameter``. The stream's JSON Schema comes from the ref cursor's description, so
discovery calls the procedure once (and reads no row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dc_api_x.types import JSONSchema

from .typemap import description_property

__all__ = ["OpenRefCursor", "ProcedureCall", "open_ref_cursor"]


@dataclass(frozen=True)
class ProcedureCall:
    """How a procedure stream is called: ``callproc(name, args, kwargs)`` where the ref cursor is
    appended to ``args`` (positional) or passed as ``kwargs[cursor_parameter]`` (named)."""

    name: str
    parameters: list[Any] | dict[str, Any]
    cursor_parameter: str | None = None

    def arguments(self, ref_cursor: Any) -> tuple[list[Any], dict[str, Any]]:
        """``(positional, keyword)`` arguments of ``Cursor.callproc`` with ``ref_cursor`` in place."""
        if isinstance(self.parameters, dict):
            assert self.cursor_parameter is not None
            return [], {**self.parameters, self.cursor_parameter: ref_cursor}
        return [*self.parameters, ref_cursor], {}

    def plsql(self) -> str:
        """The anonymous block python-oracledb runs for the call (for messages and the docs):
        ``BEGIN name(:1, :2); END;`` or ``BEGIN name(p => :p, c => :c); END;``."""
        if isinstance(self.parameters, dict):
            names = [*self.parameters, str(self.cursor_parameter)]
            args = ", ".join(f"{n} => :{n}" for n in names)
        else:
            args = ", ".join(f":{i}" for i in range(1, len(self.parameters) + 2))
        return f"BEGIN {self.name}({args}); END;"


@dataclass
class OpenRefCursor:
    """A called procedure: its ref cursor (read it, then :meth:`close`) and its columns."""

    cursor: Any
    ref_cursor: Any
    columns: list[tuple[str, JSONSchema]]

    def close(self) -> None:
        for c in (self.ref_cursor, self.cursor):
            try:
                c.close()
            except Exception:  # pragma: no cover - closing after a failed call
                pass


def open_ref_cursor(
    dbapi: Any, call: ProcedureCall, *, arraysize: int, normalize: Any, handler: Any
) -> OpenRefCursor:
    """Call the procedure on the python-oracledb connection ``dbapi``; the ref cursor fetches
    ``arraysize`` rows per round trip through the output type ``handler``."""
    cursor = dbapi.cursor()
    ref = dbapi.cursor()
    ref.arraysize = arraysize
    ref.prefetchrows = arraysize + 1
    ref.outputtypehandler = handler
    args, kwargs = call.arguments(ref)
    try:
        cursor.callproc(call.name, args, kwargs)
    except BaseException:
        OpenRefCursor(cursor, ref, []).close()
        raise
    columns = [(str(normalize(d.name)), description_property(d)) for d in ref.description or []]
    return OpenRefCursor(cursor, ref, columns)
