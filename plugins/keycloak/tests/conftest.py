"""Fixtures of the dc-api-x-keycloak tests.

* ``oidc`` (session): a REAL OpenID Connect server — panva/oidc-provider under Node.js, from
  ``tests/oidc`` (``npm ci`` there when ``node_modules`` is missing) — with Keycloak's realm paths;
* ``admin`` (per test): the local admin-API server of ``keycloak_admin_server.py`` (it follows
  Keycloak's documented admin endpoints; it is not Keycloak), checking tokens with ``oidc``;
* ``kc_plugins``: a fresh plugin set with the built-ins and this plugin (no entry points);
* ``installed_plugin`` (session): the distribution installed (editable) into the running
  environment, for the tests that run ``dcapix`` / ``tap-dcapix`` / ``target-dcapix`` processes.

A service that cannot be installed or started makes its tests SKIP with a loud reason.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PLUGIN_ROOT = HERE.parent
OIDC_DIR = HERE / "oidc"
BIN = Path(sys.executable).parent

try:  # the plugin's own package, importable even before it is installed
    import dc_api_x_keycloak  # noqa: F401
except ImportError:
    sys.path.insert(0, str(PLUGIN_ROOT))

from keycloak_admin_server import KeycloakAdminServer  # noqa: E402
from keycloak_testdata import ADMINS, INTROSPECTION_CLIENT, acme_realm, oidc_config  # noqa: E402


def _skip(msg: str) -> None:
    msg = f"!!! {msg} -- Keycloak plugin tests SKIPPED"
    warnings.warn(msg, stacklevel=2)
    pytest.skip(msg)


class OidcServer:
    """The running OpenID Connect server: ``url``, ``token_url(realm)``, ``calls(...)``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def token_url(self, realm: str) -> str:
        return f"{self.url}/realms/{realm}/protocol/openid-connect/token"

    def calls(
        self, *, realm: str | None = None, client_id: str | None = None, grant_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Token-endpoint calls so far (oldest first), filtered."""
        with urllib.request.urlopen(f"{self.url}/__stats", timeout=10) as resp:
            calls = json.loads(resp.read())["calls"]
        return [
            c
            for c in calls
            if (realm is None or c["realm"] == realm)
            and (client_id is None or c["client_id"] == client_id)
            and (grant_type is None or c["grant_type"] == grant_type)
        ]

    def post(self, realm: str, endpoint: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """POST a form to ``…/realms/{realm}/protocol/openid-connect/{endpoint}``."""
        import httpx

        resp = httpx.post(
            f"{self.url}/realms/{realm}/protocol/openid-connect/{endpoint}", data=form, timeout=10
        )
        return resp.status_code, (resp.json() if resp.content.strip() else {})


def _npm_ci() -> None:
    if (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        _skip("npm is not installed, so the OpenID Connect server (npm oidc-provider) cannot be installed")
    with open(OIDC_DIR / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            return
        res = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=OIDC_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if res.returncode != 0:
            _skip(f"`npm ci` in {OIDC_DIR} failed: {(res.stderr or res.stdout).strip()[-400:]}")


#: seconds the OpenID Connect server (node) may take to print its port
OIDC_START_TIMEOUT = float(os.environ.get("DCAPIX_OIDC_START_TIMEOUT", "180"))


@pytest.fixture(scope="session")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcServer]:
    node = shutil.which("node")
    if node is None:
        _skip("Node.js is not installed, so the OpenID Connect server (npm oidc-provider) cannot run")
    _npm_ci()
    tmp = tmp_path_factory.mktemp("oidc")
    cfg = tmp / "oidc.json"
    cfg.write_text(json.dumps(oidc_config()))
    err = open(tmp / "oidc.err", "w+b")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [node, str(OIDC_DIR / "server.mjs"), str(cfg)], stdout=subprocess.PIPE, stderr=err, cwd=OIDC_DIR
    )
    line: list[bytes] = []
    reader = threading.Thread(
        target=lambda: line.append(proc.stdout.readline() if proc.stdout else b""), daemon=True
    )
    reader.start()
    # readline() returns as soon as the server prints its port or exits; the cap only ends a server
    # that hangs. 30 s was not enough for node's start while a 2-worker suite loaded both cores (the
    # fresh-clone CI at ac332cf skipped all 34 tests; alone they ran in 37 s).
    reader.join(OIDC_START_TIMEOUT)
    if not line or not line[0].strip():
        exited = proc.poll() is not None
        proc.kill()
        proc.wait()
        err.seek(0)
        why = "exited" if exited else f"printed no port within {OIDC_START_TIMEOUT:.0f} s"
        _skip(
            f"the OpenID Connect server did not start ({why}): "
            f"{err.read().decode(errors='replace').strip()[-400:]}"
        )
    port = json.loads(line[0])["port"]
    try:
        yield OidcServer(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err.close()


@pytest.fixture
def admin(oidc: OidcServer) -> Iterator[KeycloakAdminServer]:
    """The admin-API server with a fresh ``acme`` realm (and an empty ``master``)."""
    from keycloak_admin_server import Realm

    srv = KeycloakAdminServer(
        oidc.url, INTROSPECTION_CLIENT, ADMINS, realms={"acme": acme_realm(), "master": Realm()}
    )
    with srv:
        yield srv


@pytest.fixture
def kc_plugins() -> Iterator[Any]:
    """Built-ins + this plugin (no entry points), made current for the test."""
    import dc_api_x_keycloak

    from dc_api_x import enable_plugins

    ps = enable_plugins(entry_points=False, plugins=[dc_api_x_keycloak])
    yield ps
    ps.close()


@pytest.fixture
def no_keycloak_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "KEYCLOAK_URL",
        "KEYCLOAK_REALM",
        "KEYCLOAK_AUTH_REALM",
        "KEYCLOAK_CLIENT_ID",
        "KEYCLOAK_CLIENT_SECRET",
        "KEYCLOAK_USERNAME",
        "KEYCLOAK_PASSWORD",
    ):
        monkeypatch.delenv(var, raising=False)


def _installed_here() -> bool:
    try:
        dist = metadata.distribution("dc-api-x-keycloak")
    except metadata.PackageNotFoundError:
        return False
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        return False
    url = direct.get("url", "")
    return bool(direct.get("dir_info", {}).get("editable")) and url.rstrip("/").endswith(str(PLUGIN_ROOT))


@pytest.fixture(scope="session")
def installed_plugin() -> Path:
    """``pip install -e plugins/keycloak`` into this environment unless it is there already
    (``.ci/run`` installs it); the ``dcapix`` commands of this environment then find it."""
    if not _installed_here():
        with open(HERE / ".pip-install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _installed_here():
                res = subprocess.run(
                    [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(PLUGIN_ROOT)],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
                )
                if res.returncode != 0:
                    _skip(f"installing {PLUGIN_ROOT} failed: {(res.stderr or res.stdout).strip()[-400:]}")
        metadata.distribution("dc-api-x-keycloak")  # raises if pip lied
    return BIN
