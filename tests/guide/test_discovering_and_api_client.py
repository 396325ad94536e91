"""The guide's "Discovering Plugins" and "Integration with ApiClient" examples, run as written
(``scripts/``), in a real interpreter where the plugins come from their entry points."""

from __future__ import annotations

import runpy
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from dc_api_x.ext.adapters import Response

SCRIPTS = Path(__file__).resolve().parent / "scripts"


def _oracle_installed() -> bool:
    try:
        metadata.distribution("dc-api-x-oracle-db")
    except metadata.PackageNotFoundError:
        return False
    return True


def test_discovering_plugins_runs_as_written() -> None:
    """The guide's first example asks for the official Oracle plugin's adapter. With
    dc-api-x-oracle-db installed it prints the adapters; without it, get_adapter("oracle_db") fails
    with one line naming the known adapters and the distribution to install."""
    res = subprocess.run(
        [sys.executable, str(SCRIPTS / "discovering_plugins.py")], capture_output=True, text=True, timeout=120
    )
    if _oracle_installed():
        assert res.returncode == 0, res.stderr
        listed = res.stdout.strip().removeprefix("Available adapters: ").split(", ")
        assert "oracle_db" in listed and "custom_protocol" in listed and "sql" in listed
    else:
        assert res.returncode == 1
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith("dc_api_x.exceptions.UnknownPluginError: unknown adapter 'oracle_db'; known: ")
        assert "custom_protocol" in last and "sql" in last
        assert last.endswith(
            "'oracle_db' is provided by the official plugin dc-api-x-oracle-db "
            "(pip install dc-api-x-oracle-db)"
        )


def test_api_client_integration_runs_as_written(examples_env: dict[str, str]) -> None:
    """``enable_plugins()`` then ``ApiClient(url=..., adapter="custom_protocol",
    adapter_options={"key": "value"})``: the advanced plugin's custom_protocol (the guide's shape:
    the URL as connection_string, options as keywords) gets the URL and the option."""
    ns = runpy.run_path(str(SCRIPTS / "api_client_integration.py"))
    response = ns["response"]
    assert isinstance(response, Response) and response.status_code == 200
    assert response.data == {
        "success": True,
        "data": {
            "url": "protocol://example.com",
            "method": "GET",
            "path": "resource",
            "settings": {"key": "value"},
        },
    }
    assert ns["client"].adapter.connection_string == "protocol://example.com"
    ns["client"].close()


def test_api_client_integration_with_the_simple_plugins_adapter_is_one_clear_error() -> None:
    """With the simple plugin's CustomAdapter(connection_string) as custom_protocol (the default
    environment), the example's ``adapter_options={"key": "value"}`` cannot be passed: one line says
    so and what the adapter accepts."""
    res = subprocess.run(
        [sys.executable, str(SCRIPTS / "api_client_integration.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        "dc_api_x.exceptions.ConfigError: adapter 'custom_protocol': option 'key' is not accepted; "
        "CustomAdapter(connection_string) accepts: connection_string (the url)"
    )
