"""The kill harness: seeded ``SIGKILL`` of the runner, the scheduler, the tap, the target, the state
write and the file write, then reruns from the last stored/emitted state until the job completes; the oracles
check every kill and the final result.

Two ways to run a job:

* ``runner``: ``dcapix run copy`` (in process) on a ``dcapix.yml``; state in ``.dcapix/state.db``.
  Kills come from crash points (``DCAPIX_CRASH_POINT``, :mod:`dc_api_x.crashpoints`) at a seeded
  hit count: a random batch (``runner.batch_written``), between flush and state
  (``runner.after_flush_before_state``), inside the state transaction (``state.write``), mid file
  (``files.chunk_written``) and before a part's rename (``files.before_rename``).
* ``scheduler``: ``dcapix schedule run --once --now copy`` (the run is its child process); the
  harness sends ``SIGKILL`` to the scheduler a seeded delay after the child started, checks that no
  process of the trial survives it by 5 s (``PR_SET_PDEATHSIG``), then reruns.
* ``pipe``: ``tap-dcapix | target-dcapix``, the harness being the pipe: it forwards the tap's bytes
  to the target, counts RECORD lines and sends ``SIGKILL`` to the tap or to the target at a seeded
  record; crash points inside the target (``target.before_state``, ``files.*``) too. The state for
  the rerun is the last STATE line the target printed; the state-safety oracle runs on every STATE
  line as it arrives.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.reliability.oracle import check_rows, committed_ids, leftovers, read_rows, state_ahead
from tests.reliability.truth import Bookmark, Truth, make_truth, write_source

__all__ = ["KillStats", "Scenario", "check_final_rows", "run_trial", "scenarios"]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: a child process that runs the CLI with the suite's test adapters registered (the mutation check)
RUNNER_CHILD = (
    "import sys\n"
    "from dc_api_x import enable_plugins\n"
    "from tests.reliability import adapters\n"
    "enable_plugins(plugins=[adapters])\n"
    "from dc_api_x.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@dataclass(frozen=True)
class Scenario:
    mode: str  # runner | pipe | scheduler
    victim: str  # runner | tap | target | scheduler (which process dies)
    point: str  # a crash point name, "record" (harness kill at a seeded record), "time" (seeded delay)
    dest: str  # jsonl | parquet | csv | sqlite | lossy_jsonl
    load_method: str = "append"

    @property
    def label(self) -> str:
        return f"{self.mode}/{self.victim}@{self.point} -> {self.dest} ({self.load_method})"

    @property
    def fault_class(self) -> str:
        if self.point.startswith("state."):
            return "state write"
        if self.point.startswith("files."):
            return "file write"
        return self.victim


def scenarios() -> list[Scenario]:
    """The matrix the full run spreads its kills over (every fault class of the issue)."""
    return [
        Scenario("runner", "runner", "runner.batch_written", "jsonl"),
        Scenario("runner", "runner", "runner.batch_written", "sqlite", "upsert"),
        Scenario("runner", "runner", "runner.after_flush_before_state", "parquet"),
        Scenario("runner", "runner", "runner.after_flush_before_state", "sqlite", "upsert"),
        Scenario("runner", "runner", "state.write", "jsonl"),
        Scenario("runner", "runner", "state.write", "sqlite", "upsert"),
        Scenario("runner", "runner", "files.chunk_written", "jsonl"),
        Scenario("runner", "runner", "files.before_rename", "parquet"),
        Scenario("runner", "runner", "files.before_rename", "csv"),
        Scenario("pipe", "tap", "record", "jsonl"),
        Scenario("pipe", "tap", "record", "sqlite", "upsert"),
        Scenario("pipe", "target", "record", "jsonl"),
        Scenario("pipe", "target", "record", "parquet"),
        Scenario("pipe", "target", "record", "sqlite", "upsert"),
        Scenario("pipe", "target", "target.before_state", "jsonl"),
        Scenario("pipe", "target", "files.before_rename", "parquet"),
        Scenario("scheduler", "scheduler", "time", "sqlite", "upsert"),
        Scenario("scheduler", "scheduler", "time", "jsonl"),
    ]


@dataclass
class KillStats:
    scenario: Scenario
    seed: int
    kills: int = 0
    runs: int = 0
    states_checked: int = 0
    states_ahead: int = 0  # persisted/emitted states covering rows not committed
    torn_reads: int = 0
    lost: int = 0
    dups: int = 0
    dup_bound: int = 0  # append: rows committed after the last state at each kill (may repeat)
    changed: int = 0
    leftovers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        upsert_ok = self.dups == 0 if self.scenario.load_method == "upsert" else self.dups <= self.dup_bound
        return (
            not self.errors
            and self.states_ahead == 0
            and self.torn_reads == 0
            and self.lost == 0
            and self.changed == 0
            and upsert_ok
            and not self.leftovers
        )


def _dest_config(sc: Scenario, work: Path) -> tuple[dict[str, Any], str, Path]:
    """(destination config, oracle kind, oracle location)."""
    if sc.dest == "sqlite":
        db = work / "dst.db"
        return {"adapter": "sql", "url": f"sqlite:///{db}", "load_method": sc.load_method}, "sqlite", db
    out = work / "out"
    cfg: dict[str, Any] = {"adapter": sc.dest, "path": str(out)}
    if sc.dest != "lossy_jsonl":
        cfg["load_method"] = sc.load_method
    return cfg, ("jsonl" if sc.dest == "lossy_jsonl" else sc.dest), out


def _source_config(work: Path, batch_size: int = 250) -> dict[str, Any]:
    """The SQLite source of the truth written under ``work`` (``src.db``)."""
    return {
        "adapter": "sql",
        "url": f"sqlite:///{work / 'src.db'}",
        "batch_size": batch_size,
        "streams": [
            {"name": "items", "table": "items", "primary_keys": ["id"], "replication_key": "updated_at"}
        ],
    }


def _env(crash: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DCAPIX_CRASH_POINT"}
    # no empty entry: an empty PYTHONPATH entry puts the working directory on sys.path
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    if crash:
        env["DCAPIX_CRASH_POINT"] = crash
    return env


def _bookmark_value(bm: Any) -> str | None:
    """The replication-key value of a runner bookmark or a Singer state."""
    if not bm:
        return None
    if "bookmarks" in bm:
        bm = (bm.get("bookmarks") or {}).get("items") or {}
    value = bm.get("replication_key_value")
    if value is None:
        return None
    kav = bm.get("keys_at_value")
    keys = None
    if isinstance(kav, list) and all(isinstance(k, list) and len(k) == 1 and type(k[0]) is int for k in kav):
        keys = frozenset(k[0] for k in kav)
    return Bookmark(str(value), keys)


class _Job:
    def __init__(
        self,
        sc: Scenario,
        work: Path,
        truth: Truth,
        rng: random.Random,
        stats: KillStats,
        source: dict[str, Any] | None = None,
    ) -> None:
        self.sc, self.work, self.truth, self.rng, self.stats = sc, work, truth, rng, stats
        #: the source every run reads (default: the truth's SQLite table)
        self.source = source if source is not None else _source_config(work)
        self.dest_cfg, self.kind, self.where = _dest_config(sc, work)
        self.singer_state: dict[str, Any] | None = None
        self.log = work / "runs.log"
        #: how the harness stops the target at the drawn record (``None``: SIGKILL); ``stopped``: it did
        self.stop: Any = None
        self.stopped = False

    # -- oracles ----------------------------------------------------------------------------------
    def committed(self) -> set[int] | None:
        try:
            return committed_ids(self.kind, self.where)
        except AssertionError as exc:  # a torn visible file
            self.stats.torn_reads += 1
            self.stats.errors.append(str(exc))
            return None

    def check_state(self, bookmark: str | None) -> None:
        committed = self.committed()
        if committed is None:
            return
        self.stats.states_checked += 1
        ahead = state_ahead(self.truth, bookmark, committed)
        if ahead:
            self.stats.states_ahead += 1
            self.stats.errors.append(f"state {bookmark} ahead of committed data by {len(ahead)} rows")

    def note_kill(self, bookmark: str | None) -> None:
        """After a kill: check the persisted state; count the committed rows it does not cover."""
        self.stats.kills += 1
        self.check_state(bookmark)
        committed = self.committed() or set()
        covered = self.truth.ids_up_to(bookmark) if bookmark else set()
        self.stats.dup_bound += len(committed - covered)

    # -- runner mode ------------------------------------------------------------------------------
    def runner_state(self) -> str | None:
        from dc_api_x.runner.state import open_state_store

        db = self.work / ".dcapix" / "state.db"
        if not db.exists():
            return None
        with open_state_store(path=str(db)) as s:
            return _bookmark_value(s.get("copy", "items"))

    def write_runner_config(self, checkpoint_rows: int = 500) -> None:
        cfg = {
            "pipelines": {
                "copy": {
                    "source": self.source,
                    "destination": self.dest_cfg,
                    "checkpoint_rows": checkpoint_rows,
                }
            }
        }
        (self.work / "dcapix.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    def run_runner(self, crash: str | None, timeout: float = 300) -> int:
        self.write_runner_config()
        argv = [sys.executable, "-c", RUNNER_CHILD, "run", "copy", "--no-progress"]
        with self.log.open("ab") as log:
            log.write(f"--- run crash={crash}\n".encode())
            log.flush()
            proc = subprocess.run(
                argv, cwd=self.work, env=_env(crash), stdout=log, stderr=log, timeout=timeout, check=False
            )
        self.stats.runs += 1
        return proc.returncode

    # -- scheduler mode ---------------------------------------------------------------------------
    def _write_config(self, schedule: bool = False) -> None:
        pipe: dict[str, Any] = {
            "source": self.source,
            "destination": self.dest_cfg,
            "checkpoint_rows": 500,
        }
        if schedule:
            pipe["schedule"] = "0 0 1 1 *"
        (self.work / "dcapix.yml").write_text(yaml.safe_dump({"pipelines": {"copy": pipe}}, sort_keys=False))

    def _alive_in_work(self, exclude: int) -> list[int]:
        """Pids of live processes whose working directory is this trial's (orphans after a kill)."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == exclude:
                continue
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(self.work):
                    with open(f"/proc/{entry}/stat") as fh:
                        if fh.read().split(") ", 1)[1].startswith("Z"):
                            continue  # a zombie waiting for its reaper is not running
                    pids.append(int(entry))
            except OSError:
                continue
        return pids

    def run_scheduler(self, kill_after: float | None, timeout: float = 300) -> int:
        """``dcapix schedule run --once --now copy``; SIGKILL the scheduler ``kill_after`` seconds after
        its child run started. Returns the scheduler's exit code; orphans are reported as errors."""
        self._write_config(schedule=True)
        argv = [sys.executable, "-m", "dc_api_x.cli", "schedule", "run", "--once", "--now", "copy"]
        with self.log.open("ab") as log:
            log.write(f"--- scheduler kill_after={kill_after}\n".encode())
            log.flush()
            proc = subprocess.Popen(argv, cwd=self.work, env=_env(None), stdout=log, stderr=log)
            deadline = time.monotonic() + timeout
            started: float | None = None
            while proc.poll() is None and time.monotonic() < deadline:
                if kill_after is not None:
                    if started is None and self._alive_in_work(proc.pid):
                        started = time.monotonic()
                    if started is not None and time.monotonic() - started >= kill_after:
                        proc.send_signal(signal.SIGKILL)
                        break
                time.sleep(0.01)
            rc = proc.wait(timeout=60)
        self.stats.runs += 1
        if rc == -signal.SIGKILL:
            end = time.monotonic() + 5
            while self._alive_in_work(-1) and time.monotonic() < end:
                time.sleep(0.05)
            orphans = self._alive_in_work(-1)
            if orphans:
                self.stats.errors.append(
                    f"{len(orphans)} orphan process(es) 5 s after the scheduler's SIGKILL"
                )
                for pid in orphans:
                    os.kill(pid, signal.SIGKILL)
        return rc

    # -- pipe mode --------------------------------------------------------------------------------
    def run_pipe(self, kill_at: int | None, crash: str | None, timeout: float = 300) -> tuple[int, int]:
        """One ``tap | target`` run through the harness pipe. Returns (tap rc, target rc)."""
        n = self.stats.runs
        tap_cfg, tgt_cfg = self.work / f"tap-{n}.json", self.work / f"target-{n}.json"
        tap_cfg.write_text(json.dumps(self.source))
        # small target batches: a STATE after every 500 records, so kills land between states
        tgt_cfg.write_text(json.dumps({**self.dest_cfg, "batch_size_rows": 500}))
        tap_cmd = [str(BIN / "tap-dcapix"), "--config", str(tap_cfg)]
        if self.singer_state is not None:
            sp = self.work / f"state-{n}.json"
            sp.write_text(json.dumps(self.singer_state))
            tap_cmd += ["--state", str(sp)]
        tgt_crash = crash if self.sc.victim == "target" else None
        with self.log.open("ab") as log:
            log.write(f"--- pipe kill_at={kill_at} crash={crash}\n".encode())
            log.flush()
            tap = subprocess.Popen(tap_cmd, stdout=subprocess.PIPE, stderr=log, cwd=self.work, env=_env(None))
            target = subprocess.Popen(
                [str(BIN / "target-dcapix"), "--config", str(tgt_cfg)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=self.work,
                env=_env(tgt_crash),
            )
            assert tap.stdout and target.stdin and target.stdout
            reader = threading.Thread(target=self._read_states, args=(target.stdout,), daemon=True)
            reader.start()
            records, killed = 0, False
            deadline = time.monotonic() + timeout
            try:
                while time.monotonic() < deadline:
                    chunk = os.read(tap.stdout.fileno(), 16384)
                    if not chunk:
                        break
                    if kill_at is not None and not killed:
                        got = chunk.count(b'"type":"RECORD"') + chunk.count(b'"type": "RECORD"')
                        if records + got >= kill_at:
                            killed = True
                            victim = tap if self.sc.victim == "tap" else target
                            if victim is tap:  # the target keeps what it got before the kill
                                cut = _cut_after_records(chunk, kill_at - records)
                                self._forward(target, chunk[:cut])
                            if self.stop is not None and victim is target:
                                self.stop(target)
                                self.stopped = True
                            else:
                                victim.send_signal(signal.SIGKILL)
                            if victim is target:
                                tap.kill()
                            break
                        records += got
                    if not self._forward(target, chunk):
                        break
            finally:
                tap.stdout.close()
                try:
                    target.stdin.close()
                except OSError:
                    pass
                tap.wait(timeout=60)
                target.wait(timeout=120)
                reader.join(timeout=60)
        self.stats.runs += 1
        return tap.returncode, target.returncode

    @staticmethod
    def _forward(target: subprocess.Popen[bytes], data: bytes) -> bool:
        try:
            assert target.stdin is not None
            target.stdin.write(data)
            target.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def _read_states(self, stream: Any) -> None:
        for line in stream:
            if not line.endswith(b"\n"):
                break  # the last line, cut by a kill while the target printed it: never a state
            line = line.strip()
            if not line:
                continue
            try:
                state = json.loads(line)
            except ValueError:
                self.stats.errors.append(f"target printed a non-JSON line: {line[:100]!r}")
                continue
            self.check_state(_bookmark_value(state))
            self.singer_state = state


def _cut_after_records(chunk: bytes, k: int) -> int:
    """Offset in ``chunk`` just inside the k-th RECORD line (the tap dies mid-line)."""
    pos = 0
    for _ in range(max(k, 1)):
        i = chunk.find(b'"RECORD"', pos)
        if i < 0:
            return len(chunk)
        pos = i + 8
    return pos


def check_final_rows(stats: KillStats, truth: Truth, kind: str, where: Path) -> None:
    """The destination's rows against the truth once the job is done: lost, duplicated and changed
    rows into ``stats``; a read that fails (a torn file) counted and named."""
    try:
        result = check_rows(truth, read_rows(kind, where))
        stats.lost, stats.dups, stats.changed = result.lost, result.dups, result.changed
        if result.extra:
            stats.errors.append(f"{result.extra} rows not in the truth")
    except AssertionError as exc:
        stats.torn_reads += 1
        stats.errors.append(str(exc))


def run_trial(
    sc: Scenario,
    work: Path,
    *,
    seed: int,
    rows: int,
    kills: int,
    max_runs: int = 40,
    truth: Truth | None = None,
    after: Any = None,
    source: dict[str, Any] | None = None,
) -> KillStats:
    """Up to ``kills`` seeded kills of one job, then reruns until it completes; oracles on everything.
    ``truth``: the source rows (default: :func:`make_truth`); ``after(job)``: called once the job is
    done, before the final check; the :class:`Truth` it returns (if any) is what the check uses;
    ``source``: the source config of every run (default: the truth's SQLite table, which is written
    either way)."""
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    truth = truth if truth is not None else make_truth(rows, seed=seed)
    write_source(work / "src.db", truth)
    stats = KillStats(sc, seed)
    job = _Job(sc, work, truth, rng, stats, source)
    done = False
    misses = 0
    while stats.runs < max_runs:
        crash_left = stats.kills < kills
        if sc.mode == "scheduler":
            # the delay after the child started: within the child's life (a 1,500-row run and
            # its start-up take ~0.3-0.6 s now; a delay of 0.5-3.5 s outlived every child, so no
            # trial was killed once start-up became faster)
            rc = job.run_scheduler(rng.uniform(0.02, 0.6) if crash_left else None)
            if rc == -signal.SIGKILL:
                job.note_kill(job.runner_state())
                continue
            if rc != 0:
                stats.errors.append(f"scheduler exited {rc} (see {job.log})")
                break
            if crash_left and stats.runs < max_runs // 2:
                continue  # finished before the kill: with state stored, the next one is an empty run
            done = True
            break
        if sc.mode == "runner":
            # a hit the remaining rows reach (a resumed run reads only what is after the state)
            left = rows - len(truth.ids_up_to(job.runner_state() or "")) if job.runner_state() else rows
            per = 250 if sc.point == "runner.batch_written" else 500
            hit = rng.randint(1, max(left // per, 1))
            rc = job.run_runner(f"{sc.point}:{hit}" if crash_left else None)
            if rc == -signal.SIGKILL:
                job.note_kill(job.runner_state())
                continue
            if rc != 0:
                stats.errors.append(f"run exited {rc} (see {job.log})")
                break
            done = True
            break
        # pipe
        before = _bookmark_value(job.singer_state)
        if crash_left and sc.point == "record":
            tap_rc, tgt_rc = job.run_pipe(rng.randint(1, rows), None)
        elif crash_left:
            tap_rc, tgt_rc = job.run_pipe(None, f"{sc.point}:{rng.randint(1, max(rows // 1000, 1))}")
            if (tap_rc, tgt_rc) == (0, 0) and misses < 2:
                misses += 1
                continue  # the point was not reached (fewer states than drawn): draw again
        else:
            tap_rc, tgt_rc = job.run_pipe(None, None)
        if -signal.SIGKILL in (tap_rc, tgt_rc):
            job.note_kill(_bookmark_value(job.singer_state))
            continue
        if (tap_rc, tgt_rc) == (0, 0):
            done = True  # (a crash point not reached: the run finished first)
            break
        stats.errors.append(
            f"pipe exited tap={tap_rc} target={tgt_rc} (state before {before}; see {job.log})"
        )
        break
    if not done and not stats.errors:
        stats.errors.append(f"job not done after {stats.runs} runs")
    if done and after is not None:
        truth = after(job) or truth
    check_final_rows(stats, truth, job.kind, job.where)
    stats.leftovers = leftovers(job.where if job.where.is_dir() else job.where.parent / "__none__")
    return stats
