#!/usr/bin/env bash
# Acceptance of tap-dcapix / target-dcapix under clients the team did not write:
#   1. real Meltano 4.x end to end (../shared/acceptance/meltano_e2e.sh), JSONL output
#   2. the same with OUTPUT_FORMAT=parquet
#   3. singer-sdk's standard tap + target suites and the console-script checks
#      (../shared/acceptance/sdk_standard_tests.py) with SDK_INCREMENTAL_STRICT=1 (exclusive bookmark)
#
#   bash .ci/acceptance.sh                 # all three
#   ACCEPT_ONLY=sdk bash .ci/acceptance.sh # one of: jsonl parquet sdk (space-separated list)
#
# The shared harness is found at $SHARED_DIR, else beside the checkout ($(dirname repo)/shared: dev
# machines and CI clone it next to the repository), else ./shared inside it. It is copied to a
# project-local temp dir first, so a harness update during the run cannot mix versions.
# Needs network to PyPI (Meltano installs itself and the plugins). Logs/work dirs stay under /tmp.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[acceptance] %s\n' "$*" >&2; }
die() { printf '[acceptance] FAIL: %s\n' "$*" >&2; exit 1; }

if [ -z "${SHARED_DIR:-}" ]; then
  for cand in "$(dirname "$REPO")/shared" "$REPO/shared" "$REPO/../shared"; do
    if [ -f "$cand/acceptance/meltano_e2e.sh" ]; then SHARED_DIR=$cand; break; fi
  done
fi
[ -n "${SHARED_DIR:-}" ] && [ -f "$SHARED_DIR/acceptance/meltano_e2e.sh" ] \
  || die "shared harness not found (set SHARED_DIR; looked beside $REPO)"
SHARED_DIR=$(cd "$SHARED_DIR" && pwd)

RUN_DIR=$(mktemp -d /tmp/dcapix-acceptance.XXXXXX)
cp -R "$SHARED_DIR/acceptance" "$RUN_DIR/acceptance"
log "harness: $SHARED_DIR/acceptance (copied to $RUN_DIR/acceptance)"

PY=${ACCEPT_PYTHON:-$REPO/.venv/bin/python}
[ -x "$PY" ] || die "no interpreter at $PY (run .ci/run first, or set ACCEPT_PYTHON)"
ONLY=${ACCEPT_ONLY:-"jsonl parquet sdk"}
want() { case " $ONLY " in *" $1 "*) return 0;; *) return 1;; esac; }
results=()

if want jsonl; then
  log "1/3 meltano_e2e.sh (jsonl)"
  # the harness's default output match (no OUTPUT_GLOB): the JSONL schema sidecar is
  # `_schema.jsonschema`, which it does not take for data
  if PROJECT_DIR=$REPO WORK_DIR=$RUN_DIR/e2e-jsonl OUTPUT_FORMAT=jsonl \
      bash "$RUN_DIR/acceptance/meltano_e2e.sh" >"$RUN_DIR/e2e-jsonl.log" 2>&1; then
    results+=("meltano e2e jsonl: PASS")
  else
    tail -30 "$RUN_DIR/e2e-jsonl.log" >&2; die "meltano e2e (jsonl), log: $RUN_DIR/e2e-jsonl.log"
  fi
fi

if want parquet; then
  log "2/3 meltano_e2e.sh (parquet)"
  if PROJECT_DIR=$REPO WORK_DIR=$RUN_DIR/e2e-parquet OUTPUT_FORMAT=parquet \
      bash "$RUN_DIR/acceptance/meltano_e2e.sh" >"$RUN_DIR/e2e-parquet.log" 2>&1; then
    results+=("meltano e2e parquet: PASS")
  else
    tail -30 "$RUN_DIR/e2e-parquet.log" >&2; die "meltano e2e (parquet), log: $RUN_DIR/e2e-parquet.log"
  fi
fi

if want sdk; then
  log "3/3 sdk_standard_tests.py (SDK_INCREMENTAL_STRICT=1)"
  W=$RUN_DIR/sdk
  mkdir -p "$W/out"
  "$PY" - "$W/src.sqlite" <<'PY'
import datetime as dt, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, "
            "amount REAL NOT NULL, note TEXT, updated_at TEXT NOT NULL)")
t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
con.executemany("INSERT INTO items VALUES (?,?,?,?,?,?)",
                [(i, f"name-{i}", "abc"[i % 3], i * 0.5, None if i % 7 == 0 else f"note {i}",
                  (t0 + dt.timedelta(seconds=i)).isoformat()) for i in range(1, 501)])
con.commit()
PY
  printf '{"adapter": "sql", "url": "sqlite:///%s", "streams": [{"name": "items", "table": "items", "primary_keys": ["id"], "replication_key": "updated_at"}]}\n' \
    "$W/src.sqlite" >"$W/tap-config.json"
  printf '{"adapter": "jsonl", "path": "%s"}\n' "$W/out" >"$W/target-config.json"
  # SDK_TAP_CLASS: the tap-dcapix console script is tap_dcapix.cli:main (a bare --about is answered
  # from a cache without importing singer-sdk; everything else runs TapDcApiX.cli()), a wrapper the
  # harness cannot resolve to the Tap class by itself; the console-script checks still run tap-dcapix.
  # SDK_TARGET_CLASS likewise: target-dcapix is target_dcapix.cli:main around TargetDcApiX.cli().
  if (cd "$REPO" && SDK_TAP_SCRIPT=tap-dcapix SDK_TAP_CLASS=tap_dcapix.tap:TapDcApiX \
        SDK_TARGET_CLASS=${SDK_TARGET_CLASS-target_dcapix.target:TargetDcApiX} \
        SDK_TAP_CONFIG=$W/tap-config.json \
        SDK_TARGET_SCRIPT=${SDK_TARGET_SCRIPT-target-dcapix} SDK_TARGET_CONFIG=$W/target-config.json \
        SDK_INCREMENTAL_STRICT=1 \
        "$PY" -m pytest -p no:cacheprovider -q -o addopts= "$RUN_DIR/acceptance/sdk_standard_tests.py" \
        >"$RUN_DIR/sdk.log" 2>&1); then
    results+=("sdk standard tests: PASS ($(grep -Eo '[0-9]+ passed' "$RUN_DIR/sdk.log" | tail -1))")
  else
    tail -40 "$RUN_DIR/sdk.log" >&2; die "sdk standard tests, log: $RUN_DIR/sdk.log"
  fi
fi

printf '%s\n' "${results[@]}"
log "all requested acceptance checks passed (logs in $RUN_DIR)"
