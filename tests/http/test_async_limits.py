"""AsyncApiClient keeps the sync client's guarantees (real local HTTP server): the per-host
``rate_limit`` paces its tasks, a ``429`` with ``Retry-After`` pauses every task (and the sync
workers) of the host, and a 2xx body cut short or JSON cut in the middle is retried, counted, and
after the last attempt one line saying what happened."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from dc_api_x import AsyncApiClient, ResponseDecodeError
from dc_api_x.adapters.http_limits import host_limiter
from tests.http.test_body_faults import FaultyPages, rows


def test_rate_limit_paces_concurrent_tasks(server: Any) -> None:
    seen: list[float] = []

    def hit(req: Any) -> tuple[int, dict[str, str], Any]:
        seen.append(time.monotonic())
        return 200, {"content-type": "application/json"}, {"ok": True}

    server.route("GET", "/hit", hit)

    async def main() -> float:
        async with AsyncApiClient(server.url, hooks=[], rate_limit=20) as api:
            await api.get("/hit")  # the client connected; this request's slot is behind us
            ref = time.monotonic()
            answers = await asyncio.gather(*(api.get("/hit") for _ in range(10)))
        assert all(a.status_code == 200 for a in answers)
        return ref

    ref = asyncio.run(main())
    assert len(seen) == 11
    # the k-th of the 10 concurrent requests took the k-th slot after ref at the earliest:
    # (k - 1)/20 s after the first of them (load can only delay a request, never bring it forward)
    late = [round(t - ref - k / 20, 3) for k, t in enumerate(sorted(seen[1:]))]
    assert min(late) >= -0.005, late
    assert seen[-1] - ref < 60


def test_retry_after_pauses_the_other_tasks_of_the_host(server: Any) -> None:
    state: dict[str, Any] = {"n": 0, "after": []}

    def throttled(req: Any) -> tuple[int, dict[str, str], Any]:
        state["n"] += 1
        if state["n"] == 1:
            state["at"] = time.monotonic()
            return 429, {"retry-after": "1", "content-type": "application/json"}, {"error": "slow down"}
        state["after"].append(time.monotonic())
        return 200, {"content-type": "application/json"}, {"ok": True}

    server.route("GET", "/t", throttled)
    slept: list[float] = []

    async def no_retry_sleep(seconds: float) -> None:  # the refused task's own wait is not timed
        slept.append(seconds)

    async def main() -> None:
        async with AsyncApiClient(server.url, hooks=[]) as api:
            api.session.sleep = no_retry_sleep
            first = asyncio.create_task(api.get("/t"))
            limiter, waited = host_limiter(server.url), 0.0
            while limiter.paused_for == 0:  # the client has seen the 429 and paused the host
                assert waited < 30 and not first.done(), "the 429 with Retry-After paused no one"
                await asyncio.sleep(0.005)
                waited += 0.005
            others = await asyncio.gather(*(api.get("/t") for _ in range(3)))
            assert (await first).status_code == 200 and all(o.status_code == 200 for o in others)

    asyncio.run(main())
    assert slept == [1.0] and len(state["after"]) == 4
    # every later request (the retry and the other tasks') waited for the host's pause
    assert min(state["after"]) - state["at"] >= 0.95, (state["at"], state["after"])
    assert host_limiter(server.url).paused_for == 0.0


@pytest.mark.parametrize("kind", ["short", "cut_json"])
def test_a_cut_body_is_retried_and_counted(server: Any, kind: str) -> None:
    pages = FaultyPages(rows(30), {0: [kind, "ok"]})
    server.route("GET", "/items", pages)

    async def main() -> Any:
        async with AsyncApiClient(server.url, hooks=[], retries={"max_attempts": 3, "jitter": False}) as api:
            api.session.sleep = lambda s: asyncio.sleep(0)
            resp = await api.get("/items", params={"offset": 0, "limit": 10})
            return resp, api.session.adapter.retry_counters.snapshot()

    resp, snap = asyncio.run(main())
    assert [r["id"] for r in resp.data["records"]] == list(range(1, 11))
    reason = {"short": "truncated_body", "cut_json": "invalid_json"}[kind]
    assert snap["retries_by_reason"] == {reason: 1} and snap["exhausted"] == 0
    assert len([r for r in server.requests if r.path == "/items"]) == 2


def test_a_body_cut_on_every_attempt_is_one_clear_error(server: Any) -> None:
    pages = FaultyPages(rows(30), {0: ["short"]})
    server.route("GET", "/items", pages)

    async def main() -> None:
        async with AsyncApiClient(server.url, hooks=[], retries={"max_attempts": 2}) as api:
            api.session.sleep = lambda s: asyncio.sleep(0)
            await api.get("/items", params={"offset": 0, "limit": 10, "api_key": "k-hidden-9"})

    with pytest.raises(ResponseDecodeError) as ei:
        asyncio.run(main())
    size = pages.sizes[0]
    msg = str(ei.value)
    assert f"truncated body (got {size * 6 // 10} of {size} bytes)" in msg and "attempt 2 of 2" in msg, msg
    assert "k-hidden-9" not in msg
