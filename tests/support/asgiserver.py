"""A real HTTP/1.1 + HTTP/2 server on 127.0.0.1: Hypercorn (h11 + h2) serving an ASGI app in a
thread with its own event loop, over TLS (ALPN offers ``h2`` and ``http/1.1``) when given a
certificate.

    with HypercornServer(app, certfile=..., keyfile=...) as srv:
        srv.url  # https://127.0.0.1:PORT

The listening socket is bound before the server starts (port 0, handed to Hypercorn as
``fd://``), so there is no race for a port.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from typing import Any


class HypercornServer:
    def __init__(self, app: Any, *, certfile: str | None = None, keyfile: str | None = None) -> None:
        self.app = app
        self.certfile = certfile
        self.keyfile = keyfile
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hypercorn", daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _run(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"fd://{os.dup(self._sock.fileno())}"]
        config.certfile = self.certfile
        config.keyfile = self.keyfile
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 0.5

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await serve(self.app, config, shutdown_trigger=self._stop.wait)

        try:
            asyncio.run(main())
        except BaseException as exc:  # pragma: no cover - reported by start()/stop()
            self._error = exc
            self._ready.set()

    def start(self) -> HypercornServer:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"hypercorn did not start: {self._error!r}")
        # the socket is listening once serve() created the server: wait for a TCP connect
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                threading.Event().wait(0.02)
        raise RuntimeError("hypercorn is not accepting connections")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> HypercornServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
