"""tap-dcapix over the built-in HTTP adapter against the real local HTTP server: cursor pagination,
incremental bookmark with records sharing the bookmark value, no gap and no duplicate."""

from __future__ import annotations

from typing import Any

from tests.singer_tap.conftest import last_state, records_of

USERS: list[dict[str, Any]] = []


def _users(req: Any) -> tuple[int, dict[str, str], Any]:
    since = req.arg("since")
    rows = sorted(
        (u for u in USERS if since is None or u["updated_at"] >= since),
        key=lambda u: (u["updated_at"], u["id"]),
    )  # inclusive ">=" like many APIs
    start = int(req.arg("cursor") or 0)
    page = rows[start : start + 2]
    nxt = str(start + 2) if start + 2 < len(rows) else None
    return 200, {"content-type": "application/json"}, {"data": page, "next": nxt}


def test_http_incremental_exactly_once(http_server, run_tap) -> None:
    USERS[:] = [
        {"id": i, "name": f"u{i}", "updated_at": f"2024-01-0{1 + i // 2}T00:00:00Z"} for i in range(1, 6)
    ]
    http_server.route("GET", "/users", _users)
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": ["string", "null"]},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    }
    cfg = {
        "adapter": "http",
        "base_url": http_server.url,
        "streams": [
            {
                "name": "users",
                "path": "/users",
                "records_path": "data",
                "primary_keys": ["id"],
                "replication_key": "updated_at",
                "replication_param": "since",
                "is_sorted": True,
                "json_schema": schema,
                "pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"},
            }
        ],
    }
    first = run_tap(cfg)
    assert sorted(r["id"] for r in records_of(first)) == [1, 2, 3, 4, 5]
    state = last_state(first)
    assert state["bookmarks"]["users"]["replication_key"] == "updated_at"
    # id 6 shares the bookmark's updated_at (ids 4, 5 are at 2024-01-03), id 7 is newer
    USERS.append({"id": 6, "name": "u6", "updated_at": "2024-01-03T00:00:00Z"})
    USERS.append({"id": 7, "name": "u7", "updated_at": "2024-01-04T00:00:00Z"})
    second = run_tap(cfg, state=state)
    assert sorted(r["id"] for r in records_of(second)) == [6, 7]
    third = run_tap(cfg, state=last_state(second))
    assert records_of(third) == []
