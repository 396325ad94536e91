"""
DCApiX plugin for Keycloak (OAuth2, token management).

This plugin provides:
- Auth provider ``keycloak``: client credentials, password grant and refresh-token rotation against a
  realm's token endpoint (``{server_url}/realms/{realm}/protocol/openid-connect/token``); the token
  is cached until it expires minus a margin (never more than half its lifetime), refreshed once
  when many requests need it at the same time, and registered as a secret (redacted everywhere)
- Adapter ``keycloak``: the Keycloak admin REST API as streams (``users``, ``groups``, ``clients``,
  ``realm_roles``) paged with ``first``/``max``, on the core's ``http`` adapter
- Paginator ``keycloak``: Keycloak's ``first``/``max`` paging

Requirements:
- dc-api-x>=0.2.0
- httpx>=0.27 (the core's ``http`` extra: ``pip install 'dc-api-x[http]'``)

Environment variables (used when the option is not given):
- KEYCLOAK_URL: the server URL, e.g. ``https://sso.example.com`` (``…/auth`` for Keycloak < 17)
- KEYCLOAK_REALM: the realm whose admin API is read, and whose token endpoint is used
- KEYCLOAK_AUTH_REALM: the realm that issues the token, when it is another one (e.g. ``master``)
- KEYCLOAK_CLIENT_ID: the OAuth2 client (``admin-cli`` for an administrator's password)
- KEYCLOAK_CLIENT_SECRET: the client's secret (confidential clients)
- KEYCLOAK_USERNAME / KEYCLOAK_PASSWORD: the user of the password grant
"""

from __future__ import annotations

import importlib.util

__all__ = ["register_adapters", "register_auth_providers", "register_pagination_handlers"]

DC_API_X_REQUIRES = ">=0.2.0"


def _require_httpx() -> None:
    """Fail the plugin's registration with the reason when its HTTP client library is missing
    (the plugin is then listed as failed by ``dcapix plugins``; the other plugins keep working)."""
    if importlib.util.find_spec("httpx") is None:
        raise ModuleNotFoundError(
            "dc-api-x-keycloak needs httpx, which is not installed (pip install 'dc-api-x[http]')",
            name="httpx",
        )


def register_adapters(registry):
    """
    Register the Keycloak admin REST API adapter.

    The adapter supports the following features:
    - Streams ``users``, ``groups`` (sub-groups flattened), ``clients`` (secrets dropped unless
      asked for) and ``realm_roles``, paged with ``first``/``max``
    - Retries, timeouts and redaction of the core's ``http`` adapter
    - Any auth provider; by default the ``keycloak`` one with the adapter's server and realm
    """
    _require_httpx()
    registry["keycloak"] = "dc_api_x_keycloak.adapter:KeycloakAdapter"  # imported on first use


def register_auth_providers(registry):
    """Register the Keycloak token provider (client credentials, password, refresh token)."""
    _require_httpx()
    registry["keycloak"] = "dc_api_x_keycloak.auth:KeycloakAuth"


def register_pagination_handlers(registry):
    """Register Keycloak's ``first``/``max`` paginator."""
    registry["keycloak"] = "dc_api_x_keycloak.paging:KeycloakPaginator"
