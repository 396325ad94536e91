"""Type stubs of the native RECORD-line scanner (``_recordscan.c``)."""

F_REQUIRED: int
F_NULL: int
F_OBJECT: int
F_ARRAY: int
F_STRING: int
F_INT: int
F_FLOAT: int
F_BOOL: int

def scan(
    lines: list[bytes] | bytes, stream: bytes, names: tuple[bytes, ...], kinds: bytes, flags: bytes, /
) -> tuple[bytes, list[tuple[int, bytes | None, bytes, bytes | None, int]], bytes | None] | None: ...

_Column = tuple[int, bytes | None, bytes, bytes | None, int]

def scan_page(
    body: bytes,
    key: bytes,
    names: tuple[bytes, ...],
    kinds: bytes,
    flags: bytes,
    others: tuple[bytes, ...],
    /,
) -> tuple[int, list[_Column], tuple[bytes | None, ...], bytes] | None: ...
def join(parts: list[tuple[list[_Column], int, int]], kinds: bytes, /) -> list[_Column]: ...
def canonical_records(body: bytes, spans: bytes, start: int, indexes: tuple[int, ...], /) -> bytes | None: ...
