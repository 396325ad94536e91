"""Type stubs of the native PostgreSQL binary COPY decoder (``_pgcopy.c``)."""

K_BOOL: int
K_I16: int
K_I32: int
K_I64: int
K_F32: int
K_F64: int
K_DATE: int
K_TS: int
K_TIME: int
K_TEXT: int
K_JSONB: int
K_NUMERIC: int
K_UUID: int

class Decoder:
    def __init__(self, kinds: bytes, name: str) -> None: ...
    def feed(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def read(self, conn: int, getcopydata: int, freemem: int, hint: int, /) -> int: ...
    def finish(self) -> None: ...
    def take(self) -> tuple[int, list[tuple[int, object | None, object, object | None]]]: ...
