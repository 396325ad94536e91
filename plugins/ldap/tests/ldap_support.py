"""Helpers of the LDAP plugin's tests (a uniquely named module: other plugins' tests sit beside it)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from dc_api_x_ldap.testing import (
    ADMIN_DN,
    ADMIN_PASSWORD,
    SUFFIX,
    Slapd,
    SlapdUnavailable,
    people_ldif,
    slapd_binary,
)

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
N_PEOPLE = 10_000
N_GROUPS = 20
PEOPLE = f"ou=people,{SUFFIX}"
#: the backends whose client library is installed here
BACKENDS = [
    name
    for name, mod in (("ldap3", "ldap3"), ("python-ldap", "ldap"), ("ldaptor", "ldaptor"))
    if importlib.util.find_spec(mod) is not None
]

#: whether the native reader's C extension is built here
NATIVE = importlib.util.find_spec("dc_api_x_ldap._berpage") is not None
#: (backend, reader) pairs of the read tests: each installed backend reading itself, plus the
#: native reader (discovery and reads over its own connection, whatever the backend)
READERS = [(b, "backend") for b in BACKENDS] + (
    [("python-ldap" if "python-ldap" in BACKENDS else BACKENDS[0], "native")] if NATIVE and BACKENDS else []
)
READER_IDS = [f"{b}-{r}" for b, r in READERS]


def _ensure_slapd() -> None:
    if slapd_binary() is not None and shutil.which("ldapsearch"):
        return
    script = ROOT / ".ci" / "start-slapd.sh"
    res = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    if slapd_binary() is None:
        msg = (
            "!!! OpenLDAP slapd is not installed and could not be installed "
            f"({res.stderr.strip()[-300:]}) -- LDAP server tests SKIPPED"
        )
        warnings.warn(msg, stacklevel=1)
        pytest.skip(msg)


def start_slapd(n: int = 0, *, groups: int = 0, stats_log: bool = True, extra: str = "") -> Slapd:
    """A started slapd holding ``n`` people (and ``groups`` groups) plus ``extra`` LDIF."""
    _ensure_slapd()
    try:
        srv = Slapd(stats_log=stats_log)
        srv.load("".join(people_ldif(n, groups=groups)) + extra)
        srv.start()
    except SlapdUnavailable as exc:
        msg = f"!!! slapd could not be started: {exc} -- LDAP server tests SKIPPED"
        warnings.warn(msg, stacklevel=1)
        pytest.skip(msg)
    return srv


def admin_config(srv: Slapd, backend: str = "ldap3", **more: object) -> dict[str, object]:
    return {
        "adapter": "ldap",
        "url": srv.url,
        "backend": backend,
        "bind_dn": ADMIN_DN,
        "password": ADMIN_PASSWORD,
        **more,
    }


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run one of the venv's console scripts (dcapix, tap-dcapix, target-dcapix)."""
    exe = BIN / args[0]
    return subprocess.run(
        [str(exe), *args[1:]],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_pipe(
    tmp: Path, tap_config: dict, target_config: dict, *, state: dict | None = None, timeout: int = 240
) -> tuple[int, int, list[dict], str, str]:
    """``tap-dcapix --config T [--state S] | target-dcapix --config G`` as two real processes.

    Returns (tap exit code, target exit code, the target's STATE messages, tap stderr, target stderr).
    """
    import json

    tmp.mkdir(parents=True, exist_ok=True)
    n = len(list(tmp.glob("tap-*.json")))
    tap_cfg, tgt_cfg = tmp / f"tap-{n}.json", tmp / f"target-{n}.json"
    tap_cfg.write_text(json.dumps(tap_config))
    tgt_cfg.write_text(json.dumps(target_config))
    tap_cmd = [str(BIN / "tap-dcapix"), "--config", str(tap_cfg)]
    if state is not None:
        (tmp / f"state-{n}.json").write_text(json.dumps(state))
        tap_cmd += ["--state", str(tmp / f"state-{n}.json")]
    tap_err, tgt_err = tmp / f"tap-{n}.err", tmp / f"target-{n}.err"
    with tap_err.open("wb") as te, tgt_err.open("wb") as ge:
        tap = subprocess.Popen(tap_cmd, stdout=subprocess.PIPE, stderr=te, cwd=tmp)
        target = subprocess.Popen(
            [str(BIN / "target-dcapix"), "--config", str(tgt_cfg)],
            stdin=tap.stdout,
            stdout=subprocess.PIPE,
            stderr=ge,
            cwd=tmp,
        )
        assert tap.stdout is not None
        tap.stdout.close()
        out, _ = target.communicate(timeout=timeout)
        tap.wait(timeout=timeout)
    states = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return tap.returncode, target.returncode, states, tap_err.read_text(), tgt_err.read_text()
