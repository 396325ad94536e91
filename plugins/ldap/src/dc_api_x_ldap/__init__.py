"""
DCApiX plugin for LDAP v3 directories.

This plugin provides:
- the ``ldap`` protocol adapter: search bases + filters as streams, read with the simple paged
  results control (RFC 2696), their JSON Schema from the server's subschema, incremental by
  ``modifyTimestamp`` or ``entryCSN``; a sink that adds or upserts entries by DN; the request
  side of ``ApiClient`` (search, add, modify, delete, extended operations)
- three client libraries as backends of that one adapter (``backend:``):
  ldap3 (default: connection pooling, NTLM, extended operations), python-ldap (SASL such as
  EXTERNAL over ``ldapi://``, LDIF import/export, server controls) and ldaptor (asynchronous
  operations on Twisted, schema awareness)

Requirements:
- dc-api-x>=0.2.0
- ldap3>=2.9 (the default backend)
- python-ldap>=3.4 for ``backend: python-ldap`` (pip install 'dc-api-x-ldap[python-ldap]')
- ldaptor>=21.2 and Twisted for ``backend: ldaptor`` (pip install 'dc-api-x-ldap[ldaptor]')

Environment variables:
- DCAPIX_LDAP_URL: Server URL, ldap://, ldaps:// or ldapi:// (default: ldap://127.0.0.1:389)
- DCAPIX_LDAP_BACKEND: ldap3, python-ldap or ldaptor (default: ldap3)
- DCAPIX_LDAP_BIND_DN: Bind DN for simple (or NTLM: DOMAIN\\user) authentication
- DCAPIX_LDAP_PASSWORD: Bind password
- DCAPIX_LDAP_AUTH: anonymous, simple, sasl_external or ntlm (default: from the other options)
- DCAPIX_LDAP_PAGE_SIZE: Optional entries per page (default: 1000)
- DCAPIX_LDAP_TIMEOUT: Optional timeout in seconds (default: 30)
- DCAPIX_LDAP_CA_FILE: Optional CA bundle for ldaps:// and StartTLS
(each is the default of the option of the same name; options given explicitly win)
"""

from __future__ import annotations

from typing import Any

__all__ = ["register_adapters"]

__version__ = "0.2.0"


def register_adapters(registry: Any) -> None:
    """
    Register the LDAP protocol adapter.

    The adapter supports the following features:
    - Paged searches (RFC 2696) streamed as Arrow batches
    - Schema discovery from the server's subschema
    - Incremental reads with the toolkit's boundary bookmark
    - Upsert of entries by DN
    - ldap3, python-ldap and ldaptor backends

    The client library is imported only when an adapter is created. Without ldap3 (the default
    client, a requirement of this distribution) the plugin is listed as failed with the reason.
    """
    from importlib.util import find_spec

    if find_spec("ldap3") is None:
        raise ModuleNotFoundError(
            "the LDAP client library 'ldap3' is not installed: pip install 'dc-api-x-ldap' "
            "(or 'dc-api-x-ldap[ldap3]')",
            name="ldap3",
        )
    registry["ldap"] = "dc_api_x_ldap.adapter:LdapAdapter"  # imported on first use
