"""The standard adapter test suite of ``dc_api_x.testing`` on the ``keycloak`` adapter, one class
per stream, against the admin-API server (tokens from the real OIDC server)."""

from __future__ import annotations

from typing import Any

import dc_api_x_keycloak
import pytest
from keycloak_testdata import CANARIES

from dc_api_x import testing

pytestmark = pytest.mark.usefixtures("no_keycloak_env")


@pytest.fixture
def adapter_config(oidc: Any, admin: Any) -> dict[str, Any]:
    return {
        "server_url": admin.url,
        "realm": "acme",
        "page_size": 6,
        "auth": {
            "type": "keycloak",
            "server_url": oidc.url,
            "client_id": "etl-service",
            "client_secret": CANARIES["etl_secret"],
        },
    }


@pytest.fixture
def error_config(adapter_config: dict[str, Any], oidc: Any) -> dict[str, Any]:
    """A client the admin API refuses (403), holding a secret that must not show."""
    auth = {
        "type": "keycloak",
        "server_url": oidc.url,
        "client_id": "viewer",
        "client_secret": CANARIES["viewer_secret"],
    }
    return {**adapter_config, "auth": auth}


_common = {"plugins": [dc_api_x_keycloak], "secret": CANARIES["viewer_secret"]}

TestKeycloakUsers = testing.get_adapter_test_class(
    "keycloak", stream="users", expected_records=23, paginate={"path": "users"}, **_common
)
TestKeycloakGroups = testing.get_adapter_test_class(
    "keycloak", stream="groups", expected_records=20, **_common
)
TestKeycloakClients = testing.get_adapter_test_class(
    "keycloak", stream="clients", expected_records=5, **_common
)
TestKeycloakRealmRoles = testing.get_adapter_test_class(
    "keycloak", stream="realm_roles", expected_records=8, **_common
)
