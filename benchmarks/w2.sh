#!/usr/bin/env bash
# W2 "SQL to Parquet/files": PostgreSQL table (and the same data as a SQLite file) -> files.
#
#   bash benchmarks/w2.sh                                    # 1,000,000 rows, 3 runs each
#   BENCH_ROWS=100000 BENCH_RUNS=1 BENCH_ONLY='LIMIT|dlt' bash benchmarks/w2.sh   # quick variant
#   W2_PG_DRIVER=/path/libadbc_driver_postgresql.so bash benchmarks/w2.sh   # + a dcapix row reading
#       through that build of the ADBC PostgreSQL driver (DCAPIX_ADBC_POSTGRESQL_DRIVER; the wheel's
#       is built without optimisation, docs/benchmarks.md)
#
# Physical limits: pyarrow straight from PostgreSQL (COPY CSV parsed by Arrow = THE limit; or
# psycopg rows) / sqlite3 into one Parquet file (limit_to_parquet.py), and, for the Singer JSON path, psycopg rows orjson-dumped as
# RECORD lines to /dev/null (limit_singer.py dump).
# Peer not run: target-parquet 0.0.1 (PyPI, 2019, singer-python) -- pins pandas 0.24/pyarrow 0.13,
# and with current deps crashes on Python 3.10+ (collections.MutableMapping); no SDK-based parquet
# target is published on PyPI.
WORKLOAD=W2
source "$(dirname "${BASH_SOURCE[0]}")/_dcapix.sh"   # the shared common.sh + DCAPIX_BIN

ensure_pg_data
ensure_sqlite
tap_postgres_cfg
SQLITE=$BENCH_DATA/bench_$BENCH_ROWS.sqlite
O=$OUT/w2
echo "{\"output_path\": \"$O/target-csv\"}" >"$CFG/w2-target-csv.json"
echo "{\"destination_path\": \"$O/target-jsonl\", \"do_timestamp_file\": false}" >"$CFG/w2-target-jsonl.json"
COUNT="$PY $BENCH_DIR/count_rows.py"
export SLING_SQLITE=sqlite://$SQLITE

# dcapix endpoint configs (as in the slot comments below)
cat >"$CFG/dcapix-sql-src.json" <<EOF
{"adapter": "sql", "url": "$PG_SRC_URL", "streams": ["public.bench_rows"]}
EOF
cat >"$CFG/dcapix-sqlite-src.json" <<EOF
{"adapter": "sql", "url": "sqlite:///$SQLITE", "streams": ["bench_rows"]}
EOF
cat >"$CFG/dcapix-parquet.json" <<EOF
{"adapter": "parquet", "path": "$O/dcapix"}
EOF

run_systems W2 <<EOF
name: LIMIT pyarrow: COPY csv -> arrow csv reader -> parquet
limit: 1
prep: rm -rf $O/lim-pgcopy
cmd: $PY $BENCH_DIR/limit_to_parquet.py pgcopy $PG_SRC_URL $O/lim-pgcopy
check: $COUNT $O/lim-pgcopy

name: LIMIT pyarrow: psycopg rows -> parquet
prep: rm -rf $O/lim-pg
cmd: $PY $BENCH_DIR/limit_to_parquet.py pg $PG_SRC_URL $O/lim-pg
check: $COUNT $O/lim-pg

name: LIMIT pyarrow: sqlite3 -> parquet
prep: rm -rf $O/lim-sqlite
cmd: $PY $BENCH_DIR/limit_to_parquet.py sqlite $SQLITE $O/lim-sqlite
check: $COUNT $O/lim-sqlite

name: LIMIT orjson: psycopg -> Singer RECORD lines >/dev/null
cmd: $PY $BENCH_DIR/limit_singer.py dump $PG_SRC_URL >/dev/null

name: meltanolabs tap-postgres | target-csv
prep: rm -rf $O/target-csv; mkdir -p $O/target-csv
cmd: $TAP_PG 2>$BENCH_WORK/w2-tap.err | $PEERS_DIR/target-csv/bin/target-csv --config $CFG/w2-target-csv.json >/dev/null
check: $COUNT $O/target-csv

name: meltanolabs tap-postgres | target-jsonl (singer-python)
prep: rm -rf $O/target-jsonl; mkdir -p $O/target-jsonl
cmd: $TAP_PG 2>$BENCH_WORK/w2-tap.err | $PEERS_DIR/target-jsonl/bin/target-jsonl --config $CFG/w2-target-jsonl.json >/dev/null
check: $COUNT $O/target-jsonl

name: dlt sql_database(pyarrow) postgres -> filesystem parquet
prep: rm -rf $DLT_PIPELINES_DIR $O/dlt-pg
cmd: $DLT_PY $BENCH_DIR/dlt_run.py sql --src $PG_SRC_URL --backend pyarrow --dest filesystem --bucket $O/dlt-pg --format parquet --dataset w2
check: $COUNT $O/dlt-pg /bench_rows/

name: dlt sql_database(pyarrow) sqlite -> filesystem parquet
prep: rm -rf $DLT_PIPELINES_DIR $O/dlt-sqlite
cmd: $DLT_PY $BENCH_DIR/dlt_run.py sql --src sqlite:///$SQLITE --backend pyarrow --dest filesystem --bucket $O/dlt-sqlite --format parquet --dataset w2
check: $COUNT $O/dlt-sqlite /bench_rows/

name: sling run postgres -> parquet file
prep: rm -rf $O/sling-pg
cmd: $SLING run --src-conn SLING_PG_SRC --src-stream public.bench_rows --tgt-object file://$O/sling-pg/bench_rows.parquet
check: $COUNT $O/sling-pg
note: Go binary; defaults: format from the extension, rows streamed as CSV into a duckdb CLI child that writes the Parquet; 1.4.11 keeps only the last 100 MiB CSV part (rows?N once the CSV passes 100 MiB, ~500k rows here)

name: sling run sqlite -> parquet file
prep: rm -rf $O/sling-sqlite
cmd: $SLING run --src-conn SLING_SQLITE --src-stream main.bench_rows --tgt-object file://$O/sling-sqlite/bench_rows.parquet
check: $COUNT $O/sling-sqlite
note: same duckdb path and same loss above 100 MiB of CSV; timestamps stay text, amount becomes decimal(24,6)

name: sling run postgres -> parquet file (SLING_DUCKDB_COMPUTE=false)
prep: rm -rf $O/sling-pg-go
cmd: SLING_DUCKDB_COMPUTE=false $SLING run --src-conn SLING_PG_SRC --src-stream public.bench_rows --tgt-object file://$O/sling-pg-go/bench_rows.parquet
check: $COUNT $O/sling-pg-go
note: sling's own Go Parquet writer instead of duckdb

name: sling run sqlite -> parquet file (SLING_DUCKDB_COMPUTE=false)
prep: rm -rf $O/sling-sqlite-go
cmd: SLING_DUCKDB_COMPUTE=false $SLING run --src-conn SLING_SQLITE --src-stream main.bench_rows --tgt-object file://$O/sling-sqlite-go/bench_rows.parquet
check: $COUNT $O/sling-sqlite-go

name: ingestr ingest postgres -> parquet file
prep: rm -rf $O/ingestr-pg
cmd: $INGESTR ingest --source-uri $PG_SRC_URL --source-table public.bench_rows --dest-uri parquet://$O/ingestr-pg/bench_rows.parquet --dest-table bench_rows --yes --progress log
check: $COUNT $O/ingestr-pg
note: Go binary; defaults (adds _ingestr_loaded_at)

name: ingestr ingest sqlite -> parquet file
prep: rm -rf $O/ingestr-sqlite
cmd: $INGESTR ingest --source-uri sqlite:///$SQLITE --source-table bench_rows --dest-uri parquet://$O/ingestr-sqlite/bench_rows.parquet --dest-table bench_rows --yes --progress log
check: $COUNT $O/ingestr-sqlite

# ---- dcapix (configs written above) ------------------------------------------------------
# source cfg $CFG/dcapix-sql-src.json    : {"adapter": "sql", "url": "$PG_SRC_URL", "streams": ["public.bench_rows"]}
# source cfg $CFG/dcapix-sqlite-src.json : {"adapter": "sql", "url": "sqlite:///$SQLITE", "streams": ["bench_rows"]}
# dest   cfg $CFG/dcapix-parquet.json    : {"adapter": "parquet", "path": "$O/dcapix"}

name: dcapix tap-dcapix | target-dcapix (pg -> parquet)
prep: rm -rf $O/dcapix
cmd: $DCAPIX_BIN/tap-dcapix --config $CFG/dcapix-sql-src.json | $DCAPIX_BIN/target-dcapix --config $CFG/dcapix-parquet.json >/dev/null
check: $COUNT $O/dcapix

name: dcapix run (pg -> parquet, in-process)
prep: rm -rf $O/dcapix
cmd: $DCAPIX_RUN --source $CFG/dcapix-sql-src.json --destination $CFG/dcapix-parquet.json
check: $COUNT $O/dcapix

$( [ -n "${W2_PG_DRIVER:-}" ] && printf '%s\n' "name: dcapix run (pg -> parquet, in-process, ADBC driver \$W2_PG_DRIVER)" "prep: rm -rf $O/dcapix" "cmd: DCAPIX_ADBC_POSTGRESQL_DRIVER=$W2_PG_DRIVER $DCAPIX_RUN --source $CFG/dcapix-sql-src.json --destination $CFG/dcapix-parquet.json" "check: $COUNT $O/dcapix" )

name: dcapix run (sqlite -> parquet, in-process)
prep: rm -rf $O/dcapix
cmd: $DCAPIX_RUN --source $CFG/dcapix-sqlite-src.json --destination $CFG/dcapix-parquet.json
check: $COUNT $O/dcapix
EOF
