#!/usr/bin/env bash
# Paired run of this checkout against another build of dcapix (e.g. the previous commit), in ONE
# harness invocation: every `dcapix` system of the workload runs twice, once with $DCAPIX_BIN and
# once with $BASE_BIN (rows suffixed "[base]"), next to the workload's limit row.
#
#   git worktree add /tmp/dcapix-base HEAD~1 && python3 -m venv /tmp/dcapix-base/.venv && \
#     /tmp/dcapix-base/.venv/bin/pip install -e '/tmp/dcapix-base[all]'
#   BASE_BIN=/tmp/dcapix-base/.venv/bin bash benchmarks/pair_commits.sh w2
#   BASE_BIN=... BENCH_ONLY='dcapix run' BENCH_ROWS=200000 bash benchmarks/pair_commits.sh w1
#
# Workloads: w1 w2 w3 small (S1) -- and w4, whose server this script starts the same way w4.sh does.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
w=${1:?workload: w1|w2|w3|w4|small}
: "${BASE_BIN:?BASE_BIN: the bin dir of the other dcapix build}"
source "$here/_dcapix.sh"
"$BASE_BIN/python" -m compileall -q "$("$BASE_BIN/python" -c 'import dc_api_x, os; print(os.path.dirname(dc_api_x.__file__))')" >/dev/null 2>&1 || true
if [ "$w" = w4 ]; then
  export W4_ROWS=${W4_ROWS:-200000} W4_PORT=${W4_PORT:-8765}
  $PY "$BENCH_DIR/rest_server.py" 2>"$BENCH_WORK/w4-pair-server.err" &
  SRV_PID=$!
  trap 'kill $SRV_PID 2>/dev/null; wait $SRV_PID 2>/dev/null || true' EXIT
  for _ in $(seq 1 120); do grep -q READY "$BENCH_WORK/w4-pair-server.err" 2>/dev/null && break; sleep 0.5; done
fi
name=$(echo "$w" | tr a-z A-Z)
[ "$w" = small ] && name=S1
blocks=$(BENCH_LIST=1 bash "$here/$w.sh")
[ "$w" = w4 ] && export BENCH_ROWS=$W4_ROWS
[ "$w" = small ] && export BENCH_ROWS=$(( ${SMALL_DEMO_ROWS:-10000} * 11 / 10 ))
printf '%s\n' "$blocks" | DCAPIX_BIN="$DCAPIX_BIN" BASE_BIN="$BASE_BIN" python3 -c '
import os, sys
text = sys.stdin.read()
blocks = [b for b in text.split("\n\n") if b.strip()]
cur, base = os.environ["DCAPIX_BIN"], os.environ["BASE_BIN"]
out = []
for b in blocks:
    out.append(b)
    if cur in b and "limit:" not in b:
        out.append(b.replace(cur, base).replace("name: ", "name: [base] ", 1))
print("\n\n".join(out))
' | $PY "$BENCH_DIR/harness.py" "$name-pair"
