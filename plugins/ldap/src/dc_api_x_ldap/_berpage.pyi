"""Type stubs of the native entry decoder (``_berpage.c``)."""

from typing import Any

MORE: int
STOP: int
NAME: int
CLOSED: int
TIMEOUT: int
INTR: int

class Columns:
    def __init__(self, ncols: int) -> None: ...
    def add_name(self, description: bytes, column: int, /) -> None: ...
    def feed(self, buffer: bytearray, pos: int, end: int, msgid: int, /) -> tuple[int, int, Any]: ...
    def read(
        self,
        fd: int,
        buffer: bytearray,
        pos: int,
        end: int,
        msgid: int,
        timeout_ms: int,
        min_room: int,
        coalesce_us: int = 0,
        /,
    ) -> tuple[int, int, int, Any]: ...
    def pager(self, request: bytes, controls: bytes, page_size: int, group: int, /) -> None: ...
    def take(self) -> tuple[int, Any, Any, list[Any]]: ...
    @property
    def n(self) -> int: ...
    @property
    def references(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def msgid(self) -> int: ...
    @property
    def turned(self) -> int: ...
