"""Write-behind of local part files (``adapters/files/fs.py``: :class:`WriteBehind`): the kernel's
write-out of a part is started while the part is written, so the fsync before its rename waits only
for the last bytes (issue 15 goal 2). The file, its fsync before the rename and the crash guarantees
stay what they were."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dc_api_x import AdapterError, Batch, StreamSpec, create_adapter
from dc_api_x.adapters.files import fs as fsmod
from dc_api_x.adapters.files.fs import FS, WriteBehind, start_writeback

SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "txt": {"type": ["string", "null"]}},
}
SPEC = StreamSpec("s", schema=SCHEMA, key_properties=("id",))


def _batches(n: int = 4, rows: int = 5000) -> list[Batch]:
    out = []
    for b in range(n):
        ids = list(range(b * rows, (b + 1) * rows))
        table = pa.table({"id": pa.array(ids, pa.int64()), "txt": [f"row {i} " * 8 for i in ids]})
        out.append(Batch.from_arrow(table))
    return out


def _write(cfg: dict, batches: list[Batch]) -> None:
    with create_adapter(cfg) as a:
        a.start_write(SPEC)
        for b in batches:
            a.write(SPEC, b)
        a.finish_write(SPEC)


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Every started write-back ``(fd, offset, nbytes)``, with a threshold of one byte (each chunk);
    the real ``sync_file_range`` still runs."""
    seen: list[tuple[int, int, int]] = []
    real = fsmod.start_writeback

    def spy(fd: int, offset: int, nbytes: int) -> bool:
        seen.append((fd, offset, nbytes))
        return real(fd, offset, nbytes)

    monkeypatch.setattr(fsmod, "WRITE_BEHIND_BYTES", 1)
    monkeypatch.setattr(fsmod, "start_writeback", spy)
    return seen


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_a_part_is_written_behind_in_order_and_fsynced_complete_before_its_rename(
    tmp_path: Path, plugins: object, calls: list, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    events: list[tuple[str, str, int]] = []
    sync, rename = FS.sync_file, FS.rename

    def spy_sync(self: FS, path: str) -> None:
        events.append(("fsync", path, os.path.getsize(path)))
        sync(self, path)

    def spy_rename(self: FS, src: str, dst: str) -> None:
        events.append(("rename", src, os.path.getsize(src)))
        rename(self, src, dst)

    monkeypatch.setattr(FS, "sync_file", spy_sync)
    monkeypatch.setattr(FS, "rename", spy_rename)
    cfg = {"adapter": fmt, "path": str(tmp_path), "row_group_size": 5000}
    _write(cfg, _batches())
    (part,) = [f for f in _files(tmp_path) if f.startswith("s/part-")]
    final = tmp_path / part
    # one write-back per chunk, each starting where the previous one ended, over the data written
    assert len(calls) == 4
    assert [c[1] for c in calls] == [0] + [sum(c[2] for c in calls[:i]) for i in range(1, 4)]
    assert sum(c[2] for c in calls) <= final.stat().st_size
    # the part's fsync came before its rename, with the whole file, under its temporary name
    part_events = [e for e in events if e[1].endswith(".tmp") and "part-" in e[1]]
    assert [e[0] for e in part_events] == ["fsync", "rename"]
    assert part_events[0][2] == part_events[1][2] == final.stat().st_size
    with create_adapter({"adapter": fmt, "path": str(tmp_path)}) as a:
        got = [r["id"] for b in a.read(a.get_stream("s")) for r in b.records]
    assert got == list(range(20_000))


def test_the_file_is_the_one_written_without_write_behind(tmp_path: Path, plugins: object) -> None:
    """Same bytes with and without the write-behind (and through pyarrow's own writer on a path)."""
    import dc_api_x.adapters.files.fs as f

    batches = _batches()
    old = f.WRITE_BEHIND_BYTES
    f.WRITE_BEHIND_BYTES = 1 << 60  # never
    try:
        _write({"adapter": "parquet", "path": str(tmp_path / "a")}, batches)
    finally:
        f.WRITE_BEHIND_BYTES = old
    f.WRITE_BEHIND_BYTES = 1
    try:
        _write({"adapter": "parquet", "path": str(tmp_path / "b")}, batches)
    finally:
        f.WRITE_BEHIND_BYTES = old
    (a,) = (tmp_path / "a" / "s").glob("*.parquet")
    (b,) = (tmp_path / "b" / "s").glob("*.parquet")
    assert a.read_bytes() == b.read_bytes()
    assert pq.read_table(b).num_rows == 20_000


def test_small_parts_start_no_write_back(
    tmp_path: Path, plugins: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []

    def spy(*a: object) -> bool:
        seen.append(a)
        return True

    monkeypatch.setattr(fsmod, "start_writeback", spy)
    _write({"adapter": "parquet", "path": str(tmp_path)}, _batches(2, 100))
    assert seen == []  # below WRITE_BEHIND_BYTES: the final fsync alone


def test_no_write_behind_where_the_system_has_none(
    tmp_path: Path, plugins: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []

    def spy(*a: object) -> bool:
        seen.append(a)
        return False  # (no sync_file_range here)

    monkeypatch.setattr(fsmod, "WRITE_BEHIND_BYTES", 1)
    monkeypatch.setattr(fsmod, "start_writeback", spy)
    _write({"adapter": "parquet", "path": str(tmp_path), "row_group_size": 5000}, _batches())
    assert len(seen) == 1  # asked once, then off for the part
    (part,) = (tmp_path / "s").glob("*.parquet")
    assert pq.read_table(part).column("id").to_pylist() == list(range(20_000))


def test_a_write_back_error_is_one_error_naming_the_file_and_leaves_no_file(
    tmp_path: Path, plugins: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(fd: int, offset: int, nbytes: int) -> bool:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(fsmod, "WRITE_BEHIND_BYTES", 1)
    monkeypatch.setattr(fsmod, "start_writeback", fail)
    with pytest.raises(AdapterError) as info:
        _write({"adapter": "parquet", "path": str(tmp_path), "row_group_size": 5000}, _batches())
    msg = str(info.value)
    assert "\n" not in msg
    assert "starting the write-back of" in msg and ".tmp" in msg and "Input/output error" in msg, msg
    assert _files(tmp_path / "s") == []  # the temporary part is removed, nothing was renamed


def test_start_writeback_on_this_system(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    with open(path, "wb") as fh:
        fh.write(b"x" * 100_000)
        fh.flush()
        started = start_writeback(fh.fileno(), 0, 100_000)
    assert started is sys.platform.startswith("linux")
    assert path.read_bytes() == b"x" * 100_000
    r, w = os.pipe()  # a pipe: not a file the kernel writes back (ESPIPE) -> off, no error
    try:
        os.write(w, b"abc")
        assert start_writeback(w, 0, 3) is False
    finally:
        os.close(r)
        os.close(w)


def test_write_behind_waits_for_enough_new_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int]] = []

    def spy(fd: int, off: int, n: int) -> bool:
        seen.append((off, n))
        return True

    monkeypatch.setattr(fsmod, "WRITE_BEHIND_BYTES", 1000)
    monkeypatch.setattr(fsmod, "start_writeback", spy)
    with open(tmp_path / "f", "wb", buffering=0) as fh:
        wb = WriteBehind(fh.fileno(), str(tmp_path / "f"))
        fh.write(b"a" * 600)
        wb.advance()
        fh.write(b"a" * 600)
        wb.advance()
        fh.write(b"a" * 10)
        wb.advance()
        fh.write(b"a" * 2000)
        wb.advance()
    assert seen == [(0, 1200), (1200, 2010)]


CRASH = textwrap.dedent(
    """
    import sys
    import dc_api_x.adapters.files.fs as fs
    fs.WRITE_BEHIND_BYTES = 1
    real = fs.start_writeback
    def spy(fd, off, n):
        sys.stderr.write("write-behind %d %d\\n" % (off, n))
        return real(fd, off, n)
    fs.start_writeback = spy
    from dc_api_x.cli import console_main
    sys.argv = ["dcapix", *sys.argv[1:]]
    sys.exit(console_main())
    """
)


def test_killed_before_the_rename_of_a_part_written_behind(tmp_path: Path) -> None:
    """A crash after the fsync, before the rename: no visible part; the next run removes the
    temporary file of the dead writer and writes every row."""
    rows = [{"id": i, "txt": f"row {i} " * 8} for i in range(6000)]
    (tmp_path / "in.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    src = {
        "adapter": "jsonl",
        "streams": [{"name": "s", "path": str(tmp_path / "in.jsonl"), "schema": SCHEMA}],
        "batch_size": 1000,
    }
    dst = {"adapter": "parquet", "path": str(tmp_path / "out"), "row_group_size": 1000}
    (tmp_path / "src.json").write_bytes(orjson.dumps(src))
    (tmp_path / "dst.json").write_bytes(orjson.dumps(dst))
    (tmp_path / "crash.py").write_text(CRASH)
    args = [
        "run",
        "--no-progress",
        "--state-db",
        str(tmp_path / "state.db"),
        "--source",
        str(tmp_path / "src.json"),
        "--destination",
        str(tmp_path / "dst.json"),
    ]
    env = {**os.environ, "DCAPIX_CRASH_POINT": "files.before_rename"}
    first = subprocess.run([sys.executable, str(tmp_path / "crash.py"), *args], env=env, capture_output=True)
    assert first.returncode == -9, first.stderr.decode()
    assert first.stderr.count(b"write-behind ") >= 2, first.stderr.decode()  # the part was written behind
    out = tmp_path / "out" / "s"
    left = _files(out)
    assert left and all(Path(f).name.startswith(".") for f in left), left  # nothing visible
    env.pop("DCAPIX_CRASH_POINT")
    second = subprocess.run([sys.executable, str(tmp_path / "crash.py"), *args], env=env, capture_output=True)
    assert second.returncode == 0, second.stderr.decode()
    files = _files(out)
    assert not [f for f in files if Path(f).name.startswith(".")], files  # the dead writer's temp file went
    (part,) = [f for f in files if f.endswith(".parquet")]
    assert pq.read_table(out / part).column("id").to_pylist() == list(range(6000))


def test_the_part_on_an_arrow_file_is_the_file_pyarrow_writes_to_a_path(tmp_path: Path) -> None:
    """The adapter now hands the writer a ``pyarrow.OSFile`` it opened (for its descriptor) instead of
    the path: the same Arrow ``FileOutputStream``, the same bytes."""
    from dc_api_x.adapters.files.parquet import _dictionary_columns, _ParquetPart

    table = pa.concat_tables([b.to_arrow() for b in _batches(3, 2000)]).replace_schema_metadata({b"k": b"v"})
    chunks = [table.slice(0, 2500), table.slice(2500)]
    w = pq.ParquetWriter(
        str(tmp_path / "old.parquet"),
        table.schema,
        compression="snappy",
        use_dictionary=_dictionary_columns(chunks[0]),
    )
    for c in chunks:
        w.write_table(c, row_group_size=1500)
    w.close()
    sink = pa.OSFile(str(tmp_path / "new.parquet"), "wb")
    part = _ParquetPart(sink, table.schema, "snappy")
    for c in chunks:
        part.write_table(c, row_group_size=1500)
    part.close()
    assert not sink.closed  # the writer leaves the file to its owner (FileAdapter._release closes it)
    sink.close()
    assert (tmp_path / "new.parquet").read_bytes() == (tmp_path / "old.parquet").read_bytes()
