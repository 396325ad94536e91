#!/usr/bin/env bash
# W4 "REST API to files": local HTTP server (rest_server.py, 127.0.0.1 only) serving W4_ROWS
# records in JSON pages of 100, offset/limit and cursor ("next" token) variants.
#
#   bash benchmarks/w4.sh                                  # 200,000 records, 3 runs each
#   W4_ROWS=20000 BENCH_RUNS=1 bash benchmarks/w4.sh       # quick variant
#
# The runner starts the server itself and stops it (by its PID) on exit.
# Physical limit: a plain httpx loop over all pages (limit_http.py), parse only (THE limit),
# and parse + write JSONL.
WORKLOAD=W4
source "$(dirname "${BASH_SOURCE[0]}")/_dcapix.sh"   # the shared common.sh + DCAPIX_BIN

export W4_ROWS=${W4_ROWS:-200000}
export W4_PORT=${W4_PORT:-8765}
export BENCH_ROWS=$W4_ROWS       # rows/s and checks use the record count
BASE=http://127.0.0.1:$W4_PORT
O=$OUT/w4

if [ "${BENCH_LIST:-0}" != 1 ]; then
  $PY "$BENCH_DIR/rest_server.py" 2>"$BENCH_WORK/w4-server.err" &
  SRV_PID=$!
  trap 'kill $SRV_PID 2>/dev/null; wait $SRV_PID 2>/dev/null || true' EXIT
  for _ in $(seq 1 120); do grep -q READY "$BENCH_WORK/w4-server.err" 2>/dev/null && break; sleep 0.5; done
  grep -q READY "$BENCH_WORK/w4-server.err" || { say "server did not start"; exit 1; }
fi

# tap-rest-api-msdk: offset = simple_offset_paginator + offset response style (offset/limit params,
# stops on a short page); cursor = jsonpath_paginator on $.next, token sent as ?cursor=
cat >"$CFG/w4-tap-rest-offset.json" <<EOF
{"api_url": "$BASE", "pagination_request_style": "simple_offset_paginator", "pagination_response_style": "offset",
 "pagination_page_size": 100, "pagination_initial_offset": 0, "offset_records_jsonpath": "\$.records",
 "streams": [{"name": "bench_rows", "path": "/records", "records_path": "\$.records[*]", "primary_keys": ["id"]}]}
EOF
cat >"$CFG/w4-tap-rest-cursor.json" <<EOF
{"api_url": "$BASE", "pagination_request_style": "jsonpath_paginator", "next_page_token_path": "\$.next",
 "pagination_next_page_param": "cursor",
 "streams": [{"name": "bench_rows", "path": "/cursor/records", "params": {"limit": 100}, "records_path": "\$.records[*]", "primary_keys": ["id"]}]}
EOF
echo "{\"destination_path\": \"$O/tj-offset\", \"do_timestamp_file\": false}" >"$CFG/w4-target-jsonl-offset.json"
echo "{\"destination_path\": \"$O/tj-cursor\", \"do_timestamp_file\": false}" >"$CFG/w4-target-jsonl-cursor.json"
TAP=$PEERS_DIR/tap-rest/bin/tap-rest-api-msdk
TJ=$PEERS_DIR/target-jsonl/bin/target-jsonl
COUNT="$PY $BENCH_DIR/count_rows.py"

# dcapix endpoint configs (as in the slot comments below)
cat >"$CFG/dcapix-http-offset.json" <<EOF
{"adapter": "http", "base_url": "$BASE",
 "streams": [{"name": "bench_rows", "path": "/records", "records_path": "records", "primary_key": ["id"]}],
 "pagination": {"type": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 100, "total_path": "total"}}
EOF
cat >"$CFG/dcapix-http-cursor.json" <<EOF
{"adapter": "http", "base_url": "$BASE",
 "streams": [{"name": "bench_rows", "path": "/cursor/records", "records_path": "records", "primary_key": ["id"], "params": {"limit": 100}}],
 "pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"}}
EOF
cat >"$CFG/dcapix-w4-parquet.json" <<EOF
{"adapter": "parquet", "path": "$O/dcapix"}
EOF

run_systems W4 <<EOF
name: LIMIT httpx loop, offset pages, orjson parse
limit: 1
cmd: $PY $BENCH_DIR/limit_http.py $BASE offset

name: LIMIT httpx loop, cursor pages, orjson parse
cmd: $PY $BENCH_DIR/limit_http.py $BASE cursor

name: LIMIT httpx loop, offset pages, parse + write JSONL
prep: rm -rf $O/lim; mkdir -p $O/lim
cmd: $PY $BENCH_DIR/limit_http.py $BASE offset $O/lim/bench_rows.jsonl
check: $COUNT $O/lim

name: tap-rest-api-msdk | target-jsonl (offset)
prep: rm -rf $O/tj-offset; mkdir -p $O/tj-offset
cmd: $TAP --config $CFG/w4-tap-rest-offset.json 2>$BENCH_WORK/w4-tap.err | $TJ --config $CFG/w4-target-jsonl-offset.json >/dev/null
check: $COUNT $O/tj-offset

name: tap-rest-api-msdk | target-jsonl (cursor)
prep: rm -rf $O/tj-cursor; mkdir -p $O/tj-cursor
cmd: $TAP --config $CFG/w4-tap-rest-cursor.json 2>$BENCH_WORK/w4-tap.err | $TJ --config $CFG/w4-target-jsonl-cursor.json >/dev/null
check: $COUNT $O/tj-cursor

name: tap-rest-api-msdk (offset) >/dev/null (emission only)
cmd: $TAP --config $CFG/w4-tap-rest-offset.json >/dev/null 2>$BENCH_WORK/w4-tap.err

name: dlt rest_api (offset) -> filesystem jsonl
prep: rm -rf $DLT_PIPELINES_DIR $O/dlt-jsonl
cmd: $DLT_PY $BENCH_DIR/dlt_run.py rest --base-url $BASE --paginator offset --dest filesystem --bucket $O/dlt-jsonl --format jsonl --dataset w4
check: $COUNT $O/dlt-jsonl /bench_rows/

name: dlt rest_api (cursor) -> filesystem jsonl
prep: rm -rf $DLT_PIPELINES_DIR $O/dlt-jsonl-c
cmd: $DLT_PY $BENCH_DIR/dlt_run.py rest --base-url $BASE --paginator cursor --dest filesystem --bucket $O/dlt-jsonl-c --format jsonl --dataset w4
check: $COUNT $O/dlt-jsonl-c /bench_rows/

name: dlt rest_api (offset) -> filesystem parquet
prep: rm -rf $DLT_PIPELINES_DIR $O/dlt-parquet
cmd: $DLT_PY $BENCH_DIR/dlt_run.py rest --base-url $BASE --paginator offset --dest filesystem --bucket $O/dlt-parquet --format parquet --dataset w4
check: $COUNT $O/dlt-parquet /bench_rows/

# ---- dcapix (configs written above) ------------------------------------------------------
# source cfg $CFG/dcapix-http-offset.json :
#   {"adapter": "http", "base_url": "$BASE",
#    "streams": [{"name": "bench_rows", "path": "/records", "records_path": "records", "primary_key": ["id"]}],
#    "pagination": {"type": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 100, "total_path": "total"}}
# source cfg $CFG/dcapix-http-cursor.json :
#   {"adapter": "http", "base_url": "$BASE",
#    "streams": [{"name": "bench_rows", "path": "/cursor/records", "records_path": "records", "primary_key": ["id"], "params": {"limit": 100}}],
#    "pagination": {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"}}
# dest cfg   $CFG/dcapix-w4-parquet.json : {"adapter": "parquet", "path": "$O/dcapix"}

name: dcapix tap-dcapix | target-dcapix (offset)
prep: rm -rf $O/dcapix
cmd: $DCAPIX_BIN/tap-dcapix --config $CFG/dcapix-http-offset.json | $DCAPIX_BIN/target-dcapix --config $CFG/dcapix-w4-parquet.json >/dev/null
check: $COUNT $O/dcapix

name: dcapix run (offset, in-process, 4 partition workers)
prep: rm -rf $O/dcapix
cmd: $DCAPIX_RUN --source $CFG/dcapix-http-offset.json --destination $CFG/dcapix-w4-parquet.json --workers 4
check: $COUNT $O/dcapix

name: dcapix run (offset, 2 partition worker processes)
prep: rm -rf $O/dcapix
cmd: $DCAPIX_RUN --source $CFG/dcapix-http-offset.json --destination $CFG/dcapix-w4-parquet.json --workers 2 --worker-pool processes
check: $COUNT $O/dcapix

name: dcapix run (offset, 4 partition worker processes)
prep: rm -rf $O/dcapix
cmd: $DCAPIX_RUN --source $CFG/dcapix-http-offset.json --destination $CFG/dcapix-w4-parquet.json --workers 4 --worker-pool processes
check: $COUNT $O/dcapix

name: dcapix run (offset, in-process, serial)
prep: rm -rf $O/dcapix
cmd: $DCAPIX_RUN --source $CFG/dcapix-http-offset.json --destination $CFG/dcapix-w4-parquet.json
check: $COUNT $O/dcapix

name: dcapix run (cursor, in-process)
prep: rm -rf $O/dcapix
cmd: $DCAPIX_RUN --source $CFG/dcapix-http-cursor.json --destination $CFG/dcapix-w4-parquet.json
check: $COUNT $O/dcapix

name: dcapix run (offset, in-process)
prep: rm -rf $O/dcapix
cmd: $DCAPIX_RUN --source $CFG/dcapix-http-offset.json --destination $CFG/dcapix-w4-parquet.json
check: $COUNT $O/dcapix
EOF
