"""Helpers for the target-dcapix tests: Singer messages and the result of a target run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    out: Path

    @property
    def states(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("target-dcapix: error:")]

    def rows(self, stream: str) -> list[dict[str, Any]]:
        path = self.out / f"{stream}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def calls(self) -> list[dict[str, Any]]:
        path = self.out / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def messages_text(messages: list[Any]) -> str:
    """Singer input: dicts are JSON-encoded, strings are taken as raw lines."""
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)


SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"], "maxLength": 10},
        "amount": {"type": ["number", "null"]},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["id"],
}


def schema_msg(
    stream: str = "users",
    schema: dict[str, Any] | None = None,
    keys: list[str] | None = None,
    bookmarks: list[str] | None = None,
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "SCHEMA",
        "stream": stream,
        "schema": schema or SCHEMA,
        "key_properties": ["id"] if keys is None else keys,
    }
    if bookmarks is not None:
        msg["bookmark_properties"] = bookmarks
    return msg


def rec(i: int, stream: str = "users", **extra: Any) -> dict[str, Any]:
    record = {
        "id": i,
        "name": f"n{i}",
        "amount": i * 1.5,
        "updated_at": f"2024-01-{i % 28 + 1:02d}T00:00:00Z",
    }
    record.update(extra)
    return {"type": "RECORD", "stream": stream, "record": record}


def state(value: Any) -> dict[str, Any]:
    return {"type": "STATE", "value": {"bookmarks": {"users": {"replication_key_value": value}}}}


def target_in_process(messages: list[Any], **config: Any) -> tuple[int, str, str]:
    """target-dcapix run in this process on ``messages`` with ``config``: ``(exit code, stdout,
    stderr)``."""
    import contextlib
    import io
    import types

    from target_dcapix.target import TargetDcApiX

    out, err = io.StringIO(), io.StringIO()
    rc = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            TargetDcApiX.invoke(
                config=types.SimpleNamespace(config=config, parse_env=False),
                file_input=io.BytesIO(messages_text(messages).encode()),
            )  # type: ignore[arg-type]
        except SystemExit as exc:
            rc = int(exc.code or 0)
    return rc, out.getvalue(), err.getvalue()
