"""The sections added after the first full run: partition-worker kills (their runner), and the figure
rows of partition kills, run locks (B7, B8), H1 memory and C9 redirects (``__main__`` runs the others
and prints every row)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tests.reliability import kill, locks, memory, partkill, redirects

__all__ = ["lock_figures", "memory_figures", "partition_figures", "partition_kills", "redirect_figures"]

Row = tuple[str, str, str, bool, str]


def _pool(fn: Any, items: list[Any], workers: int) -> list[Any]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def partition_kills(size: Any, base: Path, seed: int, workers: int, note: Any) -> list[kill.KillStats]:
    """Seeded SIGKILLs of the partition workers: ``--executor local`` (the run's process) and the
    worker processes of a real dask LocalCluster; reruns until done (partkill.py)."""
    pscs = partkill.scenarios()
    jobs = [(i, t) for i in size.part_local for t in range(size.part_trials)]
    note(f"partition kills: {len(jobs)} local trials, {len(size.part_dask) * size.dask_trials} dask trials")

    def local(job: tuple[int, int]) -> kill.KillStats:
        i, t = job
        st = partkill.run_local_trial(
            pscs[i],
            base / "partkill" / f"l{i:02d}-t{t}",
            seed=seed * 1000 + 700 + i * 50 + t,
            rows=size.part_rows,
            kills=size.part_kills,
        )
        note(f"  {pscs[i].label} trial {t}: {'ok' if st.ok else 'FAIL'} kills={st.kills} {st.errors[:1]}")
        return st

    stats = _pool(local, jobs, workers)
    if size.part_dask and size.dask_trials:
        try:
            cluster = partkill.DaskCluster()
        except Exception as exc:
            st = kill.KillStats(pscs[size.part_dask[0]], seed)
            st.errors.append(f"no dask LocalCluster: {type(exc).__name__}: {exc}")
            return [*stats, st]
        try:
            for i in size.part_dask:
                for t in range(size.dask_trials):
                    st = partkill.run_dask_trial(
                        pscs[i],
                        base / "partkill" / f"d{i:02d}-t{t}",
                        cluster,
                        seed=seed * 1000 + 900 + i * 50 + t,
                        rows=size.part_rows,
                        kills=size.part_kills,
                    )
                    ok = "ok" if st.ok else "FAIL"
                    note(f"  {pscs[i].label} trial {t}: {ok} kills={st.kills} {st.errors[:1]}")
                    stats.append(st)
        finally:
            cluster.close()
    return stats


def partition_figures(ps: list[kill.KillStats]) -> list[Row]:
    by: Counter[str] = Counter()
    for s in ps:
        exe = "dask worker process" if s.scenario.mode == "dask" else "local executor"
        by[f"{exe} @{s.scenario.point}"] += s.kills
    total = sum(by.values())
    up = [s for s in ps if s.scenario.load_method == "upsert"]
    over = [s for s in ps if s.scenario.load_method != "upsert" and s.dups > s.dup_bound]
    ahead = sum(s.states_ahead for s in ps)
    left = [x for s in ps for x in s.leftovers]
    errs = [s for s in ps if s.errors]
    return [
        (
            "partition-worker SIGKILLs (partitioned runs)",
            "≥ 1 per executor",
            f"{total} in {len(ps)} trials ({', '.join(f'{k} {v}' for k, v in sorted(by.items()))})",
            any(s.scenario.mode == "dask" and s.kills for s in ps)
            and any(s.scenario.mode == "partitions" and s.kills for s in ps),
            "",
        ),
        (
            "partitioned: rows lost / upsert duplicates / append duplicates beyond bound",
            "0 / 0 / 0",
            f"{sum(s.lost for s in ps)} / {sum(s.dups for s in up)} / {len(over)} trials "
            f"(append max dups {max((s.dups for s in ps if s not in up), default=0)})",
            not any(s.lost or s.changed for s in ps) and all(s.dups == 0 for s in up) and not over,
            "",
        ),
        (
            "partitioned: bookmarks ahead of committed data (stream + partition)",
            "0",
            f"{ahead} of {sum(s.states_checked for s in ps)} checked",
            ahead == 0,
            "",
        ),
        (
            "partitioned: temp files / staging tables left after the rerun",
            "0",
            str(len(left)),
            not left,
            ", ".join(left[:3]),
        ),
        (
            "partitioned trials with other errors",
            "0",
            str(len(errs)),
            not errs,
            "; ".join(f"{s.scenario.label}: {s.errors[0][:80]}" for s in errs[:2]),
        ),
    ]


def lock_figures(ls: list[locks.LockStats]) -> list[Row]:
    b7, stale, live = ls
    return [
        (
            "B7 concurrent runs (within 100 ms): exactly one runs",
            "100 %",
            f"{b7.one_ran + b7.sequential}/{b7.trials} ({b7.one_ran} refused naming the holder, "
            f"{b7.sequential} one after the other); {b7.overlapping} overlapping; rows exact "
            f"{b7.trials - b7.rows_bad}/{b7.trials}",
            b7.ok and b7.trials > 0,
            "; ".join(b7.errors[:1])[:120],
        ),
        (
            "B8 stale lock of a SIGKILLed run: taken over",
            "100 %",
            f"{stale.taken_over}/{stale.trials}; rows exact {stale.trials - stale.rows_bad}/{stale.trials}",
            stale.ok and stale.taken_over == stale.trials > 0,
            "; ".join(stale.errors[:1])[:120],
        ),
        (
            "B8 live holder (lock_timeout 1 s): never stolen",
            "0 stolen",
            f"{live.stolen} stolen; {live.refusals} contender runs refused in {live.trials} trials; "
            f"rows exact {live.trials - live.rows_bad}/{live.trials}",
            live.ok and live.trials > 0 and live.refusals > 0,
            "; ".join(live.errors[:1])[:120],
        ),
    ]


def memory_figures(cases: list[memory.MemCase]) -> list[Row]:
    rows: list[Row] = []
    for c in cases:
        rows.append(
            (
                f"H1 peak RSS per process: {c.name}",
                f"< {memory.LIMIT_MB:.0f} MB",
                ", ".join(f"{k} {v:.0f} MB" for k, v in c.rss_mb.items())
                + f"; {c.delivered:,}/{c.rows * c.streams:,} rows in {c.seconds:.0f} s",
                c.ok,
                "; ".join(c.errors[:1])[:120],
            )
        )
    return rows


def redirect_figures(rd: redirects.RedirectResult) -> list[Row]:
    rows: list[Row] = []
    rows.append(
        (
            "C9 redirect to another origin: credentials carried there",
            "0",
            f"{len(rd.leaks)} ({rd.runs} runs, {rd.loaded} loaded every row)",
            not rd.leaks and rd.loaded == rd.runs and not [e for e in rd.errors if not e.startswith("loop")],
            ", ".join(sorted(set(rd.leaks))[:3]) or "; ".join(rd.errors[:1])[:120],
        )
    )
    rows.append(
        (
            "C9 redirect loop: bounded, one error line, exit ≠ 0",
            "yes",
            f"{rd.loop_requests} requests, {rd.loop_seconds:.1f} s, "
            f"{'one line' if rd.loop_ok else 'NOT clean'}",
            rd.loop_ok,
            "",
        )
    )
    return rows
