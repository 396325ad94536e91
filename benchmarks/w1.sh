#!/usr/bin/env bash
# W1 "SQL to SQL": PostgreSQL bench_src.public.bench_rows -> PostgreSQL bench_dst.<schema>.bench_rows
#
#   bash benchmarks/w1.sh                       # 1,000,000 rows, 3 runs each
#   BENCH_ROWS=100000 BENCH_RUNS=1 bash benchmarks/w1.sh   # quick variant (< 60 s without the slow peers)
#   BENCH_ONLY='dlt' bash benchmarks/w1.sh       # subset (the limit always runs)
#
# Physical limit: psql COPY ... TO STDOUT | psql COPY ... FROM STDIN (same server, two databases).
# Every system writes into its own schema in bench_dst, dropped before each run (prep, untimed).
WORKLOAD=W1
source "$(dirname "${BASH_SOURCE[0]}")/_dcapix.sh"   # the shared common.sh + DCAPIX_BIN

ensure_pg_data
tap_postgres_cfg
for v in default copy; do
  extra=""; [ $v = copy ] && extra=', "use_copy": true'
  cat >"$CFG/w1-target-postgres-$v.json" <<EOF
{"sqlalchemy_url": "postgresql+psycopg://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DST_DB", "default_target_schema": "meltano_w1_$v"$extra}
EOF
done
TGT_PG=$PEERS_DIR/target-postgres/bin/target-postgres
DDL=$($PY "$BENCH_DIR/gen_data.py" ddl copy_w1 | tr '\n' ' ')

# dcapix endpoint configs (as in the slot comments below)
cat >"$CFG/dcapix-sql-src.json" <<EOF
{"adapter": "sql", "url": "$PG_SRC_URL", "streams": ["public.bench_rows"]}
EOF
cat >"$CFG/dcapix-sql-dst.json" <<EOF
{"adapter": "sql", "url": "$PG_DST_URL", "schema": "dcapix${DCAPIX_TAG}_w1"}
EOF

run_systems W1 <<EOF
name: LIMIT psql COPY TO STDOUT | psql COPY FROM STDIN
limit: 1
prep: $PSQL_DST -c 'DROP SCHEMA IF EXISTS copy_w1 CASCADE; CREATE SCHEMA copy_w1; $DDL'
cmd: $PSQL_SRC -c 'COPY bench_rows TO STDOUT' | $PSQL_DST -c 'COPY copy_w1.bench_rows FROM STDIN'
check: $(pg_count_cmd copy_w1.bench_rows)
note: text COPY, target table has the same PK

name: meltanolabs tap-postgres | target-postgres (defaults)
prep: $PSQL_DST -c 'DROP SCHEMA IF EXISTS meltano_w1_default CASCADE'
cmd: $TAP_PG 2>$BENCH_WORK/w1-tap.err | $TGT_PG --config $CFG/w1-target-postgres-default.json >/dev/null
check: $(pg_count_cmd meltano_w1_default.bench_rows)
note: FULL_TABLE; target defaults (INSERT, add_record_metadata, validate_records)

name: meltanolabs tap-postgres | target-postgres (use_copy)
prep: $PSQL_DST -c 'DROP SCHEMA IF EXISTS meltano_w1_copy CASCADE'
cmd: $TAP_PG 2>$BENCH_WORK/w1-tap.err | $TGT_PG --config $CFG/w1-target-postgres-copy.json >/dev/null
check: $(pg_count_cmd meltano_w1_copy.bench_rows)
note: use_copy=true

name: dlt sql_database(sqlalchemy) -> postgres
prep: rm -rf $DLT_PIPELINES_DIR; $PSQL_DST -c 'DROP SCHEMA IF EXISTS dlt_w1_sqla CASCADE'
cmd: $DLT_PY $BENCH_DIR/dlt_run.py sql --src $PG_SRC_URL --backend sqlalchemy --dest postgres --dest-url $PG_DST_URL --dataset dlt_w1_sqla
check: $(pg_count_cmd dlt_w1_sqla.bench_rows)
note: default backend; loader format insert_values

name: dlt sql_database(pyarrow) -> postgres
prep: rm -rf $DLT_PIPELINES_DIR; $PSQL_DST -c 'DROP SCHEMA IF EXISTS dlt_w1_arrow CASCADE'
cmd: $DLT_PY $BENCH_DIR/dlt_run.py sql --src $PG_SRC_URL --backend pyarrow --dest postgres --dest-url $PG_DST_URL --dataset dlt_w1_arrow
check: $(pg_count_cmd dlt_w1_arrow.bench_rows)
note: arrow backend; dlt picks csv (COPY) loader files

name: sling run postgres -> postgres
prep: $PSQL_DST -c 'DROP SCHEMA IF EXISTS sling_w1 CASCADE'
cmd: $SLING run --src-conn SLING_PG_SRC --src-stream public.bench_rows --tgt-conn SLING_PG_DST --tgt-object sling_w1.bench_rows --mode full-refresh
check: $(pg_count_cmd sling_w1.bench_rows)
note: Go binary; defaults: COPY into a _tmp table, then INSERT ... SELECT into the target (no PK), drop _tmp

name: ingestr ingest postgres -> postgres
prep: $PSQL_DST -c 'DROP SCHEMA IF EXISTS ingestr_w1 CASCADE'
cmd: $INGESTR ingest --source-uri $PG_SRC_URL --source-table public.bench_rows --dest-uri $PG_DST_URL --dest-table ingestr_w1.bench_rows --yes --progress log
check: $(pg_count_cmd ingestr_w1.bench_rows)
note: Go binary; defaults: replace via a staging table in _bruin_staging; PK kept; adds _ingestr_loaded_at

# ---- dcapix (configs written above) ------------------------------------------------------
# tap config  $CFG/dcapix-sql-src.json : {"adapter": "sql", "url": "$PG_SRC_URL", "streams": ["public.bench_rows"]}
# target cfg  $CFG/dcapix-sql-dst.json : {"adapter": "sql", "url": "$PG_DST_URL", "schema": "dcapix${DCAPIX_TAG}_w1"}

name: dcapix tap-dcapix | target-dcapix
prep: $PSQL_DST -c 'DROP SCHEMA IF EXISTS dcapix${DCAPIX_TAG}_w1 CASCADE'
cmd: $DCAPIX_BIN/tap-dcapix --config $CFG/dcapix-sql-src.json | $DCAPIX_BIN/target-dcapix --config $CFG/dcapix-sql-dst.json >/dev/null
check: $(pg_count_cmd dcapix${DCAPIX_TAG}_w1.bench_rows)

name: dcapix run (in-process)
prep: $PSQL_DST -c 'DROP SCHEMA IF EXISTS dcapix${DCAPIX_TAG}_w1 CASCADE'
cmd: $DCAPIX_RUN --source $CFG/dcapix-sql-src.json --destination $CFG/dcapix-sql-dst.json
check: $(pg_count_cmd dcapix${DCAPIX_TAG}_w1.bench_rows)
EOF
