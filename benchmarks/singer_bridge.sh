#!/usr/bin/env bash
# The Singer bridge's overhead: meltanolabs-tap-postgres through `dcapix run` (adapter `singer`,
# plugins/singer) next to the same tap piped into target-jsonl, same table, same catalog, one
# invocation with the runs interleaved (pipe, bridge, pipe, bridge, ... with the order swapped
# every round), so a loaded machine slows both alike. Goal: the bridge adds at most 10 % wall time.
#
#   bash benchmarks/singer_bridge.sh                       # 200,000 rows, 3 rounds
#   BENCH_ROWS=50000 BENCH_RUNS=1 bash benchmarks/singer_bridge.sh
#
# Needs the shared bench (../shared/bench: PostgreSQL data generator, $PEERS_DIR/base) and the
# plugin installed in this checkout's venv (pip install -e plugins/singer). The connectors are the
# tests' cached venvs (plugins/singer/tests/singer_venvs.py), installed on first use.
WORKLOAD=SB
export BENCH_ROWS=${BENCH_ROWS:-200000}
source "$(dirname "${BASH_SOURCE[0]}")/_dcapix.sh"

ensure_pg_data
O=$OUT/singer-bridge
mkdir -p "$O"
read -r TAP TARGET_JSONL < <("$DCAPIX_BIN/python" - <<'EOF'
import sys
sys.path.insert(0, "plugins/singer/tests")
import singer_venvs as v
print(v.connector("tap-postgres", v.TAP_POSTGRES[1]), v.connector("target-jsonl", v.TARGET_JSONL[1]))
EOF
)
cat >"$CFG/sb-tap.json" <<EOF
{"sqlalchemy_url": "$PG_SRC_URL", "filter_schemas": ["public"], "json_as_object": true}
EOF
if [ ! -s "$CFG/sb-tap.catalog.json" ]; then
  "$TAP" --config "$CFG/sb-tap.json" --discover 2>/dev/null |
    $PY "$BENCH_DIR/select_catalog.py" 'public-bench_rows$' FULL_TABLE >"$CFG/sb-tap.catalog.json"
fi
echo "{\"destination_path\": \"$O/pipe\", \"do_timestamp_file\": false}" >"$CFG/sb-target-jsonl.json"
cat >"$CFG/sb-src-catalog.json" <<EOF
{"adapter": "singer", "executable": "$TAP", "config": "$CFG/sb-tap.json", "catalog": "$CFG/sb-tap.catalog.json"}
EOF
cat >"$CFG/sb-src-discover.json" <<EOF
{"adapter": "singer", "executable": "$TAP", "config": "$CFG/sb-tap.json", "streams": ["public-bench_rows"]}
EOF
echo "{\"adapter\": \"jsonl\", \"path\": \"$O/bridge\"}" >"$CFG/sb-dst.json"
echo "{\"adapter\": \"parquet\", \"path\": \"$O/bridge-parquet\"}" >"$CFG/sb-dst-parquet.json"
RUN="$DCAPIX_BIN/dcapix run --no-progress --no-state"

"$DCAPIX_BIN/python" "$DCAPIX_ROOT/benchmarks/singer_bridge_pair.py" <<EOF
name: tap-postgres >/dev/null (the tap alone: the floor)
cmd: $TAP --config $CFG/sb-tap.json --catalog $CFG/sb-tap.catalog.json >/dev/null 2>$O/tap.err

name: tap-postgres | target-jsonl
prep: rm -rf $O/pipe
cmd: $TAP --config $CFG/sb-tap.json --catalog $CFG/sb-tap.catalog.json 2>$O/tap.err | $TARGET_JSONL --config $CFG/sb-target-jsonl.json >/dev/null
count: $O/pipe

name: dcapix run: singer(tap-postgres) -> jsonl (same catalog)
prep: rm -rf $O/bridge
cmd: $RUN --source $CFG/sb-src-catalog.json --destination $CFG/sb-dst.json >/dev/null 2>$O/bridge.err
count: $O/bridge

name: dcapix run: singer(tap-postgres) -> parquet (same catalog)
prep: rm -rf $O/bridge-parquet
cmd: $RUN --source $CFG/sb-src-catalog.json --destination $CFG/sb-dst-parquet.json >/dev/null 2>$O/bridge.err
count: $O/bridge-parquet

name: dcapix run: singer(tap-postgres, --discover) -> parquet
prep: rm -rf $O/bridge-parquet
cmd: $RUN --source $CFG/sb-src-discover.json --destination $CFG/sb-dst-parquet.json >/dev/null 2>$O/bridge.err
count: $O/bridge-parquet
EOF
