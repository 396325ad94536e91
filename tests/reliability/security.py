"""Security checks (cases G1-G3, C3, C9): the secret canary, hostile stream/column names, TLS.

* :func:`scan` — the canary search: every file under the given roots (outputs, logs, state
  databases, temp files) and every captured output, as bytes. Expected count: 0.
* :func:`hostile_names` — one ``target-dcapix`` run per hostile stream name to a file destination
  inside a deep sandbox with sentinel files: new files outside the output root are counted.
* :func:`pg_hostile` — hostile stream and column names and SQL-looking values into a real
  PostgreSQL database of our own with ``log_statement=all`` set *for our sessions only*
  (``options=-c log_statement=all``); the statements the server logged for that database are
  parsed: a ``;``-stacked statement or a DROP/DELETE/TRUNCATE/ALTER … outside quotes is unintended.
* :func:`secret_paths` — error paths that carry a secret (wrong OAuth secret, a 401 echoing the
  token, a PostgreSQL password in a failing URL, in a URL query, ``--dry-run``, ``--via-singer``
  temp configs) — each output scanned for the canary.
* :func:`tls_checks` — a real HTTPS server with a self-signed certificate: refused by default with
  one error line; ``verify: false`` works and logs a warning.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

__all__ = ["HOSTILE_NAMES", "new_canary", "scan"]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("DCAPIX_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
PG_LOG = Path(os.environ.get("DCAPIX_TEST_PG_LOG", "/var/log/postgresql/postgresql-15-main.log"))


def new_canary() -> str:
    return f"CANARY-{uuid.uuid4().hex}"


#: files that hold the secret on purpose (the configuration the test wrote)
CONFIG_FILES = ("dcapix.yml", "target.json")


def scan(
    canary: str, *roots: Path, texts: tuple[str | bytes, ...] = (), skip: tuple[str, ...] = CONFIG_FILES
) -> list[str]:
    """Where ``canary`` occurs: file paths under ``roots`` (but the test's own config files) and
    indexes of ``texts``."""
    needle = canary.encode()
    hits = []
    for root in roots:
        if root.is_file():
            files = [root]
        elif root.is_dir():
            files = [Path(d, f) for d, _, fs in os.walk(root) for f in fs]
        else:
            continue
        for f in files:
            if f.name in skip:
                continue
            try:
                if needle in f.read_bytes() or needle in f.name.encode():
                    hits.append(str(f))
            except OSError:
                continue
    for i, t in enumerate(texts):
        if needle in (t if isinstance(t, bytes) else t.encode("utf-8", "replace")):
            hits.append(f"<output {i}>")
    return hits


def _env(tmp: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DCAPIX_CRASH_POINT"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return env


# ----------------------------------------------------------------------------------- G1 names
HOSTILE_NAMES = [
    "../../etc/passwd",
    "../../../../../../../../tmp/dcapix-escape",
    "/tmp/dcapix-absolute",
    "a/../../b",
    "a/b/c",
    ".",
    "..",
    "...",
    "",
    " ",
    "nul\x00byte",
    "x" * 10_000,
    "con",
    "NUL",
    "aux.txt",
    "com1",
    "\u202eevil\u202c",
    "emoji-😀",
    "漢字",
    "new\nline",
    "tab\tname",
    "back\\slash",
    "..\\..\\win",
    "C:\\Windows\\x",
    "~",
    "~root",
    "$HOME",
    "${HOME}",
    "`id`",
    "$(id)",
    "a;b",
    "a|b",
    "a&b",
    "a>b",
    "a<b",
    "*",
    "?",
    "[a]",
    "{a}",
    "'quote'",
    '"dq"',
    'x"; DROP TABLE y; --',
    "select",
    "-rf",
    "--help",
    ".hidden",
    "trailing.",
    "trailing ",
    "%2e%2e%2fetc",
    "..%2f..%2f",
    "\t",
    "😀" * 100,
    "a" * 255,
    "a" * 256,
]


@dataclass
class NamesResult:
    names: int = 0
    loaded: int = 0
    refused: int = 0
    bad: list[str] = field(default_factory=list)  # tracebacks, silent drops
    outside: list[str] = field(default_factory=list)  # files created outside the output root


def _snapshot(root: Path) -> set[str]:
    return {str(Path(d, f)) for d, _, fs in os.walk(root) for f in fs} | {
        str(Path(d, x)) for d, ds, _ in os.walk(root) for x in ds
    }


def _one_name(i: int, name: str, dest: str, base: Path) -> tuple[str, str, list[str]]:
    sandbox = base / f"n{i:03d}"
    shutil.rmtree(sandbox, ignore_errors=True)
    root = sandbox / "a" / "b" / "c" / "d" / "e" / "f" / "g" / "h" / "out"
    root.mkdir(parents=True)
    for d in (sandbox, root.parent):
        (d / "sentinel").write_text("s")
    before = _snapshot(sandbox)
    tmp_before = set(os.listdir("/tmp"))
    cfg = sandbox / "target.json"
    cfg.write_text(json.dumps({"adapter": dest, "path": str(root)}))
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "v": {"type": ["string", "null"]}}}
    lines = [
        {"type": "SCHEMA", "stream": name, "schema": schema, "key_properties": ["id"]},
        {"type": "RECORD", "stream": name, "record": {"id": 1, "v": "x"}},
        {"type": "STATE", "value": {"n": 1}},
    ]
    data = b"".join(json.dumps(m).encode() + b"\n" for m in lines)
    proc = subprocess.run(
        [str(BIN / "target-dcapix"), "--config", str(cfg)],
        input=data,
        capture_output=True,
        cwd=sandbox,
        env=_env(),
        timeout=120,
        check=False,
    )
    after = _snapshot(sandbox)
    outside = [
        p
        for p in after - before
        if not (p + os.sep).startswith(str(root) + os.sep)
        and p != str(root)
        and not p.endswith(("target.json",))
    ]
    # the corpus' absolute / deep names aim at /tmp/dcapix-escape and /tmp/dcapix-absolute (other
    # processes on the machine create their own /tmp/dcapix-* entries: only these two count)
    outside += [
        f"/tmp/{x}"
        for x in set(os.listdir("/tmp")) - tmp_before
        if x.startswith(("dcapix-escape", "dcapix-absolute"))
    ]
    err = proc.stderr.decode("utf-8", "replace")
    if "Traceback" in err:
        return "bad", f"{name[:40]!r}: traceback", outside
    if proc.returncode == 0:
        files = [
            p
            for p in after - before
            if p.startswith(str(root)) and Path(p).is_file() and not Path(p).name.startswith(("_", "."))
        ]
        if not files:
            return "bad", f"{name[:40]!r}: exit 0 but no data file", outside
        return "loaded", "", outside
    lines_err = [ln for ln in err.splitlines() if ln.startswith("target-dcapix: error")]
    if len(lines_err) != 1:
        return "bad", f"{name[:40]!r}: exit {proc.returncode} with {len(lines_err)} error lines", outside
    return "refused", lines_err[0][:160], outside


def hostile_names(
    base: Path,
    names: list[str] | None = None,
    dests: tuple[str, ...] = ("jsonl", "csv", "parquet"),
    workers: int = 2,
) -> NamesResult:
    names = HOSTILE_NAMES if names is None else names
    jobs = [(i, n, d) for i, (n, d) in enumerate((n, d) for n in names for d in dests)]
    res = NamesResult(names=len(jobs))
    with ThreadPoolExecutor(workers) as pool:
        for kind, detail, outside in pool.map(lambda j: _one_name(j[0], j[1], j[2], base), jobs):
            if kind == "loaded":
                res.loaded += 1
            elif kind == "refused":
                res.refused += 1
            else:
                res.bad.append(detail)
            res.outside += outside
    return res


# ----------------------------------------------------------------------------------- G2 SQL
_HOSTILE_SQL_NAMES = [
    'x"; DROP TABLE y; --',
    "select",
    "order",
    "a`b",
    "a]b",
    "new\nline",
    "semi;colon",
    "Robert'); DROP TABLE y;--",
    '""',
    'quote"inside',
    "%s",
    "$1",
    "\\",
    "a b",
    "UPPER",
]
#: the adapter's own staging tables (temporary, in pg_temp) are the only tables it drops
_EXPECTED_DROP = re.compile(r'^DROP TABLE IF EXISTS pg_temp\s*\.\s*"_dcapix_[A-Za-z0-9_]*"\s*;?$', re.I)
_UNINTENDED = re.compile(r"\b(DROP|DELETE|TRUNCATE|GRANT|REVOKE|COPY\s+\S+\s+TO|ALTER\s+ROLE)\b", re.I)


def _strip_quoted(sql: str) -> str:
    """``sql`` with string literals, quoted identifiers and dollar-quoted bodies blanked out."""
    out, i, n = [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            out.append(ch + ch)
            i = j + 1
        elif ch == "$" and (m := re.match(r"\$[A-Za-z_]*\$", sql[i:])):
            end = sql.find(m.group(0), i + len(m.group(0)))
            out.append("$$")
            i = n if end < 0 else end + len(m.group(0))
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@dataclass
class SqlResult:
    available: bool = True
    reason: str = ""
    streams: int = 0
    columns: int = 0
    loaded: int = 0
    refused: int = 0
    statements: int = 0
    unintended: list[str] = field(default_factory=list)
    canary_table_ok: bool = True
    values_exact: bool = True
    errors: list[str] = field(default_factory=list)


def pg_hostile(base: Path) -> SqlResult:
    res = SqlResult()
    try:
        import psycopg
    except ImportError:
        return SqlResult(False, "psycopg not installed")
    if not os.access(PG_LOG, os.R_OK):
        return SqlResult(False, f"the server log {PG_LOG} is not readable (set DCAPIX_TEST_PG_LOG)")
    db = f"dcapix_rel_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        return SqlResult(False, f"PostgreSQL not reachable: {exc}")
    base.mkdir(parents=True, exist_ok=True)
    with admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{db}"
    try:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE TABLE y (id int)")
            c.execute("INSERT INTO y VALUES (42)")
        log_start = PG_LOG.stat().st_size
        dest = {
            "adapter": "sql",
            "url": url + "?options=-clog_statement%3Dall",
            "schema": "public",
            "load_method": "upsert",
        }
        cfg = base / "target.json"
        cfg.write_text(json.dumps(dest))
        lines: list[dict[str, Any]] = []
        values = [
            "'); DROP TABLE y; --",
            '"; DROP TABLE y; --',
            "$$; DROP TABLE y; $$",
            "\\'; DROP TABLE y; --",
        ]
        for k, name in enumerate(_HOSTILE_SQL_NAMES):
            stream = f"s{k}_{name}"
            props = {"id": {"type": "integer"}, name: {"type": ["string", "null"]}}
            lines.append(
                {
                    "type": "SCHEMA",
                    "stream": stream,
                    "schema": {"type": "object", "properties": props},
                    "key_properties": ["id"],
                }
            )
            for j, v in enumerate(values):
                lines.append({"type": "RECORD", "stream": stream, "record": {"id": j, name: v}})
            res.streams += 1
            res.columns += 1
        lines.append({"type": "STATE", "value": {"n": 1}})
        data = b"".join(json.dumps(m).encode() + b"\n" for m in lines)
        proc = subprocess.run(
            [str(BIN / "target-dcapix"), "--config", str(cfg)],
            input=data,
            capture_output=True,
            cwd=base,
            env=_env(),
            timeout=300,
            check=False,
        )
        (base / "stderr.txt").write_bytes(proc.stderr)
        err = proc.stderr.decode("utf-8", "replace")
        if "Traceback" in err:
            res.errors.append("traceback: " + err.strip().splitlines()[-1][:200])
        if proc.returncode == 0:
            res.loaded = res.streams
        else:
            res.refused = 1
            res.errors.append("refused: " + " | ".join(ln for ln in err.splitlines() if "error" in ln)[:300])
        with psycopg.connect(url, autocommit=True) as c:
            res.canary_table_ok = c.execute("SELECT count(*) FROM y WHERE id = 42").fetchone() == (1,)
            if proc.returncode == 0:
                tables = [
                    r[0]
                    for r in c.execute(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema='public' AND table_name<>'y'"
                    )
                ]
                got = set()
                for t in tables:
                    qt = '"' + t.replace('"', '""') + '"'
                    cols = [
                        r[0]
                        for r in c.execute(
                            "SELECT column_name FROM information_schema.columns "
                            "WHERE table_name=%s AND column_name<>'id'",
                            (t,),
                        )
                    ]
                    for col in cols:
                        qc = '"' + col.replace('"', '""') + '"'
                        got |= {r[0] for r in c.execute(f"SELECT {qc} FROM {qt}")}
                res.values_exact = got == set(values) and len(tables) == len(_HOSTILE_SQL_NAMES)
                if not res.values_exact:
                    res.errors.append(f"{len(tables)} tables; values {sorted(got)[:4]}")
        log = PG_LOG.read_bytes()[log_start:].decode("utf-8", "replace")
        stmts = _statements(log, db)
        res.statements = len(stmts)
        for s in stmts:
            bare = _strip_quoted(s)
            body = bare.strip().rstrip(";")
            if _EXPECTED_DROP.match(s.strip()):
                continue
            if ";" in body or _UNINTENDED.search(bare):
                res.unintended.append(s[:200])
        if res.statements == 0:
            res.errors.append(f"no statement logged for database {db} in {PG_LOG}")
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return res


def _statements(log: str, db: str) -> list[str]:
    """Statements the server logged for ``db`` (multi-line statements joined)."""
    out: list[str] = []
    cur: list[str] | None = None
    marker = f"@{db} "
    head = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    for line in log.splitlines():
        if head.match(line):
            if cur is not None:
                out.append("\n".join(cur))
                cur = None
            if marker in line and ("LOG:  statement: " in line or "LOG:  execute " in line):
                cur = [line.split("LOG:  ", 1)[1].split(": ", 1)[1]]
        elif cur is not None and not line.startswith(("\t", "DETAIL", "STATEMENT")):
            cur.append(line)
        elif cur is not None and line.startswith("\t"):
            cur.append(line[1:])
    if cur is not None:
        out.append("\n".join(cur))
    return out


# ----------------------------------------------------------------------------------- G3 secrets
@dataclass
class SecretCase:
    name: str
    rc: int
    hits: list[str]
    one_line: bool
    detail: str = ""


def _dcapix(work: Path, args: list[str], tmp: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "dc_api_x.cli", *args],
        cwd=work,
        env=_env(tmp),
        capture_output=True,
        timeout=120,
        check=False,
    )


def secret_paths(base: Path, canary: str) -> list[SecretCase]:
    from tests.reliability.faultserver import FaultServer
    from tests.reliability.truth import make_truth

    out: list[SecretCase] = []
    truth = make_truth(30, seed=3, width=10)

    def case(name: str, pipeline: dict[str, Any], args: list[str], expect_fail: bool = True) -> None:
        work = base / name.replace(" ", "_")
        shutil.rmtree(work, ignore_errors=True)
        tmp = work / "tmp"
        tmp.mkdir(parents=True)
        (work / "dcapix.yml").write_text(yaml.safe_dump({"pipelines": {"p": pipeline}}, sort_keys=False))
        proc = _dcapix(work, [*args], tmp)
        (work / "out.txt").write_bytes(proc.stdout + proc.stderr)
        # the config file itself holds the secret: everything else under work must not
        (work / "dcapix.yml").unlink()
        hits = scan(canary, work)
        err = proc.stderr.decode("utf-8", "replace")
        errs = [ln for ln in err.splitlines() if ln.startswith("dcapix: error")]
        ok_lines = (len(errs) == 1) if expect_fail else proc.returncode == 0
        out.append(
            SecretCase(
                name,
                proc.returncode,
                hits,
                ok_lines and "Traceback" not in err,
                (errs[0] if errs else err.strip().splitlines()[-1] if err.strip() else "")[:200],
            )
        )

    jsonl = {"adapter": "jsonl", "path": "out"}
    with FaultServer(
        truth.rows, seed=1, fault_rate=0.0, secret=canary, token_prefix=f"{canary}-tok", token_uses=2
    ) as srv:
        http = {
            "adapter": "http",
            "base_url": srv.url,
            "retries": {"backoff_factor": 0.01},
            "pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"},
            "streams": [
                {
                    "name": "items",
                    "path": "/items",
                    "records_path": "records",
                    "primary_keys": ["id"],
                    "params": {"limit": 5},
                }
            ],
        }
        oauth = {"type": "oauth2_client_credentials", "token_url": f"{srv.url}/token", "client_id": "c"}
        case(
            "oauth wrong secret",
            {"source": {**http, "auth": {**oauth, "client_secret": canary + "x"}}, "destination": jsonl},
            ["run", "p", "--no-progress"],
        )
        case(
            "401 echoing the token",
            {"source": {**http, "auth": {"type": "bearer", "token": canary}}, "destination": jsonl},
            ["run", "p", "--no-progress"],
        )
        case(
            "token expiry with echo",
            {"source": {**http, "auth": {**oauth, "client_secret": canary}}, "destination": jsonl},
            ["run", "p", "--no-progress"],
            expect_fail=False,
        )
        case(
            "debug logging",
            {"source": {**http, "auth": {**oauth, "client_secret": canary}}, "destination": jsonl},
            ["-v", "run", "p", "--no-progress"],
            expect_fail=False,
        )
        case(
            "dry-run plan",
            {"source": {**http, "auth": {**oauth, "client_secret": canary}}, "destination": jsonl},
            ["run", "p", "--dry-run"],
            expect_fail=False,
        )
        case(
            "via-singer temp configs",
            {"source": {**http, "auth": {**oauth, "client_secret": canary}}, "destination": jsonl},
            ["run", "p", "--no-progress", "--via-singer"],
            expect_fail=False,
        )
    from tests.reliability.truth import write_source

    base.mkdir(parents=True, exist_ok=True)
    write_source(base / "src.db", truth)
    src = {"adapter": "sql", "url": f"sqlite:///{base / 'src.db'}"}
    case(
        "pg password, refused connection",
        {
            "source": src,
            "destination": {"adapter": "sql", "url": f"postgresql://postgres:{canary}@127.0.0.1:1/x"},
        },
        ["run", "p", "--no-progress"],
    )
    case(
        "pg wrong password",
        {
            "source": src,
            "destination": {
                "adapter": "sql",
                "url": f"postgresql://postgres:{canary}@127.0.0.1:5432/postgres",
            },
        },
        ["run", "p", "--no-progress"],
    )
    case(
        "password in URL query",
        {
            "source": src,
            "destination": {
                "adapter": "sql",
                "url": f"postgresql://127.0.0.1:1/x?user=postgres&password={canary}",
            },
        },
        ["run", "p", "--no-progress"],
    )
    return out


# ----------------------------------------------------------------------------------- C9 TLS
def _self_signed(d: Path) -> tuple[Path, Path]:
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@dataclass
class TlsResult:
    default_refused: bool = False
    default_line: str = ""
    off_works: bool = False
    off_warned: bool = False
    ca_bundle_works: bool = False


def tls_checks(base: Path) -> TlsResult:
    base.mkdir(parents=True, exist_ok=True)
    key, cert = _self_signed(base)

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps([{"id": 1}, {"id": 2}]).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{srv.server_address[1]}"
    res = TlsResult()
    try:
        for mode, verify in (("default", None), ("off", False), ("ca", str(cert))):
            work = base / mode
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            source: dict[str, Any] = {
                "adapter": "http",
                "base_url": url,
                "retries": 1,
                "streams": [{"name": "items", "path": "/items", "primary_keys": ["id"]}],
            }
            if verify is not None:
                source["verify"] = verify
            (work / "dcapix.yml").write_text(
                yaml.safe_dump(
                    {
                        "pipelines": {
                            "p": {"source": source, "destination": {"adapter": "jsonl", "path": "out"}}
                        }
                    }
                )
            )
            proc = _dcapix(work, ["run", "p", "--no-progress"], work)
            err = proc.stderr.decode("utf-8", "replace")
            if mode == "default":
                lines = [ln for ln in err.splitlines() if ln.startswith("dcapix: error")]
                res.default_refused = proc.returncode != 0 and len(lines) == 1 and "Traceback" not in err
                res.default_line = (lines[0] if lines else err.strip()[-200:])[:200]
            elif mode == "off":
                res.off_works = proc.returncode == 0
                res.off_warned = "verification is OFF" in err and "WARNING" in err
            else:
                res.ca_bundle_works = proc.returncode == 0
    finally:
        srv.shutdown()
        srv.server_close()
    return res
