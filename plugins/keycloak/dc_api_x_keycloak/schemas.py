"""JSON Schemas of the Keycloak admin representations the ``keycloak`` adapter streams.

Field names and types follow Keycloak's ``UserRepresentation``, ``GroupRepresentation``,
``ClientRepresentation`` and ``RoleRepresentation`` (``org.keycloak.representations.idm``) as the
admin REST API serialises them (absent fields are ``null``). Maps (``attributes``, ``access``,
``clientRoles`` …) and lists of objects (``protocolMappers``) are JSON blobs in the dc-api-x
conventions (``object`` without ``properties``: JSON text in Arrow/Parquet, nothing coerced);
lists of strings are lists. A field a newer Keycloak adds is not dropped: the core's ``http``
adapter widens the batch schema with it (type inferred from the values).
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLIENT", "GROUP", "ROLE", "SCHEMAS", "USER"]

_STR: dict[str, Any] = {"type": ["string", "null"]}
_BOOL: dict[str, Any] = {"type": ["boolean", "null"]}
_INT: dict[str, Any] = {"type": ["integer", "null"]}
_BLOB: dict[str, Any] = {"type": ["object", "null"]}
_BLOB_LIST: dict[str, Any] = {"type": ["array", "null"]}
_STR_LIST: dict[str, Any] = {"type": ["array", "null"], "items": {"type": "string"}}
_ID: dict[str, Any] = {"type": "string"}


def _schema(**props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": dict(props)}


#: ``GET /admin/realms/{realm}/users`` (``UserRepresentation``; ``createdTimestamp`` in epoch ms)
USER = _schema(
    id=_ID,
    username=_STR,
    firstName=_STR,
    lastName=_STR,
    email=_STR,
    emailVerified=_BOOL,
    enabled=_BOOL,
    totp=_BOOL,
    createdTimestamp=_INT,
    federationLink=_STR,
    serviceAccountClientId=_STR,
    attributes=_BLOB,
    requiredActions=_STR_LIST,
    disableableCredentialTypes=_STR_LIST,
    notBefore=_INT,
    origin=_STR,
    access=_BLOB,
)

#: ``GET /admin/realms/{realm}/groups`` and ``…/groups/{id}/children`` (``GroupRepresentation``,
#: flattened: ``subGroups`` become rows of their own)
GROUP = _schema(
    id=_ID,
    name=_STR,
    description=_STR,
    path=_STR,
    parentId=_STR,
    subGroupCount=_INT,
    attributes=_BLOB,
    realmRoles=_STR_LIST,
    clientRoles=_BLOB,
    access=_BLOB,
)

#: ``GET /admin/realms/{realm}/clients`` (``ClientRepresentation``; ``secret`` only with
#: ``include_client_secrets``)
CLIENT = _schema(
    id=_ID,
    clientId=_STR,
    name=_STR,
    description=_STR,
    type=_STR,
    rootUrl=_STR,
    adminUrl=_STR,
    baseUrl=_STR,
    surrogateAuthRequired=_BOOL,
    enabled=_BOOL,
    alwaysDisplayInConsole=_BOOL,
    clientAuthenticatorType=_STR,
    redirectUris=_STR_LIST,
    webOrigins=_STR_LIST,
    notBefore=_INT,
    bearerOnly=_BOOL,
    consentRequired=_BOOL,
    standardFlowEnabled=_BOOL,
    implicitFlowEnabled=_BOOL,
    directAccessGrantsEnabled=_BOOL,
    serviceAccountsEnabled=_BOOL,
    authorizationServicesEnabled=_BOOL,
    publicClient=_BOOL,
    frontchannelLogout=_BOOL,
    protocol=_STR,
    attributes=_BLOB,
    authenticationFlowBindingOverrides=_BLOB,
    fullScopeAllowed=_BOOL,
    nodeReRegistrationTimeout=_INT,
    registeredNodes=_BLOB,
    defaultClientScopes=_STR_LIST,
    optionalClientScopes=_STR_LIST,
    protocolMappers=_BLOB_LIST,
    origin=_STR,
    access=_BLOB,
)

#: ``GET /admin/realms/{realm}/roles`` (``RoleRepresentation``, realm roles)
ROLE = _schema(
    id=_ID,
    name=_STR,
    description=_STR,
    composite=_BOOL,
    clientRole=_BOOL,
    containerId=_STR,
    attributes=_BLOB,
)

#: stream name -> (admin API path under /admin/realms/{realm}, schema)
SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "users": ("users", USER),
    "groups": ("groups", GROUP),
    "clients": ("clients", CLIENT),
    "realm_roles": ("roles", ROLE),
}
