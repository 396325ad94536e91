"""The row oracle and the state-safety oracle.

* :func:`read_rows` reads what a destination holds *visibly* (final file names only; hidden
  ``.…tmp`` files are what a reader must never see). Every JSONL line must parse and every Parquet
  file must open — a torn file is reported, not skipped.
* :func:`check_rows` compares with the truth: ``lost`` (truth ids missing), ``dups`` (rows beyond
  one per id), ``changed`` (rows whose value hash differs), ``extra`` (ids not in the truth).
* :func:`state_ahead` is the state-safety oracle: the ids a bookmark claims are delivered minus the
  ids committed in the destination (must be empty).
* :func:`leftovers` lists temporary files and directories left in an output tree or state directory.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.truth import Truth, row_hash

__all__ = ["OracleResult", "TornFile", "check_rows", "leftovers", "read_rows", "state_ahead"]


class TornFile(AssertionError):
    """A visible destination file that does not parse (a reader would see a torn write)."""


def _visible_files(root: Path, suffix: str) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out += [Path(dirpath) / f for f in filenames if not f.startswith(".") and f.endswith(suffix)]
    return sorted(out)


def read_rows(kind: str, where: Path, stream: str = "items") -> list[dict[str, Any]]:
    """Rows of ``stream`` in a destination: ``jsonl``/``parquet``/``csv`` directory or ``sqlite`` file."""
    if kind == "sqlite":
        if not where.exists():
            return []
        # read-write: after a SIGKILL mid-transaction the hot journal must be rolled back first (what
        # any next connection does); a read-only connection cannot and fails
        con = sqlite3.connect(f"file:{where}?mode=rw", uri=True, timeout=30)
        try:
            con.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in con.execute(f'SELECT * FROM "{stream}"')]
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise
        finally:
            con.close()
    base = where / stream
    if not base.exists():
        return []
    rows: list[dict[str, Any]] = []
    if kind == "jsonl":
        for f in _visible_files(base, ".jsonl"):
            data = f.read_bytes()
            if data and not data.endswith(b"\n"):
                raise TornFile(f"{f}: last line has no newline")
            for n, line in enumerate(data.splitlines(), 1):
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise TornFile(f"{f}:{n}: {exc}") from None
    elif kind == "parquet":
        import pyarrow.parquet as pq

        for f in _visible_files(base, ".parquet"):
            try:
                rows += pq.read_table(f).to_pylist()
            except Exception as exc:
                raise TornFile(f"{f}: {exc}") from None
    elif kind == "csv":
        import csv

        for f in _visible_files(base, ".csv"):
            with f.open(newline="", encoding="utf-8") as fh:
                for r in csv.DictReader(fh):
                    rows.append({k: (None if v == "" else v) for k, v in r.items()})
    else:  # pragma: no cover - a harness bug
        raise ValueError(kind)
    return rows


@dataclass
class OracleResult:
    rows: int
    lost: int
    dups: int
    changed: int
    extra: int
    lost_ids: list[int] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.lost == self.dups == self.changed == self.extra == 0

    def describe(self) -> str:
        head = ", ".join(f"{k}={getattr(self, k)}" for k in ("rows", "lost", "dups", "changed", "extra"))
        return head + (f" (first lost ids {self.lost_ids[:5]})" if self.lost_ids else "")


def check_rows(truth: Truth, rows: list[dict[str, Any]]) -> OracleResult:
    counts = Counter(int(r["id"]) for r in rows)
    lost = sorted(truth.ids - counts.keys())
    extra = len(counts.keys() - truth.ids)
    changed = sum(
        1 for r in rows if int(r["id"]) in truth.hashes and row_hash(r) != truth.hashes[int(r["id"])]
    )
    dups = sum(c - 1 for c in counts.values())
    return OracleResult(len(rows), len(lost), dups, changed, extra, lost[:20])


def committed_ids(kind: str, where: Path) -> set[int]:
    return {int(r["id"]) for r in read_rows(kind, where)}


def state_ahead(truth: Truth, bookmark: str | None, committed: set[int]) -> set[int]:
    """Ids the bookmark claims are delivered but that the destination has not committed."""
    if bookmark is None:
        return set()
    return truth.ids_up_to(bookmark) - committed


_TMP_MARKERS = (".tmp", ".part", ".old-", "-journal")


def leftovers(*roots: Path) -> list[str]:
    """Temporary files/directories under ``roots`` (hidden ``.…tmp`` parts, staging dirs, journals)."""
    found = []
    for root in roots:
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                if any(m in name for m in _TMP_MARKERS):
                    found.append(str(Path(dirpath, name).relative_to(root)))
    return found
