"""The sections added after the first full run: partition-worker kills, A6 double-SIGTERM stops, B3
tie kills and B4 unsorted-source kills (their runners), and the figure rows of those, of run locks
(B7, B8), H1 memory, C9 redirects and F4 PostgreSQL names (``__main__`` runs the others and prints
every row)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tests.reliability import (
    kill,
    locks,
    memory,
    paging,
    partkill,
    pgnames,
    redirects,
    signals,
    ties,
    unsorted,
)

__all__ = [
    "lock_figures",
    "memory_figures",
    "partition_figures",
    "paging_figures",
    "partition_kills",
    "pg_name_figures",
    "redirect_figures",
    "sigterm_figures",
    "sigterm_stops",
    "tie_figures",
    "tie_kills",
    "unsorted_figures",
    "unsorted_kills",
]

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
                f"< {c.limit_mb:.0f} MB",
                ", ".join(f"{k} {v:.0f} MB" for k, v in c.rss_mb.items())
                + f"; {c.delivered:,}/{c.rows * c.streams:,} rows in {c.seconds:.0f} s",
                c.ok,
                "; ".join(c.errors[:1])[:120],
            )
        )
    return rows


def redirect_figures(rd: redirects.RedirectResult) -> list[Row]:
    rows: list[Row] = []
    down = [x for x in rd.leaks if "/https to http:" in x]
    rows.append(
        (
            "C9 redirect from https to http: credentials sent in clear text",
            "0",
            f"{len(down)} ({rd.downgrade_runs} runs, loaded {rd.downgrade_loaded})",
            not down and rd.downgrade_runs > 0 and rd.downgrade_loaded == rd.downgrade_runs,
            ", ".join(down[:3]),
        )
    )
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


def _trials(
    scenarios: list[Any],
    idx: tuple[int, ...],
    trials: int,
    workdir: Path,
    seed: int,
    workers: int,
    note: Any,
    run_one: Any,
) -> list[Any]:
    """Every (scenario index, trial) of a kill-like case on the pool: ``run_one(scenario, work,
    seed)`` runs one trial in ``workdir/s<i>-t<t>`` with seed ``seed + i * 50 + t`` and returns its
    stats (a :class:`kill.KillStats`, or stats holding one as ``.kill``), noted as it ends."""
    jobs = [(i, t) for i in idx for t in range(trials)]

    def one(job: tuple[int, int]) -> Any:
        i, t = job
        st = run_one(scenarios[i], workdir / f"s{i}-t{t}", seed + i * 50 + t)
        ks = getattr(st, "kill", st)
        errors = ks.errors if ks is st else st.errors + ks.errors
        note(f"  {scenarios[i].label} trial {t}: {'ok' if st.ok else 'FAIL'} kills={ks.kills} {errors[:1]}")
        return st

    return _pool(one, jobs, workers)


def sigterm_stops(plan: Any, base: Path, seed: int, workers: int, note: Any) -> list[kill.KillStats]:
    """A6: ``plan`` = (scenario indexes, trials each, stops per trial, rows)."""
    idx, trials, stops, rows = plan
    note(f"double SIGTERM: {len(idx) * trials} trials x {stops} stops, {rows} rows")
    return _trials(
        signals.sigterm_scenarios(),
        idx,
        trials,
        base / "sigterm",
        seed * 1000 + 700,
        workers,
        note,
        lambda sc, work, sd: signals.sigterm_trial(sc, work, seed=sd, rows=rows, stops=stops),
    )


def _kill_rows(name: str, ks: list[kill.KillStats], stop: str) -> list[Row]:
    """The rows every kill-like case shares: its stops, rows exact, states safe, nothing left."""
    bad = [s for s in ks if not s.ok]
    over = [s for s in ks if s.scenario.load_method != "upsert" and s.dups > s.dup_bound]
    ups = sum(s.dups for s in ks if s.scenario.load_method == "upsert")
    return [
        (
            f"{name}: {stop}",
            "≥ 1 per trial (sum)",
            f"{sum(s.kills for s in ks)} in {len(ks)} trials "
            f"({', '.join(sorted({s.scenario.label for s in ks}))})",
            sum(s.kills for s in ks) >= len(ks) > 0,
            "",
        ),
        (
            f"{name}: rows lost / changed / upsert duplicates / append duplicates beyond bound",
            "0 / 0 / 0 / 0",
            f"{sum(s.lost for s in ks)} / {sum(s.changed for s in ks)} / {ups} / {len(over)} trials "
            f"(append max dups {max([s.dups for s in ks if s.scenario.load_method != 'upsert'] or [0])})",
            not any(s.lost or s.changed for s in ks) and not ups and not over,
            "",
        ),
        (
            f"{name}: states ahead of committed data / temp files left / trials with other errors",
            "0 / 0 / 0",
            f"{sum(s.states_ahead for s in ks)} of {sum(s.states_checked for s in ks)} checked / "
            f"{sum(len(s.leftovers) for s in ks)} / {len(bad)}",
            not bad,
            "; ".join(e for s in bad for e in s.errors[:1])[:160],
        ),
    ]


def sigterm_figures(ks: list[kill.KillStats]) -> list[Row]:
    return _kill_rows(
        "A6 SIGTERM twice (10 ms apart) in a batch", ks, "stops (clean end: no traceback, no hang)"
    )


def tie_kills(plan: Any, base: Path, seed: int, workers: int, note: Any) -> list[ties.TieStats]:
    """B3: ``plan`` = (scenario indexes, trials each, kills per trial, rows, tied rows)."""
    idx, trials, kills, rows, tied = plan
    note(f"ties: {len(idx) * trials} trials x {kills} kills, {rows} rows of which {tied} at one timestamp")
    return _trials(
        ties.tie_scenarios(),
        idx,
        trials,
        base / "ties",
        seed * 1000 + 800,
        workers,
        note,
        lambda sc, work, sd: ties.tie_trial(sc, work, seed=sd, rows=rows, ties=tied, kills=kills),
    )


def tie_figures(ts: list[ties.TieStats]) -> list[Row]:
    rows = _kill_rows(f"B3 {ts[0].ties if ts else 0:,} rows at one timestamp", [t.kill for t in ts], "kills")
    added = [t.late_added for t in ts if t.late_added is not None]
    bad = [t for t in ts if t.errors or t.late_added not in (None, 1)]
    rows.append(
        (
            "B3 a later row at the same timestamp: delivered by the next run; rows it re-reads (append)",
            "delivered; 0",
            f"{'delivered' if not any(t.kill.lost for t in ts) else 'LOST'} in {len(ts)}/{len(ts)} trials; "
            f"re-read {sum(a - 1 for a in added)} rows over {len(added)} append trials",
            not bad and not any(t.kill.lost for t in ts),
            "; ".join(e for t in bad for e in t.errors[:1])[:160],
        )
    )
    return rows


def pg_name_figures(cases: list[pgnames.NameCase] | str) -> list[Row]:
    goal = "each a load or a one-line refusal; 0 cut names"
    if isinstance(cases, str):
        return [("F4 PostgreSQL names past 63 bytes", goal, f"not run: {cases}", False, "")]
    bad = [c for c in cases if not c.ok]
    refused = sum(c.outcome == "refused" for c in cases)
    loaded = sum(c.outcome == "loaded" for c in cases)
    return [
        (
            "F4 PostgreSQL names past 63 bytes (collisions after the cut, long names rerun)",
            goal,
            f"{len(cases) - len(bad)}/{len(cases)} ({refused} refused in one line, {loaded} loaded exactly)",
            not bad,
            "; ".join(f"{c.name}: {c.errors[0]}" for c in bad[:1])[:160],
        )
    ]


def paging_figures(cases: list[paging.PagingCase]) -> list[Row]:
    """C7: keyset paging must lose nothing; offset paging is measured (it cannot see a row move)."""
    rows: list[Row] = []
    for c in cases:
        known = (c.paging, c.change) == ("offset", "update")
        note = "offset paging skips a row that slides before the offset; use cursor paging" if known else ""
        rows.append(
            (
                f"C7 {c.label} during paging, then an incremental rerun: rows lost / changed",
                "measured (documented)" if known else "0 / 0",
                f"{c.lost} / {c.changed} of {c.rows}",
                not c.errors and (known or (c.lost == 0 and c.changed == 0)),
                (note + "; ".join(c.errors[:1]))[:160],
            )
        )
    return rows


def unsorted_kills(plan: Any, base: Path, seed: int, workers: int, note: Any) -> list[unsorted.UnsortedStats]:
    """B4: ``plan`` = (scenario indexes, trials each, kills per trial, rows)."""
    idx, trials, kills, rows = plan
    note(f"unsorted: {len(idx) * trials} trials x {kills} kills, {rows} rows in random updated_at order")
    return _trials(
        unsorted.unsorted_scenarios(),
        idx,
        trials,
        base / "unsorted",
        seed * 1000 + 900,
        workers,
        note,
        lambda sc, work, sd: unsorted.unsorted_trial(sc, work, seed=sd, rows=rows, kills=kills),
    )


def unsorted_figures(us: list[unsorted.UnsortedStats]) -> list[Row]:
    rows = _kill_rows("B4 unsorted source", [u.kill for u in us], "kills")
    wrong = [u for u in us if u.errors or u.final_bookmark != u.expected_bookmark]
    rows.append(
        (
            "B4 the final state's bookmark is the stream's maximum updated_at",
            f"{len(us)}/{len(us)}",
            f"{len(us) - len(wrong)}/{len(us)}",
            not wrong and len(us) > 0,
            "; ".join(e for u in wrong for e in u.errors[:1])[:160],
        )
    )
    return rows
