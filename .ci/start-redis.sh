#!/usr/bin/env bash
# Make redis-server available (Debian redis-server; needs root for the install). Idempotent.
# The tests start their own throwaway instance on a free 127.0.0.1 port (plugins/redis/tests/conftest.py);
# with --port N [--dir D] this script also starts one in the foreground-free way the benchmark uses:
#   bash .ci/start-redis.sh                      # install only
#   bash .ci/start-redis.sh --port 16379 --dir /tmp/redis-bench   # install + start (daemonized), prints the pid file
set -euo pipefail
log() { printf '[start-redis] %s\n' "$*" >&2; }
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    log "redis-server is not installed and this is not root: cannot install it"; exit 1
  fi
  log "installing Debian redis-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
fi
log "$(redis-server --version | head -1)"
port=""; dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) log "unknown argument $1"; exit 2 ;;
  esac
done
[ -n "$port" ] || exit 0
dir=${dir:-$(mktemp -d /tmp/dcapix-redis.XXXXXX)}
mkdir -p "$dir"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" ping >/dev/null
log "redis-server ready on 127.0.0.1:$port (pid file $dir/redis.pid)"
echo "$dir/redis.pid"
