"""C7 of the catalogue: rows that change while an incremental HTTP stream is paged.

A loopback server holds ``rows`` records ordered by ``(updated_at, id)`` and filtered by
``?since=`` (the stream's ``replication_param``); it pages them by **offset** (``?offset=&limit=``)
or by a **keyset cursor** (the next token is the last record's ``(updated_at, id)``). Once the first
page was served it changes the data once:

* ``insert``: 5 new records with timestamps above every other (new rows at the end);
* ``update``: the record at position 0 gets a new, highest ``updated_at`` (it moves to the end,
  every record after it moves one place up).

``dcapix run`` reads the stream (``is_sorted: true``) into SQLite (``upsert``), then runs again from
the stored bookmark (the data unchanged). The oracle: every record of the server's final data in the
destination with its final values (``lost``, ``changed``).

What it shows: keyset pagination loses nothing in either case; offset pagination is safe for new rows
at the end but **loses a row when a row before the current offset moves** — the row that slid into
the page already read is skipped, and its timestamp is below the final bookmark, so no later run reads
it either. No client can see that from the pages; the suite measures it and ``docs/reliability.md``
documents it (use keyset/cursor pagination, or a full refresh, for data that changes while it is read).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.reliability.kill import _env
from tests.reliability.truth import _norm_ts, ts

__all__ = ["CASES", "PagingCase", "paging_cases"]

PAGE = 50


@dataclass
class PagingCase:
    paging: str  # offset | cursor
    change: str  # insert | update
    rows: int = 0
    lost: int = 0
    changed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.paging} + {self.change}"


class _Server:
    def __init__(self, rows: int, paging: str, change: str) -> None:
        self.data = {i: {"id": i, "updated_at": ts(i), "name": f"n{i}"} for i in range(1, rows + 1)}
        self.top = rows
        self.changed = False
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                with outer.lock:
                    # between the first page of a read and the second (a schema probe reads a first
                    # page too: the change waits for a request of a later page)
                    if not outer.changed and (q.get("offset", "0") != "0" or q.get("cursor")):
                        outer.changed = True
                        outer.mutate(change)
                    body = outer.page(q, paging)
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self._srv.server_address[1]}"
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()

    def ordered(self, since: str | None) -> list[dict[str, Any]]:
        rows = sorted(self.data.values(), key=lambda r: (r["updated_at"], r["id"]))
        return [r for r in rows if since is None or r["updated_at"] >= since]

    def page(self, q: dict[str, str], paging: str) -> dict[str, Any]:
        rows = self.ordered(q.get("since"))
        if paging == "offset":
            off = int(q.get("offset", 0))
            return {"records": rows[off : off + PAGE]}
        after = json.loads(q["cursor"]) if q.get("cursor") else None
        if after is not None:
            rows = [r for r in rows if [r["updated_at"], r["id"]] > after]
        page = rows[:PAGE]
        nxt = json.dumps([page[-1]["updated_at"], page[-1]["id"]]) if len(rows) > PAGE else None
        return {"records": page, "next": nxt}

    def mutate(self, change: str) -> None:
        if change == "insert":
            for _ in range(5):
                self.top += 1
                self.data[self.top] = {"id": self.top, "updated_at": ts(self.top), "name": "new"}
        else:
            first = self.ordered(None)[0]
            self.top += 1
            first.update(updated_at=ts(self.top), name="moved")

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()


def _case(work: Path, paging: str, change: str, rows: int) -> PagingCase:
    case = PagingCase(paging, change)
    work.mkdir(parents=True, exist_ok=True)
    srv = _Server(rows, paging, change)
    try:
        pag: dict[str, Any] = (
            {"type": "offset", "limit": PAGE, "stop_on_short_page": True}
            if paging == "offset"
            else {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"}
        )
        src = {
            "adapter": "http",
            "base_url": srv.url,
            "streams": [
                {
                    "name": "items",
                    "path": "/items",
                    "records_path": "records",
                    "primary_keys": ["id"],
                    "replication_key": "updated_at",
                    "replication_param": "since",
                    "is_sorted": True,
                    "pagination": pag,
                }
            ],
        }
        db = work / "dst.db"
        dest = {"adapter": "sql", "url": f"sqlite:///{db}", "load_method": "upsert"}
        cfg = {"pipelines": {"copy": {"source": src, "destination": dest}}}
        (work / "dcapix.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        for n in (1, 2):
            proc = subprocess.run(
                [sys.executable, "-m", "dc_api_x.cli", "run", "copy", "--no-progress"],
                cwd=work,
                env=_env(None),
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            (work / f"run-{n}.log").write_text(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                case.errors.append(f"run {n} exited {proc.returncode}: {proc.stderr.strip()[-200:]!r}")
                return case
        con = sqlite3.connect(db)
        try:
            got = {
                r[0]: (_norm_ts(r[1]), r[2]) for r in con.execute("SELECT id, updated_at, name FROM items")
            }
        finally:
            con.close()
        want = {r["id"]: (_norm_ts(r["updated_at"]), r["name"]) for r in srv.data.values()}
        case.rows = len(want)
        case.lost = len(set(want) - set(got))
        case.changed = sum(1 for i in set(want) & set(got) if got[i] != want[i])
    finally:
        srv.close()
    return case


CASES = (("offset", "insert"), ("offset", "update"), ("cursor", "insert"), ("cursor", "update"))


def paging_cases(base: Path, rows: int = 500, only: tuple[int, ...] | None = None) -> list[PagingCase]:
    """The cases of :data:`CASES` (``only``: their indexes)."""
    chosen = [CASES[i] for i in only] if only is not None else list(CASES)
    return [_case(base / f"{p}-{c}", p, c, rows) for p, c in chosen]
