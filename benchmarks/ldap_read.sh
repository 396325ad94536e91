#!/usr/bin/env bash
# LDAP read benchmark: dcapix run LDAP -> Parquet vs ldapsearch -> LDIF on one throwaway slapd
# (50,000 entries, page size 1000, interleaved runs). Arguments go to benchmarks/ldap_read.py.
# Runs in .venv-bench when there is one ('.[all]' + plugins/ldap[python-ldap], no dev extra: the
# dev extra's logfire pydantic plugin costs every dcapix start 0.5-1 s of CPU), else in .venv.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DCAPIX_VENV:-$root/.venv-bench}
[ -x "$venv/bin/python" ] || venv=$root/.venv
exec "$venv/bin/python" "$root/benchmarks/ldap_read.py" "$@"
