#!/usr/bin/env bash
# W3 "Singer stream consumption": a pre-generated file of BENCH_ROWS Singer RECORD messages
# (1 SCHEMA, RECORDs, a STATE every 10,000) fed on stdin to targets; plus a tap's emission speed.
#
#   bash benchmarks/w3.sh                                             # 1,000,000 records, 3 runs each
#   BENCH_ROWS=100000 BENCH_RUNS=1 BENCH_ONLY='csv|jsonl' bash benchmarks/w3.sh   # quick variant
#
# Physical limits: cat FILE >/dev/null (THE limit), and a Python loop doing orjson.loads per line.
WORKLOAD=W3
source "$(dirname "${BASH_SOURCE[0]}")/_dcapix.sh"   # the shared common.sh + DCAPIX_BIN

ensure_singer
ensure_pg_data   # for the tap-emission row
tap_postgres_cfg
F=$BENCH_DATA/singer_$BENCH_ROWS.jsonl
O=$OUT/w3
echo "{\"output_path\": \"$O/target-csv\"}" >"$CFG/w3-target-csv.json"
echo "{\"destination_path\": \"$O/target-jsonl\", \"do_timestamp_file\": false}" >"$CFG/w3-target-jsonl.json"
for v in default copy; do
  extra=""; [ $v = copy ] && extra=', "use_copy": true'
  cat >"$CFG/w3-target-postgres-$v.json" <<EOF
{"sqlalchemy_url": "postgresql+psycopg://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DST_DB", "default_target_schema": "meltano_w3_$v"$extra}
EOF
done
COUNT="$PY $BENCH_DIR/count_rows.py"

# dcapix endpoint configs (as in the slot comments below)
cat >"$CFG/dcapix-sql-src.json" <<EOF
{"adapter": "sql", "url": "$PG_SRC_URL", "streams": ["public.bench_rows"]}
EOF
cat >"$CFG/dcapix-w3-parquet.json" <<EOF
{"adapter": "parquet", "path": "$O/dcapix"}
EOF
cat >"$CFG/dcapix-w3-sql-dst.json" <<EOF
{"adapter": "sql", "url": "$PG_DST_URL", "schema": "dcapix${DCAPIX_TAG}_w3"}
EOF

run_systems W3 <<EOF
name: LIMIT cat file >/dev/null
limit: 1
cmd: cat $F >/dev/null

name: LIMIT python orjson.loads per line
cmd: $PY $BENCH_DIR/limit_singer.py load $F

name: meltanolabs target-csv < file
prep: rm -rf $O/target-csv; mkdir -p $O/target-csv
cmd: $PEERS_DIR/target-csv/bin/target-csv --config $CFG/w3-target-csv.json <$F >/dev/null
check: $COUNT $O/target-csv

name: target-jsonl (singer-python) < file
prep: rm -rf $O/target-jsonl; mkdir -p $O/target-jsonl
cmd: $PEERS_DIR/target-jsonl/bin/target-jsonl --config $CFG/w3-target-jsonl.json <$F >/dev/null
check: $COUNT $O/target-jsonl

name: meltanolabs target-postgres < file (defaults)
prep: $PSQL_DST -c 'DROP SCHEMA IF EXISTS meltano_w3_default CASCADE'
cmd: $PEERS_DIR/target-postgres/bin/target-postgres --config $CFG/w3-target-postgres-default.json <$F >/dev/null
check: $(pg_count_cmd meltano_w3_default.bench_rows)

name: meltanolabs target-postgres < file (use_copy)
prep: $PSQL_DST -c 'DROP SCHEMA IF EXISTS meltano_w3_copy CASCADE'
cmd: $PEERS_DIR/target-postgres/bin/target-postgres --config $CFG/w3-target-postgres-copy.json <$F >/dev/null
check: $(pg_count_cmd meltano_w3_copy.bench_rows)

name: meltanolabs tap-postgres >/dev/null (emission only)
cmd: $TAP_PG >/dev/null 2>$BENCH_WORK/w3-tap.err
note: compare with W2 'LIMIT orjson: psycopg -> Singer RECORD lines'

# ---- dcapix (configs written above) ------------------------------------------------------
# target cfg $CFG/dcapix-w3-parquet.json : {"adapter": "parquet", "path": "$O/dcapix"}
# target cfg $CFG/dcapix-w3-sql-dst.json : {"adapter": "sql", "url": "$PG_DST_URL", "schema": "dcapix${DCAPIX_TAG}_w3"}
# tap cfg    $CFG/dcapix-sql-src.json : {"adapter": "sql", "url": "$PG_SRC_URL", "streams": ["public.bench_rows"]}

name: dcapix target-dcapix (parquet) < file
prep: rm -rf $O/dcapix
cmd: $DCAPIX_BIN/target-dcapix --config $CFG/dcapix-w3-parquet.json <$F >/dev/null
check: $COUNT $O/dcapix

name: dcapix target-dcapix (postgres) < file
prep: $PSQL_DST -c 'DROP SCHEMA IF EXISTS dcapix${DCAPIX_TAG}_w3 CASCADE'
cmd: $DCAPIX_BIN/target-dcapix --config $CFG/dcapix-w3-sql-dst.json <$F >/dev/null
check: $(pg_count_cmd dcapix${DCAPIX_TAG}_w3.bench_rows)

name: dcapix tap-dcapix >/dev/null (emission only)
cmd: $DCAPIX_BIN/tap-dcapix --config $CFG/dcapix-sql-src.json >/dev/null
EOF
