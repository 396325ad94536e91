"""``python -m tests.reliability [--full]``: run the suite and print the figures table.

The default is the bounded smoke size (what ``.ci/run`` runs, a few minutes); ``--full`` is the
size docs/reliability.md reports (≥ 500 kills, ≥ 1,000 HTTP faults, every hostile input). The exit
code is 1 when a figure misses its goal (known defects being fixed elsewhere included: the table
names them), 0 otherwise; ``--json FILE`` writes every measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from tests.reliability import (
    hostile,
    http_faults,
    kill,
    locks,
    memory,
    paging,
    pgnames,
    plugin_checks,
    redirects,
    reruns,
    sections,
    security,
    writekill,
)
from tests.reliability.faultserver import FAULTS


@dataclass(frozen=True)
class Size:
    name: str
    kill_trials: int  # per scenario
    kills_per_trial: int
    kill_rows: int
    scenarios: tuple[int, ...] | None  # indexes into kill.scenarios(), None: all
    http_runs: int
    http_rows: int
    hostile_cases: int | None  # None: all
    names: int | None
    name_dests: tuple[str, ...]
    reruns: int
    pg: bool
    state_kills: int  # bulk kills of the state write loop
    file_kills: int  # bulk kills of the file write loop, per format (jsonl, parquet)
    # partition-worker kills (partkill.py): local scenarios (indexes), trials each, dask trials per
    # dask scenario (indexes), kills per trial, rows
    part_local: tuple[int, ...] = (0,)
    part_trials: int = 1
    part_dask: tuple[int, ...] = (4,)
    dask_trials: int = 1
    part_kills: int = 1
    part_rows: int = 2000
    # run-lock cases B7, B8 (stale), B8 (live holder): trials each
    lock_trials: tuple[int, int, int] = (1, 1, 1)
    # C9 redirects: the auth types tried (None: all four)
    redirect_auths: tuple[str, ...] | None = ("api_key",)
    # A6 double SIGTERM: scenarios (indexes of signals.sigterm_scenarios()), trials each, stops per
    # trial, rows
    sigterm: tuple[tuple[int, ...], int, int, int] = ((2,), 1, 1, 1500)
    # B3 ties: scenarios (indexes of ties.tie_scenarios()), trials each, kills per trial, rows, tied rows
    ties: tuple[tuple[int, ...], int, int, int, int] = ((2,), 1, 1, 2000, 1500)
    # B4 unsorted source: scenarios (indexes of unsorted.unsorted_scenarios()), trials each, kills per
    # trial, rows
    unsorted: tuple[tuple[int, ...], int, int, int] = ((1,), 1, 1, 1500)
    # F4: the PostgreSQL name cases run (None: all; 0: the section is skipped — the smoke leaves it
    # to the pytest slice, each case costs a database and 1-2 target runs)
    pg_name_cases: int | None = 0
    # C7: the paging cases run (indexes of paging.CASES; None: all; (): skipped, as in the smoke)
    paging: tuple[tuple[int, ...] | None, int] = ((), 300)


SMOKE = Size("smoke", 1, 1, 1500, (0, 4, 6, 9, 11, 15), 1, 600, 16, 4, ("jsonl",), 1, True, 5, 3)
FULL = Size(
    "full",
    2,
    5,
    2000,
    None,
    24,
    2000,
    None,
    None,
    ("jsonl", "csv", "parquet"),
    10,
    True,
    250,
    90,
    part_local=(0, 1, 2, 3),
    part_trials=3,
    part_dask=(4, 5),
    dask_trials=3,
    part_kills=3,
    part_rows=6000,
    # the catalogue's 100 trials for B7 and B8 (stale and live holder)
    lock_trials=(100, 100, 100),
    redirect_auths=None,
    sigterm=((0, 1, 2, 3), 3, 2, 3000),
    ties=((0, 1, 2, 3), 2, 2, 6000, 5000),
    unsorted=((0, 1, 2, 3), 3, 2, 3000),
    pg_name_cases=None,
    paging=(None, 2000),
)


#: what ``--only`` can choose: "core" is every case measured before partitions, locks, C9 redirects,
#: G5 plugins and H1 memory were added
SECTIONS = frozenset(
    {
        "core",
        "partitions",
        "locks",
        "memory",
        "redirects",
        "plugins",
        "signals",
        "ties",
        "unsorted",
        "pgnames",
        "paging",
    }
)


def _pool(fn: Any, items: list[Any], workers: int) -> list[Any]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def run(
    size: Size, base: Path, seed: int, workers: int, log: Any, only: frozenset[str] = SECTIONS
) -> dict[str, Any]:
    canary = security.new_canary()
    out: dict[str, Any] = {"size": size.name, "seed": seed, "canary_hits": []}

    def note(msg: str) -> None:
        print(f"[reliability {time.strftime('%H:%M:%S')}] {msg}", file=log, flush=True)

    if "core" in only:
        # -- kills ------------------------------------------------------------------------------------
        scs = kill.scenarios()
        chosen = [scs[i] for i in size.scenarios] if size.scenarios is not None else scs
        jobs = [(sc, t) for sc in chosen for t in range(size.kill_trials)]
        note(f"kill harness: {len(jobs)} trials x {size.kills_per_trial} kills, {size.kill_rows} rows")
        t0 = time.monotonic()

        def trial(job: tuple[kill.Scenario, int]) -> kill.KillStats:
            sc, t = job
            i = scs.index(sc)
            st = kill.run_trial(
                sc,
                base / "kill" / f"s{i:02d}-t{t}",
                seed=seed * 1000 + i * 50 + t,
                rows=size.kill_rows,
                kills=size.kills_per_trial,
            )
            note(
                f"  {sc.label} trial {t}: {'ok' if st.ok else 'FAIL'} kills={st.kills} "
                f"lost={st.lost} dups={st.dups}/{st.dup_bound} leftovers={len(st.leftovers)} {st.errors[:1]}"
            )
            return st

        out["kills"] = _pool(trial, jobs, workers)
        out["kill_seconds"] = time.monotonic() - t0
        note(f"bulk write kills: state {size.state_kills}, files {size.file_kills} x 2")
        out["write_kills"] = _pool(
            lambda w: w(),
            [
                lambda: writekill.state_kills(base / "wk" / "state", size.state_kills, seed),
                lambda: writekill.file_kills(base / "wk" / "jsonl", "jsonl", size.file_kills, seed),
                lambda: writekill.file_kills(base / "wk" / "parquet", "parquet", size.file_kills, seed),
            ],
            workers,
        )
        note(f"  {[(w.what, w.kills, w.ok) for w in out['write_kills']]}")
    # -- partition-worker kills ------------------------------------------------------------------
    if "partitions" in only:
        out["partkills"] = sections.partition_kills(size, base, seed, workers, note)
    # -- run locks (B7, B8) ---
    if "locks" in only:
        lock_cases = (
            ("B7", locks.concurrent_trial, 500),
            ("B8-stale", locks.stale_trial, 1000),
            (
                "B8-live",
                locks.live_holder_trial,
                200,
            ),  # 2 pages: the holder runs while its contenders are refused
        )
        lock_jobs = [(c, t) for c, n in zip(lock_cases, size.lock_trials, strict=True) for t in range(n)]
        note(f"run locks: {size.lock_trials} trials (B7, B8 stale, B8 live)")
        done = _pool(
            lambda j: j[0][1](base / "locks" / f"{j[0][0]}-{j[1]:03d}", seed * 1000 + j[1], j[0][2]),
            lock_jobs,
            workers,
        )
        out["locks"] = [locks.merge(c[0], [d for d in done if d.case == c[0]]) for c in lock_cases]
        note(f"  {[(x.case, x.trials, x.ok) for x in out['locks']]}")
    # -- H1 memory ---
    if "memory" in only:
        plan = memory.memory_plan(size.name == "full")
        out["memory"] = _pool(
            lambda j: memory.run_case(j[1][0], base / "memory" / f"m{j[0]}", j[1][1]),
            list(enumerate(plan)),
            workers,
        )
        note(f"memory: {[(c.name, c.rss_mb) for c in out['memory']]}")
    if "core" in only:
        # -- mutation check ---------------------------------------------------------------------------
        mut = kill.run_trial(
            kill.Scenario("runner", "runner", "runner.batch_written", "lossy_jsonl"),
            base / "mutation",
            seed=seed,
            rows=max(size.kill_rows, 2000),
            kills=1,
        )
        out["mutation"] = mut
        note(
            f"mutation check: lossy destination lost={mut.lost} -> oracle "
            f"{'FAILS (good)' if not mut.ok else 'PASSES'}"
        )
        # -- reruns -----------------------------------------------------------------------------------
        out["reruns"] = [
            reruns.reruns(
                base / "reruns" / dest,
                dest=dest,
                load_method=method,
                rows=size.kill_rows,
                n=size.reruns,
                seed=seed,
            )
            for dest, method in (("sqlite", "upsert"), ("jsonl", "append"))
        ]
        note(f"reruns: {[(r.dest, r.ok) for r in out['reruns']]}")
        # -- HTTP faults ------------------------------------------------------------------------------
        main_kinds = tuple(k for k in FAULTS if k != "truncate-json")
        http_dir = base / "http"

        def delivery(i: int) -> http_faults.HttpStats:
            st = http_faults.delivery_run(
                http_dir / f"d{i:02d}",
                seed=seed * 100 + i,
                rows=size.http_rows,
                canary=canary,
                fault_rate=0.5,
                kinds=main_kinds,
            )
            note(
                f"  http delivery {i}: {'ok' if st.ok else 'FAIL'} faults={st.faults} "
                f"{st.seconds:.1f}s {st.errors[:1]}"
            )
            return st

        out["http"] = _pool(delivery, list(range(size.http_runs)), workers)
        out["http_truncated_json"] = http_faults.delivery_run(
            http_dir / "truncated-json",
            seed=seed,
            rows=400,
            canary=canary,
            fault_rate=0.3,
            kinds=("truncate-json",),
        )
        out["http_exhaustion"] = [
            http_faults.exhaustion_run(http_dir / f"x-{p.strip('/')}", p, canary=canary, deadline=30)
            for p in ("/down", "/loop", "/repeat", "/empty")
        ]
        out["canary_hits"] += security.scan(canary, http_dir)
        note(f"http: {sum(s.faults for s in out['http'])} faults")
        # -- hostile input ----------------------------------------------------------------------------
        cs = hostile.cases()
        if size.hostile_cases is not None:
            step = max(len(cs) // size.hostile_cases, 1)
            cs = cs[::step][: size.hostile_cases]
        out["hostile"] = hostile.run_cases(cs, base / "hostile", workers=workers)
        note(f"hostile: {sum(o.ok for o in out['hostile'])}/{len(out['hostile'])} ok")
        # -- security ---------------------------------------------------------------------------------
        names = security.HOSTILE_NAMES if size.names is None else security.HOSTILE_NAMES[: size.names]
        out["names"] = security.hostile_names(base / "names", names, size.name_dests, workers=workers)
        out["secrets"] = security.secret_paths(base / "secrets", canary)
        out["canary_hits"] += [h for s in out["secrets"] for h in s.hits]
        out["tls"] = security.tls_checks(base / "tls")
        out["pg"] = (
            security.pg_hostile(base / "pg") if size.pg else security.SqlResult(False, "not in this size")
        )
    if "redirects" in only:
        out["redirects"] = redirects.redirect_checks(base / "redirects", canary, auths=size.redirect_auths)
        rd = out["redirects"]
        note(f"redirects: {rd.runs} runs, leaks {rd.leaks}, loop ok {rd.loop_ok}")
    if "plugins" in only:
        out["plugins"] = plugin_checks.plugin_checks(base / "plugins")
    if "signals" in only:
        out["signals"] = sections.sigterm_stops(size.sigterm, base, seed, workers, note)
    if "ties" in only:
        out["ties"] = sections.tie_kills(size.ties, base, seed, workers, note)
    if "unsorted" in only:
        out["unsorted"] = sections.unsorted_kills(size.unsorted, base, seed, workers, note)
    if "paging" in only and size.paging[0] != ():
        out["paging"] = paging.paging_cases(base / "paging", size.paging[1], size.paging[0])
        note(f"paging: {[(c.label, c.lost, c.changed) for c in out['paging']]}")
    if "pgnames" in only and size.pg_name_cases != 0:
        got = pgnames.pg_name_cases(base / "pgnames")
        out["pgnames"] = got if isinstance(got, str) else got[: size.pg_name_cases]
    # the final sweep: every file the whole run left (outputs, logs, state, temp dirs)
    out["canary_hits"] = sorted(set(out["canary_hits"]) | set(security.scan(canary, base)))
    note("security done")
    return out


# ----------------------------------------------------------------------------------- the table
def canary_row(r: dict[str, Any]) -> tuple[str, str, str, bool, str]:
    """The figures row of the secret canary's occurrences in everything the run left."""
    hits = r["canary_hits"]
    return (
        "canary occurrences (every output, log, state, file)",
        "0",
        str(len(hits)),
        not hits,
        ", ".join(hits[:3]),
    )


def figures(r: dict[str, Any]) -> list[tuple[str, str, str, bool, str]]:
    """(figure, goal, measured, met, note) rows of the sections that ran."""
    rows = core_figures(r) if "kills" in r else []
    for key, section_rows in (
        ("partkills", sections.partition_figures),
        ("locks", sections.lock_figures),
        ("memory", sections.memory_figures),
        ("redirects", sections.redirect_figures),
        ("signals", sections.sigterm_figures),
        ("ties", sections.tie_figures),
        ("unsorted", sections.unsorted_figures),
        ("pgnames", sections.pg_name_figures),
        ("paging", sections.paging_figures),
    ):
        if key in r:
            rows += section_rows(r[key])
    if "plugins" in r:
        pc: plugin_checks.PluginChecks = r["plugins"]
        rows.append(
            (
                "G5 plugins: allowlist, broken import isolated, shadowing rejected, CWD ignored",
                "4/4",
                f"{len(pc.passed)}/4",
                pc.ok,
                "; ".join(pc.failed)[:120],
            )
        )
    if "kills" not in r:  # the final canary sweep over the sections that ran
        rows.append(canary_row(r))
    return rows


def core_figures(r: dict[str, Any]) -> list[tuple[str, str, str, bool, str]]:
    """The rows of the cases measured first (kills, write loops, reruns, HTTP, hostile, security)."""
    rows: list[tuple[str, str, str, bool, str]] = []
    ks: list[kill.KillStats] = r["kills"]
    wk: list[writekill.WriteKillStats] = r["write_kills"]
    by_class: Counter[str] = Counter()
    for s in ks:
        by_class[s.scenario.fault_class] += s.kills
    for w in wk:
        by_class[w.what.split(" (")[0] + " loop"] += w.kills
    total = sum(by_class.values())
    rows.append(
        (
            "seeded SIGKILLs",
            "≥ 500 (full)",
            f"{total} ({', '.join(f'{k} {v}' for k, v in sorted(by_class.items()))})",
            total >= (500 if r["size"] == "full" else 1),
            "",
        )
    )
    lost = sum(s.lost for s in ks)
    rows.append(("rows lost after rerun", "0", str(lost), lost == 0, ""))
    wl = sum(w.lost_acknowledged + w.ahead + w.unreadable for w in wk)
    rows.append(
        (
            "write loops: acknowledged writes lost / state ahead / unreadable",
            "0",
            f"{sum(w.lost_acknowledged for w in wk)} / {sum(w.ahead for w in wk)} / "
            f"{sum(w.unreadable for w in wk)}",
            wl == 0 and not any(w.errors and not w.torn for w in wk),
            "; ".join(e for w in wk for e in w.errors[:1]),
        )
    )
    up = [s for s in ks if s.scenario.load_method == "upsert"]
    rows.append(("upsert duplicates", "0", str(sum(s.dups for s in up)), all(s.dups == 0 for s in up), ""))
    ap = [s for s in ks if s.scenario.load_method != "upsert"]
    over = [s for s in ap if s.dups > s.dup_bound]
    rows.append(
        (
            "append duplicates beyond rows after last state",
            "0",
            f"{len(over)} trials over; max dups {max((s.dups for s in ap), default=0)}, "
            f"bound {max((s.dup_bound for s in ap), default=0)}",
            not over,
            "",
        )
    )
    checked = sum(s.states_checked for s in ks)
    ahead = sum(s.states_ahead for s in ks)
    rows.append(("states ahead of committed data", "0", f"{ahead} of {checked} checked", ahead == 0, ""))
    torn = sum(s.torn_reads for s in ks) + sum(w.torn for w in wk)
    rows.append(("torn visible files", "0", str(torn), torn == 0, ""))
    left = [s for s in ks if s.leftovers]
    wleft = [w for w in wk if w.leftovers]
    rows.append(
        (
            "trials leaving temp files after the rerun",
            "0",
            f"{len(left)} of {len(ks)} trials ({sum(len(s.leftovers) for s in left)} files); write loops "
            f"{sum(len(w.leftovers) for w in wleft)} files",
            not left and not wleft,
            "known: .part tmp files after SIGKILL (runner-resume)" if left or wleft else "",
        )
    )
    errs = [s for s in ks if s.errors]
    rows.append(
        (
            "kill trials with other errors",
            "0",
            str(len(errs)),
            not errs,
            "; ".join(f"{s.scenario.label}: {s.errors[0][:80]}" for s in errs[:2]),
        )
    )
    mut: kill.KillStats = r["mutation"]
    rows.append(
        ("mutation: lossy destination detected", "oracle fails", f"lost={mut.lost}", mut.lost > 0, "")
    )
    rr: list[reruns.RerunResult] = r["reruns"]
    rows.append(
        (
            "reruns of a finished job: rows changed",
            "0",
            f"{sum(x.rows_changed for x in rr)} over {sum(x.reruns for x in rr)} reruns",
            all(x.rows_changed == 0 and not x.errors for x in rr),
            "",
        )
    )
    rows.append(
        (
            "empty run: state byte-identical",
            "yes",
            "yes" if all(x.state_identical and x.pipe_state_identical for x in rr) else "no",
            all(x.state_identical and x.pipe_state_identical for x in rr),
            "runner store and target STATE",
        )
    )
    rows.append(
        (
            "future bookmark: 0 rows, state kept",
            "yes",
            "yes" if all(x.future_rows == 0 and x.future_state_kept for x in rr) else "no",
            all(x.future_rows == 0 and x.future_state_kept for x in rr),
            "",
        )
    )
    hs: list[http_faults.HttpStats] = r["http"]
    nf = sum(s.faults for s in hs)
    kinds: Counter[str] = Counter()
    for s in hs:
        kinds.update(s.fault_kinds)
    rows.append(
        (
            "injected HTTP faults",
            "≥ 1,000 (full)",
            f"{nf} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})",
            nf >= (1000 if r["size"] == "full" else 1),
            "",
        )
    )
    sent = sum(s.records for s in hs)
    exact = [s for s in hs if s.delivered_exact and not s.dups]
    rows.append(
        (
            "records delivered exactly",
            "100 %",
            f"{len(exact)}/{len(hs)} runs exact ({sent} rows)",
            len(exact) == len(hs),
            "",
        )
    )
    early = sum(s.early_retries for s in hs)
    rows.append(("retries before Retry-After", "0", str(early), early == 0, ""))
    mx = max((s.max_attempts for s in hs), default=0)
    rows.append(("attempts per request", "≤ 5", f"max {mx}", mx <= 5, ""))
    tok = sum(s.token_requests for s in hs)
    exp = sum(s.expiries for s in hs)
    rows.append(
        (
            "OAuth token requests per expiry",
            "≤ 1 (+1 initial per run)",
            f"{tok} requests, {exp} expired-token 401s",
            all(s.token_requests <= s.expiries + 1 for s in hs),
            "known: refresh storms (http-resume)"
            if any(s.token_requests > s.expiries + 1 for s in hs)
            else "",
        )
    )
    tj: http_faults.HttpStats = r["http_truncated_json"]
    rows.append(
        (
            "truncated 200 (cut JSON) retried",
            "records exact",
            f"{tj.faults} faults, {'exact' if tj.ok else tj.errors[0][:70]}",
            tj.ok,
            "" if tj.ok else "known: truncated-200 retry (http-resume)",
        )
    )
    xs: list[http_faults.HttpStats] = r["http_exhaustion"]
    past = [x for x in xs if x.past_deadline] + [s for s in hs if s.past_deadline]
    rows.append(
        (
            "runs past their deadline",
            "0",
            f"{len(past)}" + (f" ({', '.join(x.name for x in past)})" if past else ""),
            not past,
            "known: repeated-page detection (http-resume)" if any("/repeat" in x.name for x in past) else "",
        )
    )
    xbad = [x for x in xs if x.errors and not x.past_deadline]
    rows.append(
        (
            "exhaustion/loop: exit ≠ 0, state not advanced",
            "100 %",
            f"{len(xs) - len(xbad) - len([x for x in xs if x.past_deadline])}/{len(xs)}",
            not xbad,
            "; ".join(f"{x.name}: {x.errors[0]}" for x in xbad),
        )
    )
    ho: list[hostile.Outcome] = r["hostile"]
    bad = [o for o in ho if not o.ok]
    silent = [o for o in bad if "silent value change" in o.detail or "loaded what" in o.detail]
    rows.append(
        (
            "hostile inputs",
            "≥ 60 (full)",
            f"{len(ho)}: {sum(o.kind == 'load' and o.ok for o in ho)} loads, "
            f"{sum(o.kind == 'error' and o.ok for o in ho)} clean refusals, {len(bad)} failing",
            len(ho) >= (60 if r["size"] == "full" else 1) and not bad,
            "; ".join(sorted({o.case.known_defect for o in bad if o.case.known_defect})),
        )
    )
    rows.append(
        (
            "silent value changes",
            "0",
            str(len(silent)),
            not silent,
            ", ".join(o.case.name for o in silent[:6]),
        )
    )
    nm = r["names"]
    rows.append(
        (
            "hostile stream names: files outside the output root",
            "0",
            f"{len(nm.outside)} ({nm.names} runs: {nm.loaded} loaded, {nm.refused} refused, "
            f"{len(nm.bad)} bad)",
            not nm.outside and not nm.bad,
            "; ".join(nm.bad[:2]),
        )
    )
    pg = r["pg"]
    if pg.available:
        rows.append(
            (
                "hostile SQL names/values: unintended statements",
                "0",
                f"{len(pg.unintended)} of {pg.statements} logged; canary table "
                f"{'intact' if pg.canary_table_ok else 'GONE'}; "
                f"values {'exact' if pg.values_exact else 'CHANGED'}",
                not pg.unintended and pg.canary_table_ok and pg.values_exact and not pg.errors,
                "; ".join(pg.errors[:1]),
            )
        )
    else:
        rows.append(
            ("hostile SQL names/values: unintended statements", "0", f"not run: {pg.reason}", False, "")
        )
    sec = r["secrets"]
    not_one = [s.name for s in sec if not s.one_line]
    rows.append(
        (
            "secret error paths: one line, no traceback",
            "100 %",
            f"{len(sec) - len(not_one)}/{len(sec)}",
            not not_one,
            ", ".join(not_one),
        )
    )
    rows.append(canary_row(r))
    tls = r["tls"]
    rows.append(
        (
            "TLS: self-signed refused by default",
            "yes",
            "yes" if tls.default_refused else "no",
            tls.default_refused,
            "",
        )
    )
    rows.append(
        (
            "TLS: verify off works and logs a WARNING",
            "yes",
            f"works={tls.off_works}, warned={tls.off_warned}, CA bundle={tls.ca_bundle_works}",
            tls.off_works and tls.off_warned and tls.ca_bundle_works,
            "",
        )
    )
    return rows


def render(rows: list[tuple[str, str, str, bool, str]]) -> str:
    lines = ["| figure | goal | measured | met | note |", "| --- | --- | --- | --- | --- |"]
    for f, g, m, ok, n in rows:
        lines.append(f"| {f} | {g} | {m} | {'yes' if ok else '**no**'} | {n} |")
    return "\n".join(lines)


def _jsonable(o: Any) -> Any:
    if is_dataclass(o) and not isinstance(o, type):
        return {k: _jsonable(v) for k, v in asdict(o).items()}
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (str, int, float, bool)) or o is None:
        return o
    return str(o)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="the full size (docs/reliability.md)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="trials at a time")
    ap.add_argument("--workdir", help="keep the trial directories here (default: a temp dir, removed)")
    ap.add_argument("--json", help="write every measurement to this file")
    ap.add_argument(
        "--only",
        help=f"comma-separated sections to run (default: all): {', '.join(sorted(SECTIONS))}",
    )
    ap.add_argument(
        "--lock-trials",
        help="B7,B8-stale,B8-live trials (default: the size's), e.g. 100,100,0 for a session's share",
    )
    args = ap.parse_args(argv)
    size = FULL if args.full else SMOKE
    if args.lock_trials:
        from dataclasses import replace

        b7, stale, live = (int(x) for x in args.lock_trials.split(","))
        size = replace(size, lock_trials=(b7, stale, live))
    base = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="dcapix-reliability-"))
    base.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        only = frozenset(x.strip() for x in args.only.split(",")) if args.only else SECTIONS
        if only - SECTIONS:
            ap.error(f"unknown section(s) {sorted(only - SECTIONS)}; sections: {sorted(SECTIONS)}")
        results = run(size, base, args.seed, args.workers, sys.stderr, only)
    finally:
        if not args.workdir:
            shutil.rmtree(base, ignore_errors=True)
    rows = figures(results)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        check=False,
    ).stdout.strip()
    load = os.getloadavg()
    print(
        f"dc-api-x reliability figures — {size.name} size, seed {args.seed}, commit {commit or '?'}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.monotonic() - t0:.0f} s, "
        f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} on {os.cpu_count()} cores"
    )
    print()
    print(render(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(_jsonable({**results, "figures": rows}), indent=1, default=str))
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
