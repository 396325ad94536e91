# Sourced by benchmarks/w*.sh: finds the shared harness and this checkout's dcapix executables.
#   SHARED_BENCH  the shared bench dir (default: <checkout>/../shared/bench)
#   DCAPIX_BIN    dir holding dcapix, tap-dcapix, target-dcapix (default: <checkout>/.venv/bin)
#                 for numbers use .venv-bench from benchmarks/venv.sh: a regular (not editable)
#                 install of '.[all]' as users have it (an editable install's finder adds ~8 ms to
#                 every start; the dev extra's logfire registers a pydantic plugin that costs every
#                 start 0.5-1 s of CPU)
_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DCAPIX_ROOT=$(git -C "$_here" rev-parse --show-toplevel 2>/dev/null || (cd "$_here/.." && pwd))
SHARED_BENCH=${SHARED_BENCH:-$DCAPIX_ROOT/../shared/bench}
[ -f "$SHARED_BENCH/common.sh" ] || SHARED_BENCH=/work/shared/bench   # a clone under /work/wt/NAME
[ -f "$SHARED_BENCH/common.sh" ] || { echo "shared bench not found at $SHARED_BENCH (set SHARED_BENCH)" >&2; exit 1; }
export DCAPIX_BIN=${DCAPIX_BIN:-$DCAPIX_ROOT/.venv/bin}
# Byte-code as an installed package has it (pip compiles on install): an editable checkout run with
# PYTHONDONTWRITEBYTECODE=1 would compile every module of dc_api_x on every run (~0.1 s of CPU per
# start, a third of a small sync). Compiled once here, untimed.
unset PYTHONDONTWRITEBYTECODE
if ls "$DCAPIX_BIN"/../lib/python*/site-packages/__editable__*dc_api_x*.pth >/dev/null 2>&1; then
  echo "note: $DCAPIX_BIN is an editable install: every dcapix start pays its finder (~8 ms);" \
    "bash benchmarks/venv.sh makes the regular .venv-bench the figures in docs/benchmarks.md use" >&2
fi
"$DCAPIX_BIN/python" -m compileall -q "$DCAPIX_ROOT/src" "$DCAPIX_ROOT/taps" "$DCAPIX_ROOT/targets" >/dev/null 2>&1 || true
# our own work dir (configs, outputs, logs, results): /tmp/bench-work is shared with other runs,
# whose configs (e.g. tap-postgres.json for another row count) would be mixed with ours
export BENCH_WORK=${BENCH_WORK:-/tmp/bench-work-dcapix}
# shellcheck source=/dev/null
source "$SHARED_BENCH/common.sh"
# The destination database of W1/W3 (PG_DST_DB, bench_dst): the shared harness creates the source
# database only, and every W1 row fails its count check on a machine without this one.
psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname='$PG_DST_DB'" 2>/dev/null | grep -q 1 ||
  psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -c "CREATE DATABASE $PG_DST_DB" >/dev/null 2>&1 ||
  true
# DCAPIX_TAG: suffix of the dcapix destination schemas (dcapix${DCAPIX_TAG}_w1), so runs of several
# people against the same bench_dst do not drop each other's tables mid-run
export DCAPIX_TAG=${DCAPIX_TAG:-}
# dcapix run keeps its state out of the working directory; --full-refresh makes every timed run
# move the whole table (a second run of an incremental stream would otherwise move 0 rows)
DCAPIX_RUN="$DCAPIX_BIN/dcapix run --no-progress --full-refresh --state-db $BENCH_WORK/dcapix-state.db"
