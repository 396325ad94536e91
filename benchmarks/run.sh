#!/usr/bin/env bash
# Run the side-by-side workloads (dcapix next to the singer-sdk peers, dlt, Sling/ingestr and the
# physical limit) and collect the markdown tables in $BENCH_WORK/results/all.md.
#
#   bash benchmarks/run.sh                 # W1..W4, full sizes
#   BENCH_QUICK=1 bash benchmarks/run.sh   # 20,000 rows, one run each
#   bash benchmarks/run.sh w2 w4           # a subset
#   BENCH_ONLY='dcapix|ingestr' bash benchmarks/run.sh w1   # paired ratio against one peer
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
echo "(all tables: $out)" >&2
