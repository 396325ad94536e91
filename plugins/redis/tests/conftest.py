"""Fixtures of the dc-api-x-redis tests: a real redis-server per test session, a real HTTP server.

``redis_server`` starts Debian's ``redis-server`` on a free 127.0.0.1 port in a temporary directory
(no persistence) and kills it at the end of the session; ``.ci/start-redis.sh`` installs it when it
is missing. The tests are skipped, loudly, only when it cannot be installed. ``redis_url`` empties
the server before each test.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent

try:
    import dc_api_x_redis  # noqa: F401
except ImportError:  # pragma: no cover - the plugin is not installed in this environment
    pytest.skip(
        "!!! dc-api-x-redis is not installed: pip install -e ./plugins/redis -- Redis plugin tests SKIPPED",
        allow_module_level=True,
    )


@dataclass
class RedisServer:
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    directory: Path

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def client(self, db: int = 0) -> Any:
        import redis

        return redis.Redis(host=self.host, port=self.port, db=db)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis_server_binary() -> str | None:
    exe = shutil.which("redis-server")
    if exe:
        return exe
    script = ROOT / ".ci" / "start-redis.sh"
    res = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    exe = shutil.which("redis-server")
    if exe is None:
        msg = (
            "!!! redis-server is not installed and .ci/start-redis.sh could not install it "
            f"({res.stderr.strip()[-300:]}) -- Redis plugin tests SKIPPED"
        )
        warnings.warn(msg, stacklevel=1)
        pytest.skip(msg)
    return exe


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A fresh redis-server on a free 127.0.0.1 port, killed at the end of the session."""
    exe = _redis_server_binary()
    assert exe is not None
    directory = tmp_path_factory.mktemp("redis")
    last = ""
    for _attempt in range(5):
        port = _free_port()
        proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
                "--logfile",
                str(directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            server = RedisServer("127.0.0.1", port, proc, directory)
            try:
                yield server
            finally:
                proc.kill()
                proc.wait(timeout=10)
            return
        last = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace")
    pytest.fail(f"redis-server did not start: {last[-500:]}")


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's server, emptied for this test."""
    redis_server.client().flushall()
    return redis_server.url()


@pytest.fixture
def rclient(redis_server: RedisServer, redis_url: str) -> Iterator[Any]:
    """A redis-py client of the (emptied) server."""
    c = redis_server.client()
    yield c
    c.close()


@pytest.fixture
def plugins() -> Iterator[Any]:
    """Built-ins plus this plugin (passed directly), made current for the test."""
    import dc_api_x_redis

    from dc_api_x import enable_plugins

    ps = enable_plugins(entry_points=False, plugins=[dc_api_x_redis])
    yield ps
    ps.close()


# ---------------------------------------------------------------------------------- subprocesses
def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run one of the project's console scripts (``dcapix``, ``tap-dcapix`` …) of this venv."""
    exe = BIN / args[0]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DC_API_X_BLOCKED_PLUGINS", None)
    return subprocess.run(
        [str(exe), *args[1:]],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


# ---------------------------------------------------------------------------------- HTTP server
@dataclass
class HTTPApp:
    """A real HTTP server on 127.0.0.1 counting the requests it served per path."""

    hits: dict[str, int] = field(default_factory=dict)
    routes: dict[str, Callable[[str], tuple[int, dict[str, str], bytes]]] = field(default_factory=dict)
    base_url: str = ""


@pytest.fixture
def http_app() -> Iterator[HTTPApp]:
    app = HTTPApp()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            with lock:
                app.hits[self.path] = app.hits.get(self.path, 0) + 1
            route = app.routes.get(path)
            if route is None:
                status, headers, body = 404, {"Content-Type": "application/json"}, b'{"error": "not found"}'
            else:
                status, headers, body = route(self.path)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """:func:`run_cli`: run ``dcapix``/``tap-dcapix``/``target-dcapix`` of this venv."""
    return run_cli
