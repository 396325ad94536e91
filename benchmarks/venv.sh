#!/usr/bin/env bash
# Makes the benchmark venv, .venv-bench: dc-api-x installed as a user installs it (a regular, not
# editable, install of '.[all]', plus the LDAP plugin with python-ldap for ldap_read.sh), no dev extra.
#   bash benchmarks/venv.sh              # (re)install this checkout into .venv-bench
#   BENCH_VENV=/tmp/v bash benchmarks/venv.sh
# Why not editable: setuptools' editable finder (__editable___dc_api_x_*_finder, loaded by a .pth
# file at every interpreter start) imports pathlib and friends and maps the package on each start:
# `python -c pass` took 18 ms in an editable venv against 10 ms in a regular one (medians of 15,
# 2026-12-03), about a tenth of a 20,000-row `dcapix run`. The peers' venvs are regular installs.
# Why no dev extra: its logfire registers a pydantic plugin that costs every start 0.5-1 s of CPU.
# Re-run after every change to src/ (a regular install is a copy), ~15 s.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${BENCH_VENV:-$root/.venv-bench}
py=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
# an editable install of an earlier run leaves its finder's .pth behind: uninstall first
"$venv/bin/pip" uninstall -q -y dc-api-x dc-api-x-ldap >/dev/null 2>&1 || true
"$venv/bin/pip" install -q "$root[all]" "$root/plugins/ldap[python-ldap]"
if ls "$venv"/lib/python*/site-packages/__editable__*.pth >/dev/null 2>&1; then
  echo "venv.sh: $venv still has an editable finder (.pth); remove it" >&2
  exit 1
fi
echo "venv.sh: $venv ready ($("$venv/bin/python" -c 'import dc_api_x; print(dc_api_x.__file__)'))"
