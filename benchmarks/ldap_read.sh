#!/usr/bin/env bash
# LDAP read benchmark: dcapix run LDAP -> Parquet vs ldapsearch -> LDIF on one throwaway slapd
# (50,000 entries, page size 1000, interleaved runs). Arguments go to benchmarks/ldap_read.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec "$root/.venv/bin/python" "$root/benchmarks/ldap_read.py" "$@"
