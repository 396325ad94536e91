"""C9 redirects: an HTTP source whose server answers ``302`` to another origin must not carry the
credentials there, and a redirect loop must end (bounded requests, one error line, exit ≠ 0).

Real loopback servers: the *origin* (``127.0.0.1``) redirects ``/items`` to the *other* server —
another host name (``localhost``) or the same host on another port — which serves the records and
logs every request's headers; and an HTTPS origin (a self-signed certificate given as the CA
bundle, ``verify``) redirecting to the plain-``http://`` server (the downgrade: the credentials must
not be sent in clear text). ``dcapix run`` reads the stream to JSONL with each auth type (bearer, API
key in a header, basic, OAuth2 client credentials; every secret a canary). Pass: the run loads
every row, and the canary (or its base64 form, for basic) appears in no header the other server
received, and nowhere in the run's output files. ``/loop`` redirects to itself forever: the run must
stop with exit ≠ 0, one ``dcapix: error:`` line, no traceback, before its deadline, having sent a
bounded number of requests (httpx stops after 20 redirects; retries may repeat that at most 5 times).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.reliability.kill import _env
from tests.reliability.oracle import check_rows, read_rows
from tests.reliability.security import _self_signed, scan
from tests.reliability.truth import make_truth

__all__ = ["RedirectResult", "redirect_checks"]

#: requests a redirect loop may cost: 5 attempts of (1 + 20 redirects)
MAX_LOOP_REQUESTS = 5 * 21


@dataclass
class RedirectResult:
    runs: int = 0
    loaded: int = 0  # runs that loaded every row through the redirect
    leaks: list[str] = field(default_factory=list)  # "auth/target: header" that carried a secret
    loop_requests: int = 0
    loop_ok: bool = False
    loop_seconds: float = 0.0
    downgrade_runs: int = 0  # runs through the https -> http redirect
    downgrade_loaded: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.leaks and not self.errors and self.loop_ok and self.loaded == self.runs


class _Server:
    """A loopback server: ``/token`` (OAuth2), ``/items`` (every row; or a 302 to ``redirect_to``),
    ``/loop`` (302 to itself). Logs (path, headers) of every request."""

    def __init__(self, rows: list[dict[str, Any]], host: str = "127.0.0.1", tls: Path | None = None) -> None:
        self.rows = rows
        self.redirect_to: str | None = None
        self.log: list[tuple[str, dict[str, str]]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                outer.log.append((self.path, dict(self.headers.items())))
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self._send(200, json.dumps({"access_token": "tok-" + "x" * 8, "expires_in": 3600}).encode())

            def do_GET(self) -> None:
                outer.log.append((self.path, dict(self.headers.items())))
                url = urlsplit(self.path)
                if url.path == "/loop":
                    self._send(302, b"{}", {"location": "/loop?n=" + str(len(outer.log))})
                elif url.path == "/items" and outer.redirect_to:
                    self._send(302, b"{}", {"location": outer.redirect_to + "/items?" + url.query})
                elif url.path == "/items":
                    q = parse_qs(url.query)
                    assert not q.get("cursor")
                    self._send(200, json.dumps({"records": outer.rows, "next": None}).encode())
                else:
                    self._send(404, b"{}")

        self._srv = ThreadingHTTPServer((host, 0), H)
        self.cert: Path | None = None
        if tls is not None:  # HTTPS with the self-signed certificate made in ``tls`` (a directory)
            import ssl

            key, cert = _self_signed(tls)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self._srv.socket = ctx.wrap_socket(self._srv.socket, server_side=True)
            self.cert = cert
        self.port = self._srv.server_address[1]
        self._t = threading.Thread(target=self._srv.serve_forever, daemon=True)
        self._t.start()

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()


def _auths(canary: str, token_url: str) -> dict[str, dict[str, Any]]:
    return {
        "bearer": {"type": "bearer", "token": canary},
        "api_key": {"type": "api_key", "key": canary, "name": "X-API-Key", "location": "header"},
        "basic": {"type": "basic", "username": "reliability", "password": canary},
        "oauth2": {
            "type": "oauth2_client_credentials",
            "token_url": token_url,
            "client_id": "reliability",
            "client_secret": canary,
        },
    }


def _run(
    work: Path, base_url: str, auth: dict[str, Any], path: str, timeout: float, verify: Path | None = None
) -> tuple[int, str, float]:
    work.mkdir(parents=True, exist_ok=True)
    src: dict[str, Any] = {
        "adapter": "http",
        "base_url": base_url,
        "auth": auth,
        "timeout": {"connect": 2, "read": 2, "write": 2, "pool": 2},
        "retries": {"max_attempts": 5, "backoff_factor": 0.01, "max_backoff": 0.05},
        "streams": [{"name": "items", "path": path, "records_path": "records", "primary_keys": ["id"]}],
    }
    if verify is not None:
        src["verify"] = str(verify)
    cfg = {
        "pipelines": {"copy": {"source": src, "destination": {"adapter": "jsonl", "path": str(work / "out")}}}
    }
    (work / "dcapix.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "dc_api_x.cli", "run", "copy", "--no-progress"],
        cwd=work,
        env=_env(None),
        capture_output=True,
        text=True,
        timeout=max(timeout + 30, 900),  # a loaded machine: the deadline is checked apart
        check=False,
    )
    (work / "run.log").write_text(proc.stdout + proc.stderr)
    return proc.returncode, proc.stderr, time.monotonic() - t0


def redirect_checks(
    work: Path, canary: str, rows: int = 300, deadline: float = 60, auths: tuple[str, ...] | None = None
) -> RedirectResult:
    """Each auth type (``auths``: a subset of them), to both kinds of other origin, then the loop."""
    res = RedirectResult()
    truth = make_truth(rows, seed=9)
    origin = _Server(truth.rows)
    other_host = _Server(truth.rows, host="127.0.0.1")
    (work / "tls").mkdir(parents=True, exist_ok=True)
    secure = _Server(truth.rows, tls=work / "tls")  # C9 downgrade: https origin, 302 to http://
    try:
        http_origin, https_origin = f"http://127.0.0.1:{origin.port}", f"https://127.0.0.1:{secure.port}"
        targets = {  # name: (origin server, its URL, where it redirects /items)
            "other host": (origin, http_origin, f"http://localhost:{other_host.port}"),
            "other port": (origin, http_origin, f"http://127.0.0.1:{other_host.port}"),
            "https to http": (secure, https_origin, f"http://127.0.0.1:{other_host.port}"),
        }
        needles = {canary, base64.b64encode(f"reliability:{canary}".encode()).decode()}
        for tname, (server, base_url, target) in targets.items():
            server.redirect_to = target
            for aname, auth in _auths(canary, f"{base_url}/token").items():
                if auths is not None and aname not in auths:
                    continue
                before = len(other_host.log)
                rdir = work / f"{aname}-{tname.replace(' ', '-')}"
                if server.cert is not None and aname == "oauth2":  # the provider's own CA option
                    auth = {**auth, "verify": str(server.cert)}
                rc, err, _ = _run(rdir, base_url, auth, "/items", deadline, verify=server.cert)
                res.runs += 1
                got = other_host.log[before:]
                if not got:
                    res.errors.append(
                        f"{aname}/{tname}: the redirect was not followed (exit {rc}: {err[-200:]!r})"
                    )
                for _, headers in got:
                    for k, v in headers.items():
                        if any(n in v for n in needles) or "tok-xxxxxxxx" in v:
                            res.leaks.append(f"{aname}/{tname}: {k}")
                res.downgrade_runs += tname == "https to http"
                if rc == 0 and check_rows(truth, read_rows("jsonl", rdir / "out")).exact:
                    res.loaded += 1
                    res.downgrade_loaded += tname == "https to http"
                elif rc != 0:
                    res.errors.append(f"{aname}/{tname}: exit {rc}: {err.strip()[-200:]!r}")
                hits = scan(canary, rdir)
                if hits:
                    res.errors.append(f"{aname}/{tname}: canary in {hits[:2]}")
        # a redirect loop
        before = len(origin.log)
        rc, err, secs = _run(
            work / "loop", f"http://127.0.0.1:{origin.port}", _auths(canary, "")["bearer"], "/loop", deadline
        )
        res.loop_requests = len(origin.log) - before
        res.loop_seconds = secs
        lines = [x for x in err.splitlines() if x.strip()]
        res.loop_ok = (
            rc != 0
            and res.loop_requests <= MAX_LOOP_REQUESTS
            and secs < deadline
            and "Traceback" not in err
            and sum(x.startswith("dcapix: error:") for x in lines) == 1
        )
        if not res.loop_ok:
            res.errors.append(f"loop: exit {rc}, {res.loop_requests} requests, {secs:.1f} s: {err[-300:]!r}")
    finally:
        origin.close()
        other_host.close()
        secure.close()
    return res
