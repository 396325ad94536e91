#!/usr/bin/env bash
# The Singer pipe that keeps Arrow (issue 15 goal 4): `tap-dcapix | target-dcapix` with the tap's
# batch_config asking for Arrow IPC BATCH files ("format": "arrow") and for Parquet ones, next to `dcapix run` on the same data, W2
# (PostgreSQL -> Parquet) and W1 (PostgreSQL -> PostgreSQL). Runs are interleaved in one invocation
# (benchmarks/singer_bridge_pair.py; order reversed every other round), so a loaded machine slows
# every system alike; "wall vs peer" is the ratio to `dcapix run` (the second block). Goal: the pipe
# at >= 0.7x the rate of `dcapix run`, i.e. wall vs peer <= 1.43. The plain RECORD pipe is shown too.
# Every run's row count is checked.
#
#   bash benchmarks/arrow_pipe.sh                          # 1,000,000 rows, 3 rounds
#   BENCH_ROWS=200000 BENCH_RUNS=3 bash benchmarks/arrow_pipe.sh
#   ARROW_PIPE_ONLY=W2 bash benchmarks/arrow_pipe.sh       # one workload
#   ARROW_PIPE_RECORDS=0 bash benchmarks/arrow_pipe.sh     # without the (slow) RECORD pipe rows
WORKLOAD=AP
source "$(dirname "${BASH_SOURCE[0]}")/_dcapix.sh"

ensure_pg_data
O=$OUT/arrow-pipe
B=$O/batches
mkdir -p "$O"
cat >"$CFG/ap-src.json" <<EOF
{"adapter": "sql", "url": "$PG_SRC_URL", "streams": ["public.bench_rows"]}
EOF
cat >"$CFG/ap-tap.json" <<EOF
{"adapter": "sql", "url": "$PG_SRC_URL", "streams": ["public.bench_rows"],
 "batch_config": {"encoding": {"format": "parquet"}, "storage": {"root": "file://$B"}, "batch_size": 100000}}
EOF
cat >"$CFG/ap-tap-arrow.json" <<EOF
{"adapter": "sql", "url": "$PG_SRC_URL", "streams": ["public.bench_rows"],
 "batch_config": {"encoding": {"format": "arrow"}, "storage": {"root": "file://$B"}, "batch_size": 100000}}
EOF
cat >"$CFG/ap-parquet.json" <<EOF
{"adapter": "parquet", "path": "$O/out"}
EOF
cat >"$CFG/ap-parquet-batch.json" <<EOF
{"adapter": "parquet", "path": "$O/out", "batch_config": {"storage": {"root": "file://$B"}}}
EOF
W1_SCHEMA=dcapix${DCAPIX_TAG}_ap_w1
cat >"$CFG/ap-pg.json" <<EOF
{"adapter": "sql", "url": "$PG_DST_URL", "schema": "$W1_SCHEMA"}
EOF
cat >"$CFG/ap-pg-batch.json" <<EOF
{"adapter": "sql", "url": "$PG_DST_URL", "schema": "$W1_SCHEMA", "batch_config": {"storage": {"root": "file://$B"}}}
EOF
PAIR="$DCAPIX_BIN/python $DCAPIX_ROOT/benchmarks/singer_bridge_pair.py"
TAP=$DCAPIX_BIN/tap-dcapix
TARGET=$DCAPIX_BIN/target-dcapix
# after a BATCH pipe no file may be left under the batch root (the target removes what it loaded)
LEFT="test -z \"\$(ls -A $B 2>/dev/null)\""

if [[ "${ARROW_PIPE_ONLY:-W1W2}" == *W2* ]]; then
  echo "### W2 PostgreSQL -> Parquet"
  W2_RECORDS=""
  [ "${ARROW_PIPE_RECORDS:-1}" = 0 ] || W2_RECORDS="name: tap-dcapix | target-dcapix, RECORD lines
prep: rm -rf $O/out
cmd: $TAP --config $CFG/ap-src.json 2>$O/tap.err | $TARGET --config $CFG/ap-parquet.json >/dev/null 2>$O/target.err
count: $O/out"
  $PAIR <<EOF
name: tap-dcapix | target-dcapix, Arrow IPC BATCH files (batch_config)
prep: rm -rf $O/out $B
cmd: $TAP --config $CFG/ap-tap-arrow.json 2>$O/tap.err | $TARGET --config $CFG/ap-parquet-batch.json >/dev/null 2>$O/target.err && $LEFT
count: $O/out

name: dcapix run (in-process)
prep: rm -rf $O/out
cmd: $DCAPIX_RUN --source $CFG/ap-src.json --destination $CFG/ap-parquet.json >/dev/null
count: $O/out

name: tap-dcapix | target-dcapix, Parquet BATCH files (batch_config)
prep: rm -rf $O/out $B
cmd: $TAP --config $CFG/ap-tap.json 2>$O/tap.err | $TARGET --config $CFG/ap-parquet-batch.json >/dev/null 2>$O/target.err && $LEFT
count: $O/out

$W2_RECORDS
EOF
fi

if [[ "${ARROW_PIPE_ONLY:-W1W2}" == *W1* ]]; then
  echo "### W1 PostgreSQL -> PostgreSQL"
  DROP="$PSQL_DST -c 'DROP SCHEMA IF EXISTS $W1_SCHEMA CASCADE'"
  COUNTQ=$(pg_count_cmd "$W1_SCHEMA.bench_rows")
  W1_RECORDS=""
  [ "${ARROW_PIPE_RECORDS:-1}" = 0 ] || W1_RECORDS="name: tap-dcapix | target-dcapix, RECORD lines
prep: $DROP
cmd: $TAP --config $CFG/ap-src.json 2>$O/tap.err | $TARGET --config $CFG/ap-pg.json >/dev/null 2>$O/target.err
check: $COUNTQ"
  $PAIR <<EOF
name: tap-dcapix | target-dcapix, Arrow IPC BATCH files (batch_config)
prep: $DROP; rm -rf $B
cmd: $TAP --config $CFG/ap-tap-arrow.json 2>$O/tap.err | $TARGET --config $CFG/ap-pg-batch.json >/dev/null 2>$O/target.err && $LEFT
check: $COUNTQ

name: dcapix run (in-process)
prep: $DROP
cmd: $DCAPIX_RUN --source $CFG/ap-src.json --destination $CFG/ap-pg.json >/dev/null
check: $COUNTQ

name: tap-dcapix | target-dcapix, Parquet BATCH files (batch_config)
prep: $DROP; rm -rf $B
cmd: $TAP --config $CFG/ap-tap.json 2>$O/tap.err | $TARGET --config $CFG/ap-pg-batch.json >/dev/null 2>$O/target.err && $LEFT
check: $COUNTQ

$W1_RECORDS
EOF
  bash -c "$DROP" >/dev/null 2>&1
fi
