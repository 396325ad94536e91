#!/usr/bin/env bash
# S1 "small sync": the README's demo pipeline (dcapix demo: SQLite customers + orders, 11,000 rows →
# Parquet) through `dcapix run`, next to a plain sqlite3 → pyarrow → Parquet script (the reference),
# ingestr on the same two tables; then S0, the start-up rows (`dcapix --help`, `tap-dcapix --about`)
# next to the bare interpreter.
#
#   bash benchmarks/small.sh                      # 3 runs each (median)
#   SMALL_DEMO_ROWS=10000 BENCH_RUNS=5 bash benchmarks/small.sh
#
# Goal (issue 15): dcapix run ≤ 2× the plain script; --help and --about ≤ 0.5 s.
WORKLOAD=S1
source "$(dirname "${BASH_SOURCE[0]}")/_dcapix.sh"   # the shared common.sh + DCAPIX_BIN

orders=${SMALL_DEMO_ROWS:-10000}
D=$BENCH_WORK/demo
O=$OUT/s1
export BENCH_ROWS=$((orders + orders / 10))   # orders + customers
# the demo database and pipeline file (dcapix demo's own generator; untimed)
$DCAPIX_BIN/python -c "from dc_api_x.runner.demo import make_demo_project as m; m('$D', $orders)" >/dev/null
sed -i "s#path: .*out\$#path: $O/dcapix#" "$D/dcapix.yml"
COUNT="$PY $BENCH_DIR/count_rows.py"
PLAIN=$DCAPIX_ROOT/benchmarks/plain_sqlite_to_parquet.py
# `tap-dcapix --about` builds its settings from every installed adapter once; later calls read the
# cached answer (see taps/tap_dcapix/__main__.py). Warm it (untimed) so the row measures the
# repeated call a Meltano project makes.
$DCAPIX_BIN/tap-dcapix --about >/dev/null
# The demo pipeline runs once (untimed) first, as a scheduled sync's project has: the pipeline
# file's parse is cached (docs/runner.md, "The pipeline file"). The row with DC_API_X_CONFIG_CACHE=0
# parses it every time, as a first run does.
$DCAPIX_RUN -c $D/dcapix.yml demo >/dev/null 2>&1
rm -rf $O/dcapix

run_systems S1 <<EOF2
name: LIMIT plain script: sqlite3 -> pyarrow -> parquet
limit: 1
prep: rm -rf $O/plain
cmd: $DCAPIX_BIN/python $PLAIN $D/shop.db $O/plain customers orders >/dev/null
check: $COUNT $O/plain

name: ingestr ingest sqlite -> parquet file (customers, then orders)
prep: rm -rf $O/ingestr
cmd: for t in customers orders; do $INGESTR ingest --source-uri sqlite:///$D/shop.db --source-table \$t --dest-uri parquet://$O/ingestr/\$t.parquet --dest-table \$t --yes --progress log || exit 1; done
check: $COUNT $O/ingestr

name: dcapix run (demo pipeline, in-process)
prep: rm -rf $O/dcapix
cmd: $DCAPIX_RUN -c $D/dcapix.yml demo
check: $COUNT $O/dcapix

name: dcapix run (demo pipeline, no config cache: DC_API_X_CONFIG_CACHE=0)
prep: rm -rf $O/dcapix
cmd: DC_API_X_CONFIG_CACHE=0 $DCAPIX_RUN -c $D/dcapix.yml demo
check: $COUNT $O/dcapix

EOF2

# S0 start-up: the limit is the interpreter itself (rows/s is meaningless here: rows = 1)
run_systems S0 <<EOF2
name: LIMIT python -c pass
limit: 1
rows: 1
cmd: $DCAPIX_BIN/python -c pass

name: python -c 'import pyarrow.parquet'
rows: 1
cmd: $DCAPIX_BIN/python -c 'import pyarrow.parquet'

name: dcapix --help
rows: 1
cmd: $DCAPIX_BIN/dcapix --help >/dev/null

name: tap-dcapix --about
rows: 1
cmd: $DCAPIX_BIN/tap-dcapix --about >/dev/null

name: tap-dcapix --about (no cache: DC_API_X_ABOUT_CACHE=0)
rows: 1
cmd: DC_API_X_ABOUT_CACHE=0 $DCAPIX_BIN/tap-dcapix --about >/dev/null
EOF2
