#!/usr/bin/env bash
# W3 paired: target-dcapix (this checkout) next to target-dcapix at a base revision and the plain
# orjson parse loop, on the same Singer file, in one invocation (issue 15 goals 5 and 6).
#
#   bash benchmarks/w3_pair.sh                      # base = HEAD~1, 1,000,000 records, parquet
#   BASE=main BENCH_ROWS=200000 bash benchmarks/w3_pair.sh
#   PYTHON_PATH_TOO=1 bash benchmarks/w3_pair.sh     # + this checkout with DC_API_X_NATIVE=0
#
# Prints one line per system: wall s, user+sys CPU s, peak RSS MiB, records/s (wall) — compare the
# CPU column when the machine is shared (wall moves with the load; `uptime` is printed first).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
PY=${PY:-$root/.venv/bin/python}
ROWS=${BENCH_ROWS:-1000000}
DATA=${BENCH_DATA:-/tmp/bench-data}
SHARED_BENCH=${SHARED_BENCH:-$root/../shared/bench}
F=$DATA/singer_$ROWS.jsonl
[ -f "$F" ] || BENCH_ROWS=$ROWS BENCH_DATA=$DATA "$PY" "$SHARED_BENCH/gen_data.py" singer
work=$(mktemp -d /tmp/w3-pair.XXXXXX)
trap 'rm -rf "$work"' EXIT
base=${BASE:-HEAD~1}
mkdir -p "$work/base"
git -C "$root" archive "$base" src targets | tar -x -C "$work/base"
cat >"$work/run.py" <<'EOF'
import sys
root = sys.argv.pop(1)
if root != "-":  # the base revision's sources before the installed (editable) ones
    sys.path[:0] = [root + "/src", root + "/targets"]
from target_dcapix.cli import main  # the console script (its allocator, no GC pass at exit)
main()
EOF
echo "{\"adapter\": \"parquet\", \"path\": \"$work/out\"}" >"$work/config.json"
uptime
measure() {  # name, command...
  local name=$1; shift
  rm -rf "$work/out"
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" <"$F" >/dev/null 2>"$work/err" || {
    tail -3 "$work/err"; return 1; }
  read -r wall user sys rss <"$work/time"
  awk -v n="$name" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v rows="$ROWS" \
    'BEGIN { printf "%-34s wall %6.2f s  cpu %6.2f s  peak %5.0f MiB  %9.0f rec/s\n", n, w, u + s, r / 1024, rows / w }'
}
measure "orjson.loads per line (limit)" "$PY" "$SHARED_BENCH/limit_singer.py" load /dev/stdin
measure "target-dcapix @ $base" "$PY" "$work/run.py" "$work/base" --config "$work/config.json"
measure "target-dcapix (this checkout)" "$PY" "$work/run.py" - --config "$work/config.json"
if [ -n "${PYTHON_PATH_TOO:-}" ]; then  # this checkout without the compiled scanner (dc_api_x.arrow._recordscan)
  measure "target-dcapix (scanner off)" env DC_API_X_NATIVE=0 "$PY" "$work/run.py" - --config "$work/config.json"
fi
