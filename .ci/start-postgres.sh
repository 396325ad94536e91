#!/usr/bin/env bash
# Install (Debian postgresql) and start a PostgreSQL server on 127.0.0.1:${PGPORT:-5432} with the
# password ${PGPASSWORD:-postgres} for role postgres. Idempotent; needs root for the install.
set -euo pipefail
PGPORT=${PGPORT:-5432}
PGPASSWORD=${PGPASSWORD:-postgres}
log() { printf '[start-postgres] %s\n' "$*" >&2; }
if pg_isready -h 127.0.0.1 -p "$PGPORT" -q 2>/dev/null; then
  log "already running on 127.0.0.1:$PGPORT"; exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  log "installing Debian postgresql"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
  pg_createcluster "$ver" main >/dev/null
fi
conf=/etc/postgresql/$ver/main/postgresql.conf
sed -i -E "s/^#?listen_addresses\s*=.*/listen_addresses = '127.0.0.1'/" "$conf"
sed -i -E "s/^#?port\s*=.*/port = $PGPORT/" "$conf"
pg_ctlcluster "$ver" main start || pg_ctlcluster "$ver" main restart
for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p "$PGPORT" -q && break; sleep 1; done
su postgres -c "psql -q -p $PGPORT -c \"ALTER USER postgres PASSWORD '$PGPASSWORD'\"" >/dev/null
log "PostgreSQL $ver ready on 127.0.0.1:$PGPORT"
