"""F4 of the catalogue on PostgreSQL: identifiers past the server's 63-byte limit (``NAMEDATALEN``).

PostgreSQL cuts a longer identifier without an error, so two column (or stream) names sharing their
first 63 bytes would become one column (or table), and one long column would be stored under a cut
name. Each case is a real ``target-dcapix`` run into a fresh database (``reliab_f4_…``, dropped
after) and passes when it is either

* a **correct load**: exit 0, the final STATE printed, every value read back under its full source
  name; or
* a **clean refusal**: exit ≠ 0, exactly one ``target-dcapix: error:`` line naming the stream (and
  the field, for a column), no traceback, no STATE printed after the bad input,

and, in both, no table or column in the database whose name is not a source name (a cut name is a
silent merge or rename).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.kill import BIN, _env
from tests.reliability.security import PG_ADMIN

__all__ = ["NameCase", "pg_name_cases"]

_STR = {"type": ["string", "null"]}
_HEAD = "c" * 63


@dataclass
class NameCase:
    name: str
    outcome: str = ""  # "loaded" | "refused" | "" (not clean)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.outcome) and not self.errors


def _schema(stream: str, *cols: str) -> dict[str, Any]:
    props = {"id": {"type": "integer"}, **{c: _STR for c in cols}}
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": props},
        "key_properties": ["id"],
    }


def _rec(stream: str, rec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": rec}


def _runs() -> list[tuple[str, list[list[dict[str, Any]]], dict[str, dict[str, set[Any]]]]]:
    """(case, the Singer inputs of its runs in order, expected {table: {column: values}} if loaded)."""
    a, b = _HEAD + "_alpha", _HEAD + "_beta"
    e1, e2 = "é" * 32 + "1", "é" * 32 + "2"  # 65 bytes each, the same first 64
    ok = _HEAD  # exactly 63 bytes
    return [
        (
            "two columns sharing 63 bytes in one SCHEMA",
            [[_schema("s1", a, b), _rec("s1", {"id": 1, a: "A", b: "B"})]],
            {},
        ),
        (
            "a column sharing 63 bytes added by a later SCHEMA",
            [
                [
                    _schema("s2", a),
                    _rec("s2", {"id": 1, a: "A"}),
                    _schema("s2", a, b),
                    _rec("s2", {"id": 2, a: "A", b: "B"}),
                ]
            ],
            {},
        ),
        ("one 68-byte column, two runs", [[_schema("s3", a), _rec("s3", {"id": 1, a: "A"})]] * 2, {}),
        (
            "two streams sharing 64 bytes (UTF-8)",
            [
                [
                    _schema(e1, "v"),
                    _rec(e1, {"id": 1, "v": "one"}),
                    _schema(e2, "v"),
                    _rec(e2, {"id": 1, "v": "two"}),
                ]
            ],
            {},
        ),
        (
            "63-byte column and 63-byte stream, two runs",
            [[_schema("t" * 63, ok), _rec("t" * 63, {"id": n, ok: f"r{n}"})] for n in (1, 2)],
            {"t" * 63: {ok: {"r1", "r2"}}},
        ),
    ]


def _one(work: Path, url: str, msgs: list[dict[str, Any]], n: int) -> subprocess.CompletedProcess[bytes]:
    cfg = work / "target.json"
    cfg.write_text(json.dumps({"adapter": "sql", "url": url, "schema": "public", "load_method": "upsert"}))
    data = b"".join(json.dumps(m).encode() + b"\n" for m in [*msgs, {"type": "STATE", "value": {"run": n}}])
    return subprocess.run(
        [str(BIN / "target-dcapix"), "--config", str(cfg)],
        input=data,
        capture_output=True,
        cwd=work,
        env=_env(None),
        timeout=300,
        check=False,
    )


def pg_name_cases(base: Path) -> list[NameCase] | str:
    """Every case above; a string (why) when PostgreSQL is not reachable."""
    try:
        import psycopg
    except ImportError:
        return "psycopg not installed"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        return f"PostgreSQL not reachable: {exc}"
    out: list[NameCase] = []
    with admin:
        for i, (label, runs, expect) in enumerate(_runs()):
            case = NameCase(label)
            out.append(case)
            work = base / f"f4-{i}"
            work.mkdir(parents=True, exist_ok=True)
            db = f"reliab_f4_{uuid.uuid4().hex[:10]}"
            admin.execute(f'CREATE DATABASE "{db}"')
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{db}"
            try:
                sources = {
                    m["stream"]: set(m["schema"]["properties"])
                    for r in runs
                    for m in r
                    if m["type"] == "SCHEMA"
                }
                outcomes = []
                for n, msgs in enumerate(runs, 1):
                    proc = _one(work, url, msgs, n)
                    (work / f"stderr-{n}.txt").write_bytes(proc.stderr)
                    err = proc.stderr.decode("utf-8", "replace")
                    states = [ln for ln in proc.stdout.decode().splitlines() if ln.strip()]
                    if "Traceback" in err:
                        case.errors.append(f"run {n}: a traceback")
                    if proc.returncode == 0:
                        if not states or json.loads(states[-1]) != {"run": n}:
                            case.errors.append(f"run {n}: exit 0 without its final STATE")
                        outcomes.append("loaded")
                        continue
                    lines = [ln for ln in err.splitlines() if ln.startswith("target-dcapix: error:")]
                    if len(lines) != 1:
                        case.errors.append(f"run {n}: {len(lines)} error lines")
                    elif not any(f"stream {s!r}" in lines[0] for s in sources):
                        case.errors.append(f"run {n}: the error names no stream: {lines[0][:160]}")
                    if states:
                        case.errors.append(f"run {n}: a STATE printed by a refused run")
                    outcomes.append("refused")
                with psycopg.connect(url, autocommit=True) as c:
                    names: dict[str, set[str]] = {}
                    for t, col in c.execute(
                        "SELECT table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema = 'public'"
                    ):
                        names.setdefault(t, set()).add(col)
                    for t, cols in names.items():
                        if t not in sources or not cols <= sources[t]:
                            case.errors.append(
                                f"a cut name in the database: table {t[:20]}…, "
                                f"columns {sorted(cols - sources.get(t, set()))[:2]}"
                            )
                    for t, want in expect.items():
                        for col, values in want.items():
                            got = (
                                {r[0] for r in c.execute(f'SELECT "{col}" FROM "{t}"')}
                                if t in names
                                else set()
                            )
                            if got != values:
                                case.errors.append(
                                    f"{t[:10]}….{col[:10]}…: {sorted(got)} != {sorted(values)}"
                                )
                if expect and outcomes != ["loaded"] * len(runs):
                    case.errors.append(f"expected loads, got {outcomes}")
                if not expect and "loaded" in outcomes:
                    case.errors.append(f"a colliding or cut name loaded: {outcomes}")
                case.outcome = "loaded" if expect else "refused"
            except Exception as exc:  # a harness failure is a failing case, not a crash of the suite
                case.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return out
