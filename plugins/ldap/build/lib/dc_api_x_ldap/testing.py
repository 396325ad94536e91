"""A real OpenLDAP ``slapd`` for tests and benchmarks (no mocks): :class:`Slapd`.

::

    from dc_api_x_ldap.testing import Slapd, people_ldif

    with Slapd(stats_log=True) as srv:          # throwaway config dir, mdb database, cn=Monitor
        srv.load(people_ldif(10_000))           # slapadd before the server starts: fast
        srv.start()
        srv.url          # ldap://127.0.0.1:PORT
        srv.ldapi_url    # ldapi://%2Ftmp%2F...%2Fldapi  (SASL EXTERNAL maps root to the admin DN)
        srv.search_ops("ou=people,dc=example,dc=com")  # what slapd logged: one item per page

The server listens on 127.0.0.1 (a free port) and on a UNIX socket; it is killed by :meth:`stop`
(also on ``__exit__`` and at interpreter exit) and its directory removed. It needs the Debian
packages ``slapd`` and ``ldap-utils`` (``bash .ci/start-slapd.sh`` installs them as root);
:func:`slapd_binary` says whether they are there.
"""

from __future__ import annotations

import atexit
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ADMIN_DN",
    "ADMIN_PASSWORD",
    "SUFFIX",
    "TEST_SCHEMA",
    "SearchOp",
    "Slapd",
    "SlapdUnavailable",
    "ldif_entry",
    "people_ldif",
    "slapd_binary",
]

SUFFIX = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "secret"

#: A small schema with one attribute of each JSON type the adapter maps (boolean, integer,
#: generalized time, binary, multi-valued strings), loaded next to core/cosine/nis/inetorgperson.
TEST_SCHEMA = """\
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'dcapixActive'
  EQUALITY booleanMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'dcapixScore'
  EQUALITY integerMatch ORDERING integerOrderingMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'dcapixSince'
  EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.4 NAME 'dcapixBlob'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.5 NAME 'dcapixTag'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.99999.1.6 NAME 'dcapixCounts'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'dcapixRecord' AUXILIARY
  MAY ( dcapixActive $ dcapixScore $ dcapixSince $ dcapixBlob $ dcapixTag $ dcapixCounts ) )
"""

_SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
_SLAPD_PATHS = ("/usr/sbin/slapd", "/usr/local/libexec/slapd", "/usr/libexec/slapd")
_MODULE_PATHS = ("/usr/lib/ldap", "/usr/lib/x86_64-linux-gnu/openldap", "/usr/lib64/openldap")
_SCHEMA_DIRS = ("/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema")

_running: set[Slapd] = set()


class SlapdUnavailable(RuntimeError):
    """slapd (or slapadd) is not installed or did not start; the message says why."""


def slapd_binary() -> str | None:
    """The path of the ``slapd`` executable, or ``None`` when it is not installed."""
    for p in _SLAPD_PATHS:
        if os.access(p, os.X_OK):
            return p
    return shutil.which("slapd")


def _first_dir(candidates: Iterable[str], probe: str) -> str | None:
    for d in candidates:
        if os.path.exists(os.path.join(d, probe)):
            return d
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class SearchOp:
    """One search slapd logged (``loglevel stats``): the connection, operation, base, filter and
    how many entries the server sent for it."""

    conn: int
    op: int
    base: str
    scope: int
    filter: str
    nentries: int | None


_SRCH = re.compile(r'conn=(\d+) op=(\d+) SRCH base="([^"]*)" scope=(\d+) deref=\d+ filter="([^"]*)"')
_RESULT = re.compile(r"conn=(\d+) op=(\d+) SEARCH RESULT tag=\d+ err=\d+ .*?nentries=(\d+)")


class Slapd:
    """A throwaway slapd: config, database and socket in one temporary directory.

    :param suffix: the naming context of the mdb database.
    :param stats_log: run with ``-d stats`` and keep the log (:meth:`search_ops` reads it); off for
        benchmarks (logging costs the server time).
    :param size_limit: the server's ``sizelimit`` for ordinary users (the admin has none), so a
        test can show that paging gets past it.
    """

    def __init__(self, *, suffix: str = SUFFIX, stats_log: bool = True, size_limit: int = 500) -> None:
        binary = slapd_binary()
        if binary is None:
            raise SlapdUnavailable(
                "slapd is not installed (Debian: apt-get install slapd ldap-utils; "
                "or run bash .ci/start-slapd.sh as root)"
            )
        self.binary = binary
        self.slapadd = shutil.which("slapadd") or os.path.join(os.path.dirname(binary), "slapadd")
        self.module_path = _first_dir(_MODULE_PATHS, "back_mdb.so")
        self.schema_dir = _first_dir(_SCHEMA_DIRS, "core.schema")
        if self.schema_dir is None:
            raise SlapdUnavailable("OpenLDAP's schema files (core.schema) were not found")
        self.suffix = suffix
        self.admin_dn = f"cn=admin,{suffix}"
        self.admin_password = ADMIN_PASSWORD
        self.stats_log = stats_log
        self.size_limit = size_limit
        # short path: a UNIX socket path is limited to ~107 bytes
        self.dir = Path(tempfile.mkdtemp(prefix="slapd-", dir="/tmp"))
        self.port = _free_port()
        self.socket_path = str(self.dir / "ldapi")
        self.log_path = self.dir / "slapd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        (self.dir / "db").mkdir()
        (self.dir / "dcapix-test.schema").write_text(TEST_SCHEMA)
        self.conf_path = self.dir / "slapd.conf"
        self.conf_path.write_text(self._config())

    # -- configuration ----------------------------------------------------------------------------
    def _config(self) -> str:
        lines = [f"include {self.schema_dir}/{s}.schema" for s in _SCHEMAS]
        lines.append(f"include {self.dir}/dcapix-test.schema")
        if self.module_path:
            lines += [f"modulepath {self.module_path}", "moduleload back_mdb"]
        lines += [
            f"pidfile {self.dir}/slapd.pid",
            f"argsfile {self.dir}/slapd.args",
            "loglevel stats" if self.stats_log else "loglevel 0",
            f"sizelimit {self.size_limit}",
            # SASL EXTERNAL over ldapi:// : the peer's uid/gid identity becomes the admin DN
            'authz-regexp "gidNumber=[0-9]+[+]uidNumber=[0-9]+,cn=peercred,cn=external,cn=auth" '
            f'"{self.admin_dn}"',
            "",
            "database monitor",
            f'access to * by dn.exact="{self.admin_dn}" read by * none',
            "",
            "database mdb",
            f'suffix "{self.suffix}"',
            f'rootdn "{self.admin_dn}"',
            f"rootpw {self.admin_password}",
            f"directory {self.dir}/db",
            "maxsize 4294967296",
            "index objectClass eq",
            "index uid eq",
            "index entryCSN,entryUUID eq",
            "index modifyTimestamp eq",
            # readers: any bound user; the anonymous one sees the DIT too (the paging tests use it)
            "access to attrs=userPassword by self write by anonymous auth by * none",
            "access to * by * read",
        ]
        return "\n".join(lines) + "\n"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldapi_url(self) -> str:
        return "ldapi://" + urllib.parse.quote(self.socket_path, safe="")

    # -- data -------------------------------------------------------------------------------------
    def load(self, ldif: str | Iterable[str]) -> None:
        """Add entries with ``slapadd`` (offline: call before :meth:`start`)."""
        if self.proc is not None:
            raise RuntimeError("slapadd runs before start(); use an LDAP client on a running server")
        path = self.dir / "load.ldif"
        with path.open("w", encoding="utf-8") as f:
            if isinstance(ldif, str):
                f.write(ldif)
            else:
                for chunk in ldif:
                    f.write(chunk)
        res = subprocess.run(
            [self.slapadd, "-q", "-f", str(self.conf_path), "-b", self.suffix, "-l", str(path)],
            capture_output=True,
            text=True,
        )
        path.unlink()
        if res.returncode != 0:
            raise SlapdUnavailable(f"slapadd failed ({res.returncode}): {res.stderr.strip()[-500:]}")

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> Slapd:
        urls = f"{self.url}/ ldapi://{urllib.parse.quote(self.socket_path, safe='')}"
        args = [self.binary, "-f", str(self.conf_path), "-h", urls]
        # -d keeps slapd in the foreground (so it dies with its Popen); "stats" logs each operation
        args += ["-d", "stats" if self.stats_log else "0"]
        self._log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        _running.add(self)
        _ensure_atexit()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.log_path.read_text(errors="replace")[-800:]
                self.stop()
                raise SlapdUnavailable(f"slapd exited with {self.proc.returncode}: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if os.path.exists(self.socket_path):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise SlapdUnavailable(f"slapd did not listen on 127.0.0.1:{self.port} within {timeout}s")

    def stop(self) -> None:
        """Kill the server (SIGTERM, then SIGKILL) and remove its directory. Safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        _running.discard(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Slapd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the server saw ----------------------------------------------------------------------
    def log_text(self) -> str:
        if self._log_file is not None:
            self._log_file.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """The current length of the stats log (pass it to :meth:`search_ops` as ``since``)."""
        return len(self.log_text())

    def search_ops(self, base: str | None = None, *, since: int = 0, settle: float = 0.2) -> list[SearchOp]:
        """The searches slapd logged after offset ``since`` (of base ``base``, case-insensitive),
        with the number of entries it returned for each — one item per page of a paged search."""
        if not self.stats_log:
            raise RuntimeError("start the server with stats_log=True to see its operations")
        time.sleep(settle)  # slapd writes the result line right after the last entry
        text = self.log_text()[since:]
        ops: dict[tuple[int, int], SearchOp] = {}
        order: list[tuple[int, int]] = []
        for m in _SRCH.finditer(text):
            key = (int(m.group(1)), int(m.group(2)))
            ops[key] = SearchOp(key[0], key[1], m.group(3), int(m.group(4)), m.group(5), None)
            order.append(key)
        for m in _RESULT.finditer(text):
            key = (int(m.group(1)), int(m.group(2)))
            if key in ops:
                o = ops[key]
                ops[key] = SearchOp(o.conn, o.op, o.base, o.scope, o.filter, int(m.group(3)))
        out = [ops[k] for k in order]
        if base is not None:
            out = [o for o in out if o.base.lower() == base.lower()]
        return out


def _ensure_atexit() -> None:
    if not getattr(_ensure_atexit, "done", False):
        _ensure_atexit.done = True  # type: ignore[attr-defined]
        atexit.register(_stop_all)


def _stop_all() -> None:
    for srv in list(_running):
        srv.stop()


# ------------------------------------------------------------------------------------ test data
def _ldif_value(name: str, value: str | bytes) -> str:
    if isinstance(value, bytes):
        return f"{name}:: {base64.b64encode(value).decode()}\n"
    raw = value.encode("utf-8")
    unsafe = (
        not raw
        or raw[0:1] in (b" ", b":", b"<")
        or raw.endswith(b" ")
        or any(b > 126 or b in (0, 10, 13) for b in raw)
    )
    if unsafe:
        return f"{name}:: {base64.b64encode(raw).decode()}\n"
    return f"{name}: {value}\n"


def ldif_entry(dn: str, attrs: dict[str, Any]) -> str:
    """One LDIF entry (values: str, bytes or lists of them)."""
    out = [_ldif_value("dn", dn)]
    for name, values in attrs.items():
        for v in values if isinstance(values, list) else [values]:
            out.append(_ldif_value(name, v))
    return "".join(out) + "\n"


def person(i: int, suffix: str = SUFFIX, ou: str = "people") -> tuple[str, dict[str, Any]]:
    """The ``i``-th test person: inetOrgPerson + posixAccount + the test schema's auxiliary class,
    with single- and multi-valued strings, integers, a boolean, a time, binary values and non-ASCII."""
    uid = f"user{i:06d}"
    attrs: dict[str, Any] = {
        "objectClass": ["top", "inetOrgPerson", "posixAccount", "dcapixRecord"],
        "uid": uid,
        "cn": f"User {i} Ñandú",
        "sn": f"Family{i % 97}",
        "givenName": f"Given{i}",
        "mail": [f"{uid}@example.com"] + ([f"{uid}.alt@example.org"] if i % 3 == 0 else []),
        "uidNumber": str(10000 + i),
        "gidNumber": str(100 + i % 7),
        "homeDirectory": f"/home/{uid}",
        "dcapixActive": "TRUE" if i % 2 else "FALSE",
        "dcapixScore": str(i * 7 - 35000),
        "dcapixSince": f"2024{1 + i % 12:02d}{1 + i % 28:02d}{i % 24:02d}{i % 60:02d}{(i * 7) % 60:02d}Z",
        "dcapixTag": [f"five-{i % 5}", f"eleven-{i % 11}"] if i % 4 else [],
        "dcapixCounts": [str(i % 10), str(-(i % 13) - 1)] if i % 5 == 0 else [],
    }
    if i % 10 == 0:
        attrs["dcapixBlob"] = bytes([(i + k) % 256 for k in range(24)])
    if i % 7 == 0:
        attrs["telephoneNumber"] = ["+1 555 0100", f"+1 555 {i % 10000:04d}"]
        attrs["description"] = f"line one of {i}\nline two: ünïcödé"
    return f"uid={uid},ou={ou},{suffix}", {k: v for k, v in attrs.items() if v != []}


def people_ldif(n: int, *, suffix: str = SUFFIX, ou: str = "people", groups: int = 0) -> Iterator[str]:
    """LDIF for the suffix entry, ``ou=people`` with ``n`` :func:`person` entries and ``groups``
    ``groupOfNames`` under ``ou=groups`` (each with up to 50 members)."""
    dc = suffix.split(",")[0].split("=")[1]
    yield ldif_entry(suffix, {"objectClass": ["top", "dcObject", "organization"], "dc": dc, "o": "Example"})
    yield ldif_entry(f"ou={ou},{suffix}", {"objectClass": ["top", "organizationalUnit"], "ou": ou})
    for i in range(n):
        yield ldif_entry(*person(i, suffix, ou))
    if groups:
        yield ldif_entry(
            f"ou=groups,{suffix}", {"objectClass": ["top", "organizationalUnit"], "ou": "groups"}
        )
        for g in range(groups):
            members = [f"uid=user{m:06d},ou={ou},{suffix}" for m in range(g, min(n, g + 50 * groups), groups)]
            members = members[:50] or [f"cn=admin,{suffix}"]
            yield ldif_entry(
                f"cn=group{g},ou=groups,{suffix}",
                {"objectClass": ["top", "groupOfNames"], "cn": f"group{g}", "member": members},
            )


def wait_for(cond: Any, timeout: float = 5.0) -> None:
    """Poll ``cond()`` until it is true (``TimeoutError`` after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)
