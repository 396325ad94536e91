"""The realms, clients, users and admin-API objects the dc-api-x-keycloak tests use.

Secrets are canaries: a test fails if one of them shows up in a log line, an error or a file.
"""

from __future__ import annotations

import copy
from typing import Any

from keycloak_admin_server import Realm

#: strings that must never appear in logs, errors or outputs
CANARIES = {
    "etl_secret": "CANARY-etl-secret-7f3a91",
    "basic_secret": "CANARY-basic/secret:+&=42",
    "short_secret": "CANARY-short-secret-55d0",
    "viewer_secret": "CANARY-viewer-secret-0b1e",
    "introspect_secret": "CANARY-introspect-secret-c3c3",
    "alice_password": "CANARY-alice-pw-91c2",
    "admin_password": "CANARY-admin-pw-e7e7",
    "client_secret_in_data": "CANARY-billing-client-secret-12ab",
}

INTROSPECTION_CLIENT = ("admin-api", CANARIES["introspect_secret"])
ALICE_ID = "5f0c1b7e-0000-4000-8000-00000000a11c"
BOB_ID = "5f0c1b7e-0000-4000-8000-000000000b0b"
ADMIN_ID = "5f0c1b7e-0000-4000-8000-0000000ad111"
#: principals the admin server lets read (service-account clients and user ids)
ADMINS = {"etl-service", "etl-basic", "short-lived", ALICE_ID, ADMIN_ID}


def _cc(client_id: str, secret: str, *, method: str = "client_secret_post", **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_secret": secret,
        "token_endpoint_auth_method": method,
        "grant_types": ["client_credentials"],
        **extra,
    }


def _public(client_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "token_endpoint_auth_method": "none",
        "grant_types": ["password", "refresh_token"],
        **extra,
    }


def oidc_config() -> dict[str, Any]:
    """The OpenID Connect server's realms (see tests/oidc/server.mjs)."""
    introspect = _cc(*INTROSPECTION_CLIENT)
    return {
        "realms": {
            "acme": {
                "access_token_ttl": 300,
                "refresh_token_ttl": 1800,
                "clients": [
                    _cc("etl-service", CANARIES["etl_secret"]),
                    _cc("etl-basic", CANARIES["basic_secret"], method="client_secret_basic"),
                    _cc("short-lived", CANARIES["short_secret"], access_token_ttl=3),
                    _cc("viewer", CANARIES["viewer_secret"]),
                    introspect,
                    _public("cli"),
                    _public("cli-short", access_token_ttl=2),
                    _public("cli-rt-short", access_token_ttl=1, refresh_token_ttl=2),
                ],
                "users": [
                    {"id": ALICE_ID, "username": "alice", "password": CANARIES["alice_password"]},
                    {"id": BOB_ID, "username": "bob", "password": "bob-password"},
                ],
            },
            "master": {
                "clients": [_public("admin-cli"), introspect],
                "users": [{"id": ADMIN_ID, "username": "admin", "password": CANARIES["admin_password"]}],
            },
            "slow": {
                "token_delay_ms": 400,
                "clients": [_cc("etl-service", CANARIES["etl_secret"]), introspect],
            },
        }
    }


def _users() -> list[dict[str, Any]]:
    out = []
    for i in range(1, 24):
        out.append(
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "username": f"user{i:02d}",
                "firstName": ["Zoë", "Ånja", "李", "O'Brien", None][i % 5],
                "lastName": f"Last {i}",
                "email": None if i % 6 == 0 else f"user{i:02d}@acme.example",
                "emailVerified": i % 2 == 0,
                "enabled": i % 7 != 0,
                "createdTimestamp": 1_700_000_000_000 + i * 1_000_003,
                "attributes": {"dept": [f"d{i % 3}"], "phone": ["+1 555 0100", "+1 555 0199"]}
                if i % 4 == 0
                else {},
                "requiredActions": ["VERIFY_EMAIL"] if i % 5 == 0 else [],
            }
        )
    out.append(
        {
            "id": "00000000-0000-4000-8000-5e5e5e5e5e5e",
            "username": "service-account-etl-service",
            "enabled": True,
            "emailVerified": False,
            "createdTimestamp": 1_700_000_000_000,
            "serviceAccountClientId": "etl-service",
        }
    )
    return out


def _group(
    gid: str, name: str, path: str, subs: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    return {"id": gid, "name": name, "path": path, "subGroups": subs or [], **extra}


def _groups() -> list[dict[str, Any]]:
    teams = [
        _group(
            f"g-eng-{i:02d}",
            f"team-{i:02d}",
            f"/engineering/team-{i:02d}",
            [_group(f"g-eng-{i:02d}-oncall", "oncall", f"/engineering/team-{i:02d}/oncall")]
            if i in (3, 11)
            else None,
            attributes={"cost-center": [f"cc-{i}"]},
        )
        for i in range(1, 13)
    ]
    return [
        _group(
            "g-eng", "engineering", "/engineering", teams, realmRoles=["developer"], description="Engineers"
        ),
        _group(
            "g-sales",
            "sales",
            "/sales",
            [_group("g-sales-emea", "emea", "/sales/emea")],
            clientRoles={"crm": ["user"]},
        ),
        _group("g-admins", "admins", "/admins", realmRoles=["admin", "developer"]),
        _group("g-empty", "empty", "/empty"),
        _group("g-ünïcode", "ünïcode & co", "/ünïcode & co", attributes={"k": ["v1", "v2"]}),
    ]


def _clients() -> list[dict[str, Any]]:
    base = {"protocol": "openid-connect", "enabled": True, "fullScopeAllowed": True, "notBefore": 0}
    return [
        {
            **base,
            "id": "c-0001",
            "clientId": "billing",
            "name": "Billing",
            "publicClient": False,
            "secret": CANARIES["client_secret_in_data"],
            "clientAuthenticatorType": "client-secret",
            "redirectUris": ["https://billing.acme.example/*"],
            "webOrigins": ["+"],
            "attributes": {"post.logout.redirect.uris": "+"},
            "protocolMappers": [
                {
                    "name": "aud",
                    "protocol": "openid-connect",
                    "config": {"included.client.audience": "billing"},
                }
            ],
            "defaultClientScopes": ["profile", "email"],
            "optionalClientScopes": ["offline_access"],
        },
        {
            **base,
            "id": "c-0002",
            "clientId": "admin-cli",
            "name": "${client_admin-cli}",
            "publicClient": True,
            "directAccessGrantsEnabled": True,
            "redirectUris": [],
            "webOrigins": [],
        },
        {
            **base,
            "id": "c-0003",
            "clientId": "api-gateway",
            "bearerOnly": True,
            "publicClient": False,
            "secret": "bearer-only-secrets-are-not-shown",
        },
        {
            **base,
            "id": "c-0004",
            "clientId": "etl-service",
            "publicClient": False,
            "serviceAccountsEnabled": True,
            "secret": CANARIES["etl_secret"],
            "description": "dc-api-x loads",
        },
        {
            **base,
            "id": "c-0005",
            "clientId": "web",
            "publicClient": True,
            "rootUrl": "https://acme.example",
            "standardFlowEnabled": True,
            "enabled": False,
        },
    ]


def _roles() -> list[dict[str, Any]]:
    names = [
        "admin",
        "auditor",
        "default-roles-acme",
        "developer",
        "offline_access",
        "uma_authorization",
        "viewer",
        "ünïcode-rôle",
    ]
    return [
        {
            "id": f"r-{i:04d}",
            "name": n,
            "description": None if i % 3 == 0 else f"role {n}",
            "composite": n == "default-roles-acme",
            "clientRole": False,
            "containerId": "realm-acme-id",
            "attributes": {"level": [str(i)]} if i % 2 else {},
        }
        for i, n in enumerate(names, 1)
    ]


def acme_realm() -> Realm:
    """A fresh copy of the ``acme`` realm's admin data."""
    return Realm(users=_users(), groups=_groups(), clients=_clients(), roles=_roles())


def listed_users(realm: Realm) -> list[dict[str, Any]]:
    """The users ``GET /users`` lists (no service accounts), ordered by username."""
    return sorted(
        (copy.deepcopy(u) for u in realm.users if not u.get("serviceAccountClientId")),
        key=lambda u: u["username"],
    )


def flat_groups(realm: Realm) -> list[tuple[str, str | None, str]]:
    """``(id, parentId, path)`` of every group, depth first, siblings by name."""
    out: list[tuple[str, str | None, str]] = []

    def walk(groups: list[dict[str, Any]], parent: str | None) -> None:
        for g in sorted(groups, key=lambda g: g["name"]):
            out.append((g["id"], parent, g["path"]))
            walk(g["subGroups"], g["id"])

    walk(realm.groups, None)
    return out
