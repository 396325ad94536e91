"""A Singer target as a destination: the commit protocol.

The runner's contract is ``write`` (may buffer) → ``flush`` (durable now; only then is state stored).
A Singer target commits on its own schedule and says so by printing the STATE it received after
the records it has committed. So :meth:`TargetProcess.checkpoint` sends a STATE message after the
records — ``{"bookmarks": {stream: the runner's bookmark}, "dcapix_checkpoint": N}`` — and
``flush`` returns only once the target has committed it:

* ``commit: exit`` (default, works with every target): the target's input ends, the target drains
  everything and exits; exit code 0 is the commit, and when the target printed STATE messages the
  last one must be checkpoint N (anything else is an error: records after its last STATE may not be
  committed). A target that never prints a STATE is trusted on its exit code. The next ``write``
  starts a new target process, as the next scheduled run would.
* ``commit: echo``: the target stays up; ``flush`` waits until it prints checkpoint N (or a later
  one). A target that does not within ``commit_timeout`` seconds is committed as with ``exit``.

``finish_write`` always ends the target's input (a target finalizes a stream — swaps an overwrite
table, closes files — only at the end of its input). ``close`` without a commit kills the target
(SIGTERM, SIGKILL after 5 s): nothing past the last commit is acknowledged, so the runner's state
stays at the last commit.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import Any

import orjson

from .messages import decode_line
from .process import Connector

__all__ = ["CHECKPOINT_KEY", "TargetProcess"]

log = logging.getLogger("dc_api_x.singer")

#: The key of the checkpoint number inside the STATE messages the bridge sends to a target.
CHECKPOINT_KEY = "dcapix_checkpoint"


class TargetProcess:
    """One run of a target: its stdin for messages, its stdout for the STATE it echoes."""

    def __init__(self, argv: list[str], *, where: str, env: Mapping[str, str] | None = None) -> None:
        self.conn = Connector(argv, role="target", where=where, env=env, stdin=subprocess.PIPE)
        self.name = self.conn.name
        self.schemas: set[str] = set()
        self.echoed: int | None = None  # the last checkpoint number the target printed
        self.states_printed = 0
        self.last_state: Any = None
        self._cond = threading.Condition()
        self._reader = threading.Thread(
            target=self._read_stdout, name=f"dcapix-singer-{self.name}-stdout", daemon=True
        )
        self._reader.start()

    # -- the target's stdout -------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        for raw in iter(self.conn.stdout.readline, b""):
            try:
                data = decode_line(raw)
            except Exception:
                if raw.strip():
                    log.debug("[%s] stdout: %s", self.name, raw[:200].decode("utf-8", "replace").rstrip())
                continue
            if isinstance(data, dict) and data.get("type") == "STATE" and isinstance(data.get("value"), dict):
                data = data["value"]
            if not isinstance(data, dict):
                continue
            with self._cond:
                self.states_printed += 1
                self.last_state = data
                n = data.get(CHECKPOINT_KEY)
                if isinstance(n, int):
                    self.echoed = n
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    # -- sending ---------------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        try:
            self.conn.stdin.write(data)
        except (BrokenPipeError, ValueError, OSError):
            raise self._gone() from None

    def _gone(self) -> Exception:
        """The error of a target that stopped reading its input."""
        try:
            rc = self.conn.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.conn.stop()
            return self.conn.error(
                self.conn.last_line(), subject=f"target {self.name} stopped reading its input"
            )
        return (
            self.conn.exit_error(rc)
            if rc != 0
            else self.conn.error(
                self.conn.last_line(), subject=f"target {self.name} exited before the end of its input"
            )
        )

    def send_schema(self, stream: str, schema: Mapping[str, Any], keys: Any, rk: str | None) -> None:
        msg: dict[str, Any] = {
            "type": "SCHEMA",
            "stream": stream,
            "schema": schema,
            "key_properties": list(keys),
        }
        if rk:
            msg["bookmark_properties"] = [rk]
        self.send(orjson.dumps(msg) + b"\n")
        self.schemas.add(stream)

    def send_activate_version(self, stream: str, version: int) -> None:
        self.send(orjson.dumps({"type": "ACTIVATE_VERSION", "stream": stream, "version": version}) + b"\n")

    def send_state(self, value: Mapping[str, Any]) -> None:
        self.send(orjson.dumps({"type": "STATE", "value": value}) + b"\n")
        try:
            self.conn.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise self._gone() from None

    # -- committing -----------------------------------------------------------------------------------
    def wait_echo(self, checkpoint: int, timeout: float) -> bool:
        """Wait until the target printed ``checkpoint`` (or a later one); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.echoed is None or self.echoed < checkpoint:
                left = deadline - time.monotonic()
                if left <= 0 or self.conn.proc.poll() is not None:
                    return self.echoed is not None and self.echoed >= checkpoint
                self._cond.wait(timeout=min(left, 1.0))
        return True

    def finish(self, checkpoint: int | None) -> None:
        """End the input, wait for the exit; raise unless the target committed ``checkpoint``."""
        try:
            self.conn.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        rc = self.conn.wait()
        self._reader.join(timeout=10)
        if rc != 0:
            raise self.conn.exit_error(rc)
        if checkpoint is not None and self.states_printed and self.echoed != checkpoint:
            raise self.conn.error(
                f"{CHECKPOINT_KEY} {checkpoint}; last printed: {self.echoed}; the records after its "
                "last STATE may not be committed",
                subject=f"target {self.name} exited without printing the last checkpoint STATE",
            )
        if checkpoint is not None and not self.states_printed:
            log.info("target %s prints no STATE: its exit code 0 is taken as the commit", self.name)

    def kill(self) -> None:
        """Stop without a commit (SIGTERM, then SIGKILL)."""
        self.conn.stop()
        self._reader.join(timeout=10)
