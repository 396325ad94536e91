#!/usr/bin/env bash
# Install OpenLDAP's slapd + ldap-utils (and the headers python-ldap builds against) when missing.
# Nothing is started here: the LDAP plugin's tests start their own throwaway slapd on 127.0.0.1 and a
# UNIX socket (plugins/ldap/src/dc_api_x_ldap/testing.py) and stop it at the end of the session.
# Debian's package would configure and start a system slapd on port 389: we keep it from starting
# (policy-rc.d answers 101 while apt runs) and stop one left running by an earlier install.
set -euo pipefail
log() { printf '[slapd] %s\n' "$*" >&2; }
need=()
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || need+=(ldap-utils)
[ -f /usr/include/ldap.h ] || need+=(libldap2-dev)
[ -f /usr/include/sasl/sasl.h ] || need+=(libsasl2-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing ${need[*]} and not root: the LDAP tests will skip (install them as root)"; exit 1
  fi
  log "installing ${need[*]}"
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null 2>&1
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  }
  [ "$made_policy" = 1 ] && rm -f "$policy"
fi
# a system slapd started by the package (not ours to keep): stop it, our tests use their own
if [ -f /var/run/slapd/slapd.pid ] && kill -0 "$(cat /var/run/slapd/slapd.pid)" 2>/dev/null; then
  log "stopping the system slapd the package started"; kill "$(cat /var/run/slapd/slapd.pid)" || true
fi
log "slapd $(slapd -VV 2>&1 | head -1 | sed 's/.*slapd \([0-9.]*\).*/\1/') ready (started per test session)"
