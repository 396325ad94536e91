"""Schedules (croniter in a time zone, intervals, presets), their validation in the pipeline file,
the retry backoff and the slot bookkeeping (due / missed / claim) on a real SQLite state store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dc_api_x.exceptions import ConfigError
from dc_api_x.runner.config import ProjectConfig, load_config, parse_duration
from dc_api_x.runner.schedule import Job, Policy, Schedule, ScheduleBook, jobs_from_project
from dc_api_x.runner.state import open_state_store
from tests.runner.conftest import write_config

UTC = dt.timezone.utc


def ts(*args: int, tz: dt.tzinfo = UTC) -> float:
    return dt.datetime(*args, tzinfo=tz).timestamp()


def test_cron_in_a_time_zone_across_daylight_saving() -> None:
    paris = ZoneInfo("Europe/Paris")
    s = Schedule(cron="30 2 * * *", timezone="Europe/Paris")
    # 2024-03-31 has no 02:30 in Paris (clocks jump 02:00 -> 03:00): croniter moves that run
    start = ts(2024, 3, 30, 12, 0, tz=paris)
    runs = [dt.datetime.fromtimestamp(t, paris) for t in s.upcoming(start, 3)]
    assert runs[0] == dt.datetime(2024, 3, 31, 3, 0, tzinfo=paris)
    assert runs[1] == dt.datetime(2024, 4, 1, 2, 30, tzinfo=paris)
    assert runs[2] - runs[1] == dt.timedelta(days=1)
    # the same expression in UTC is an hour or two apart
    assert Schedule(cron="30 2 * * *").next_after(start) == ts(2024, 3, 31, 2, 30)


def test_cron_latest_and_next_are_exact_at_the_slot() -> None:
    s = Schedule(cron="0 * * * *")
    slot = ts(2024, 1, 1, 10)
    assert s.latest(slot) == slot
    assert s.latest(slot - 0.001) == ts(2024, 1, 1, 9)
    assert s.latest(slot + 3599.9) == slot
    assert s.next_after(slot) == ts(2024, 1, 1, 11)
    assert s.next_after(slot - 0.5) == slot
    assert s.count_between(ts(2024, 1, 1, 0), ts(2024, 1, 1, 10)) == 9


def test_cron_with_seconds_and_presets() -> None:
    every2 = Schedule(cron="* * * * * */2")
    t = ts(2024, 1, 1, 10, 0, 1)
    assert every2.next_after(t) == ts(2024, 1, 1, 10, 0, 2)
    assert every2.latest(t) == ts(2024, 1, 1, 10, 0, 0)
    daily = Schedule(cron="@daily", timezone="America/New_York")
    ny = ZoneInfo("America/New_York")
    assert daily.next_after(ts(2024, 6, 1, 12, tz=ny)) == ts(2024, 6, 2, 0, tz=ny)
    assert Schedule(cron="@manual").next_after(t) is None
    assert Schedule(cron="@once").kind == "once"


def test_interval_is_aligned_to_the_epoch() -> None:
    s = Schedule(every=900)
    t = ts(2024, 1, 1, 10, 7, 12)
    assert s.latest(t) == ts(2024, 1, 1, 10, 0)
    assert s.next_after(t) == ts(2024, 1, 1, 10, 15)
    assert s.next_after(ts(2024, 1, 1, 10, 15)) == ts(2024, 1, 1, 10, 30)
    assert s.count_between(ts(2024, 1, 1, 10), ts(2024, 1, 1, 11)) == 3
    assert s.describe() == "every 15m"
    with pytest.raises(ValueError, match="at least 1 second"):
        Schedule(every=0.5)


@pytest.mark.parametrize(
    ("value", "seconds"), [(30, 30.0), ("45s", 45.0), ("5m", 300.0), ("1h30m", 5400.0), ("2d", 172800.0)]
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


def test_backoff_doubles_up_to_the_cap() -> None:
    p = Policy(retries=5, retry_delay=10, retry_max_delay=60)
    assert [p.backoff(n) for n in range(1, 6)] == [10, 20, 40, 60, 60]


def _pipe(schedule: object) -> dict[str, object]:
    return {
        "source": {"adapter": "sql", "url": "sqlite:///x.db"},
        "destination": {"adapter": "parquet", "path": "out"},
        "schedule": schedule,
    }


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("* * *", "invalid cron expression '* * *'"),
        ({"cron": "@daily", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"cron": "@daily", "every": "1h"}, "either cron or every"),
        ({"every": "soon"}, "not a duration: 'soon'"),
        ({"cron": "@daily", "missed": "maybe"}, "schedule.missed"),
    ],
)
def test_bad_schedules_are_one_line_errors(tmp_path: Path, schedule: object, message: str) -> None:
    cfg = write_config(tmp_path, {"orders": _pipe(schedule)})
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    text = str(err.value)
    assert message in text and "\n" not in text and "pipelines.orders.schedule" in text


def test_schedule_forms_and_defaults(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        {
            "a": _pipe("*/5 * * * *"),
            "b": _pipe("every 30s"),
            "c": _pipe({"cron": "@hourly", "timezone": "Asia/Tokyo", "retries": 0, "missed": "skip"}),
            "d": {k: v for k, v in _pipe(None).items() if k != "schedule"},
        },
        scheduler={"timezone": "Europe/Berlin", "retries": 4, "retry_delay": "1m"},
    )
    project = load_config(cfg)
    jobs = {j.name: j for j in jobs_from_project(project)}
    assert sorted(jobs) == ["a", "b", "c"]  # d has no schedule
    assert jobs["a"].schedule.timezone == "Europe/Berlin" and jobs["a"].policy.retries == 4
    assert jobs["a"].policy.retry_delay == 60.0 and jobs["a"].policy.missed == "catch-up"
    assert jobs["b"].schedule.every == 30.0
    assert jobs["c"].schedule.timezone == "Asia/Tokyo"
    assert (jobs["c"].policy.retries, jobs["c"].policy.missed) == (0, "skip")
    # a pipeline without schedule can be named (then it runs only with --now)
    assert jobs_from_project(project, names=["d"])[0].schedule.kind == "manual"


def test_book_due_missed_and_claim(tmp_path: Path) -> None:
    job = Job("p", "pipeline", Schedule(every=60), Policy())
    other_expr = Job("p", "pipeline", Schedule(every=120), Policy())
    t0 = ts(2024, 1, 1, 10, 0, 30)
    with open_state_store(path=str(tmp_path / "s.db")) as store:
        book = ScheduleBook(store)
        book.register(job, t0)
        assert book.due(job, t0) is None  # nothing before first sight
        assert book.due(job, ts(2024, 1, 1, 10, 1)) == (ts(2024, 1, 1, 10, 1), 0)
        # the scheduler was down for five slots: the latest is due, four were missed
        assert book.due(job, ts(2024, 1, 1, 10, 5, 10)) == (ts(2024, 1, 1, 10, 5), 4)
        assert book.claim(job, ts(2024, 1, 1, 10, 5))
        assert not book.claim(job, ts(2024, 1, 1, 10, 5))  # a second scheduler gets nothing
        assert book.due(job, ts(2024, 1, 1, 10, 5, 50)) is None
        # a second store on the same file (another process) sees the claim
        with open_state_store(path=str(tmp_path / "s.db")) as store2:
            assert ScheduleBook(store2).due(job, ts(2024, 1, 1, 10, 5, 59)) is None
        # a changed schedule starts again from its first sight
        book.register(other_expr, ts(2024, 1, 1, 10, 30))
        assert book.due(other_expr, ts(2024, 1, 1, 10, 31)) is None
        assert book.due(other_expr, ts(2024, 1, 1, 10, 32)) == (ts(2024, 1, 1, 10, 32), 0)


def test_once_runs_once(tmp_path: Path) -> None:
    job = Job("o", "pipeline", Schedule(cron="@once"), Policy())
    with open_state_store(path=str(tmp_path / "s.db")) as store:
        book = ScheduleBook(store)
        book.register(job, 1000.0)
        assert book.due(job, 1001.0) == (1000.0, 0)
        assert book.claim(job, 1000.0)
        assert book.due(job, 99999.0) is None


def test_project_config_defaults() -> None:
    p = ProjectConfig()
    assert (p.lock_timeout, p.history_days, p.scheduler.max_concurrent) == (60.0, 90.0, 4)


def test_docs_name_the_commands_and_their_flags() -> None:
    import re

    import yaml

    from dc_api_x.cli import build_parser

    root = Path(__file__).resolve().parents[2]
    readme, runner_md = (root / "README.md").read_text(), (root / "docs" / "runner.md").read_text()
    doc = (root / "docs" / "scheduling.md").read_text()
    for text in (readme, runner_md):
        for cmd in ("dcapix schedule", "dcapix runs", "dcapix report"):
            assert cmd in text
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    flags: set[str] = set()
    for name in ("schedule", "runs", "report"):
        p = sub.choices[name]
        flags |= {o for a in p._actions for o in a.option_strings}
        for inner in (a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"):
            for q in inner.choices.values():
                flags |= {o for a in q._actions for o in a.option_strings}
    for line in re.findall(r"^dcapix (?:schedule|runs|report)[^\n]*", doc, re.M):
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", line.split("#")[0]):
            assert flag in flags, f"docs/scheduling.md: {flag} in {line!r} is not a flag"
    cronjob = re.search(r"```yaml\n(apiVersion: batch/v1.*?)```", doc, re.S)
    assert cronjob is not None
    spec = yaml.safe_load(cronjob.group(1))
    container = spec["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["dcapix", "schedule", "run", "--once"]
