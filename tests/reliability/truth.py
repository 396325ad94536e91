"""Ground truth: a deterministic table (seeded) written to an SQLite source, plus its row hashes.

Each row has ``id`` (primary key), ``updated_at`` (strictly increasing with ``id``, UTC, seconds),
``name`` (with non-ASCII text), ``amount`` (a float exactly representable in binary) and ``payload``
(seeded random text of about ``width`` bytes). :func:`row_hash` normalises the values a destination
gives back (``datetime`` or ISO text, float or integral float) so the oracle compares values, not
representations.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["EPOCH", "Bookmark", "Truth", "make_truth", "row_hash", "ts"]

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 éßø漢字—\"'\\,;"


def ts(i: int) -> str:
    return (EPOCH + dt.timedelta(seconds=i)).isoformat()


def _norm_ts(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat()
    text = str(value).replace("Z", "+00:00").replace(" ", "T", 1)
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc).isoformat()


def row_hash(row: dict[str, Any]) -> str:
    """Hash of the values of a row (id, updated_at, name, amount, payload), representation-free."""
    amount = row.get("amount")
    doc = [
        int(row["id"]),
        _norm_ts(row["updated_at"]),
        row.get("name"),
        None if amount is None else float(amount),
        row.get("payload"),
    ]
    return hashlib.blake2b(json.dumps(doc, ensure_ascii=False).encode(), digest_size=12).hexdigest()


class Bookmark(str):
    """A replication-key value with the primary keys a state lists as delivered at it
    (``keys_at_value``; ``None``: every row at the value)."""

    keys: frozenset[int] | None

    def __new__(cls, value: str, keys: frozenset[int] | None = None) -> Bookmark:
        self = super().__new__(cls, value)
        self.keys = keys
        return self


class Truth:
    """The rows of the source, by id, and their hashes."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.hashes = {r["id"]: row_hash(r) for r in rows}
        self.ids = set(self.hashes)

    def __len__(self) -> int:
        return len(self.rows)

    def ids_up_to(self, bookmark: str) -> set[int]:
        """Ids whose ``updated_at`` is at or before ``bookmark`` (what a state claims is delivered);
        for a :class:`Bookmark` with ``keys``, of the rows *at* its value only those keys."""
        limit = _norm_ts(bookmark)
        keys = getattr(bookmark, "keys", None)
        out = set()
        for r in self.rows:
            at = _norm_ts(r["updated_at"])
            if at < limit or (at == limit and (keys is None or r["id"] in keys)):
                out.add(r["id"])
        return out

    def write_jsonl(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as fh:
            for r in self.rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def make_truth(n: int, *, seed: int, width: int = 200, start: int = 1) -> Truth:
    rnd = random.Random(seed)
    rows = []
    for i in range(start, start + n):
        payload = "".join(rnd.choice(_ALPHABET) for _ in range(rnd.randint(width // 2, width)))
        rows.append(
            {
                "id": i,
                "updated_at": ts(i),
                "name": f"name-{i}-ø",
                "amount": rnd.randint(-(10**6), 10**6) * 0.25,
                "payload": payload,
            }
        )
    return Truth(rows)


def write_source(db: Path, truth: Truth, *, timestamp_type: str = "TEXT") -> None:
    """Create (or extend) the ``items`` table of an SQLite file with the truth rows. ``timestamp_type``
    is ``updated_at``'s declared type (``TIMESTAMP``: read as date-times, so the runner can split the
    stream into ranges of it)."""
    con = sqlite3.connect(db)
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, "
            f"updated_at {timestamp_type} NOT NULL, name TEXT, amount REAL, payload TEXT)"
        )
        con.executemany(
            "INSERT OR REPLACE INTO items VALUES (:id, :updated_at, :name, :amount, :payload)", truth.rows
        )
        con.commit()
    finally:
        con.close()
