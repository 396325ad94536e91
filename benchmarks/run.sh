#!/usr/bin/env bash
# Run the side-by-side workloads (dcapix next to the singer-sdk peers, dlt, Sling/ingestr and the
# physical limit) and collect the markdown tables in $BENCH_WORK/results/all.md.
#
#   bash benchmarks/run.sh                 # W1..W4 full sizes, then the small-sync pass (below)
#   BENCH_QUICK=1 bash benchmarks/run.sh   # 20,000 rows, one run each (the small pass is that run)
#   bash benchmarks/run.sh w2 w4           # a subset
#   BENCH_ONLY='dcapix|ingestr' bash benchmarks/run.sh w1   # paired ratio against one peer
#   BENCH_SMALL=0 bash benchmarks/run.sh   # full sizes only
#
# Small syncs (issue 15): scheduled incremental syncs move a few thousand rows, so what users pay is
# the fixed cost of a run. After the full-size pass every selected workload runs again at
# BENCH_SMALL_ROWS (20,000) rows -- W4 too -- with the same systems, followed by S1 (small.sh: the
# README's demo pipeline next to a plain sqlite3 -> pyarrow script, and the start-up rows).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${BENCH_WORK:-/tmp/bench-work-dcapix}
mkdir -p "$work/results"
out=$work/results/all.md
: >"$out"
[ $# -gt 0 ] || set -- w1 w2 w3 w4
for w in "$@"; do
  bash "$here/$w.sh" | tee -a "$out"
done
small_rows=${BENCH_SMALL_ROWS:-20000}
if [ "${BENCH_SMALL:-1}" = 1 ] && [ "${BENCH_QUICK:-0}" != 1 ]; then
  for w in "$@"; do
    # (results/W*.tsv of this pass overwrite the full-size ones; all.md keeps both tables)
    BENCH_ROWS=$small_rows W4_ROWS=$small_rows bash "$here/$w.sh" | tee -a "$out"
  done
  bash "$here/small.sh" | tee -a "$out"
elif [ "${BENCH_QUICK:-0}" = 1 ] && [ "${BENCH_SMALL:-1}" = 1 ]; then
  bash "$here/small.sh" | tee -a "$out"
fi
echo "(all tables: $out)" >&2
