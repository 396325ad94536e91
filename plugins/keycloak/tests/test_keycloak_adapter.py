"""The ``keycloak`` adapter against the local admin-API server (tokens from the real OIDC server)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from keycloak_admin_server import _role_rep, _user_rep
from keycloak_testdata import ADMIN_ID, CANARIES, flat_groups, listed_users

from dc_api_x import ApiClient, create_adapter
from dc_api_x.exceptions import ConfigError, HTTPStatusError
from dc_api_x.logs import redact

pytestmark = pytest.mark.usefixtures("kc_plugins", "no_keycloak_env")


def source(oidc: Any, admin: Any, **options: Any) -> dict[str, Any]:
    auth = options.pop("auth", None) or {
        "type": "keycloak",
        "server_url": oidc.url,
        "client_id": "etl-service",
        "client_secret": CANARIES["etl_secret"],
    }
    return {"adapter": "keycloak", "server_url": admin.url, "realm": "acme", "auth": auth, **options}


def read_all(adapter: Any, name: str, **kw: Any) -> list[dict[str, Any]]:
    return [r for b in adapter.read(adapter.get_stream(name), **kw) for r in b.records]


def pages(admin: Any, path: str) -> list[tuple[str, str]]:
    return [(q.get("first", ""), q.get("max", "")) for (_m, p, q, _s) in admin.requests if p == path]


def test_discover_lists_four_streams_without_a_request(oidc: Any, admin: Any) -> None:
    with create_adapter(source(oidc, admin)) as kc:
        specs = kc.discover()
    assert [s.name for s in specs] == ["users", "groups", "clients", "realm_roles"]
    assert all(s.key_properties == ("id",) and s.replication_method == "FULL_TABLE" for s in specs)
    users = specs[0].properties
    assert users["createdTimestamp"] == {"type": ["integer", "null"]}
    assert users["requiredActions"]["items"] == {"type": "string"}
    assert "secret" not in specs[2].properties
    assert admin.requests == []


def test_users_exact_records_paged_with_first_and_max(oidc: Any, admin: Any) -> None:
    realm = admin.realms["acme"]
    with create_adapter(source(oidc, admin, page_size=7)) as kc:
        batches = list(kc.read(kc.get_stream("users")))
    got = [r for b in batches for r in b.records]
    assert got == [_user_rep(u, brief=False) for u in listed_users(realm)]
    assert len(got) == 23  # pages are combined into batches: the paging is checked server-side
    assert pages(admin, "/admin/realms/acme/users") == [
        ("0", "7"),
        ("7", "7"),
        ("14", "7"),
        ("21", "7"),
        ("28", "7"),
    ]
    table = batches[0].to_arrow()
    assert str(table.schema.field("createdTimestamp").type) == "int64"
    assert str(table.schema.field("requiredActions").type) == "list<item: string>"
    row = next(r for r in got if r.get("attributes"))
    arrow_row = next(r for b in batches for r in b.to_arrow().to_pylist() if r["id"] == row["id"])
    assert json.loads(arrow_row["attributes"]) == row["attributes"]  # a JSON blob, nothing coerced


def test_short_pages_from_hidden_users_lose_nothing_and_repeat_nothing(oidc: Any, admin: Any) -> None:
    """Keycloak pages in the database and then drops users the caller may not see (fine-grained
    permissions): a short page is not the last one, and ``first`` moves by ``max``."""
    realm = admin.realms["acme"]
    visible = listed_users(realm)
    hidden = {visible[2]["id"], visible[5]["id"], visible[20]["id"]}
    admin.hidden_users = hidden
    with create_adapter(source(oidc, admin, page_size=5)) as kc:
        got = read_all(kc, "users")
    assert [u["id"] for u in got] == [u["id"] for u in visible if u["id"] not in hidden]
    assert pages(admin, "/admin/realms/acme/users") == [(str(f), "5") for f in range(0, 30, 5)]


def test_groups_are_the_whole_tree_parents_first(oidc: Any, admin: Any) -> None:
    realm = admin.realms["acme"]
    with create_adapter(source(oidc, admin, page_size=5)) as kc:
        got = read_all(kc, "groups")
    assert [(g["id"], g.get("parentId"), g["path"]) for g in got] == flat_groups(realm)
    assert len(got) == 20 and all("subGroups" not in g for g in got)
    eng = next(g for g in got if g["id"] == "g-eng")
    assert (eng["subGroupCount"], eng["realmRoles"], eng["description"]) == (12, ["developer"], "Engineers")
    team3 = next(g for g in got if g["id"] == "g-eng-03")
    assert team3["attributes"] == {"cost-center": ["cc-3"]} and team3["parentId"] == "g-eng"
    # children of 'engineering' (12) in pages of 5 (first moves by max, an empty page ends)
    assert pages(admin, "/admin/realms/acme/groups/g-eng/children") == [
        ("0", "5"),
        ("5", "5"),
        ("10", "5"),
        ("15", "5"),
    ]
    assert pages(admin, "/admin/realms/acme/groups/g-empty/children") == []  # subGroupCount 0: no request


def test_groups_of_a_keycloak_before_23_nested_tree(oidc: Any, admin: Any) -> None:
    admin.legacy_groups = True
    realm = admin.realms["acme"]
    with create_adapter(source(oidc, admin, page_size=5)) as kc:
        got = read_all(kc, "groups")
    assert [(g["id"], g.get("parentId"), g["path"]) for g in got] == flat_groups(realm)
    assert not [p for (_m, p, _q, _s) in admin.requests if p.endswith("/children")]


def test_client_secrets_are_dropped_and_redacted_unless_asked_for(oidc: Any, admin: Any) -> None:
    with create_adapter(source(oidc, admin)) as kc:
        batches = list(kc.read(kc.get_stream("clients")))
    got = [r for b in batches for r in b.records]
    assert [c["clientId"] for c in got] == ["admin-cli", "api-gateway", "billing", "etl-service", "web"]
    assert all("secret" not in c for c in got)
    assert all("secret" not in (b.schema or {}).get("properties", {}) for b in batches)
    assert redact(f"leaked {CANARIES['client_secret_in_data']}") == "leaked ***"
    billing = got[2]
    assert billing["protocolMappers"][0]["config"] == {"included.client.audience": "billing"}
    with create_adapter(source(oidc, admin, include_client_secrets=True)) as kc:
        assert "secret" in kc.get_stream("clients").properties
        kept = read_all(kc, "clients")
    assert [c.get("secret") for c in kept] == [
        None,
        None,
        CANARIES["client_secret_in_data"],
        CANARIES["etl_secret"],
        None,
    ]


def test_realm_roles_full_and_brief(oidc: Any, admin: Any) -> None:
    roles = sorted(admin.realms["acme"].roles, key=lambda r: r["name"])
    with create_adapter(source(oidc, admin, page_size=3)) as kc:
        assert read_all(kc, "realm_roles") == [_role_rep(r, brief=False) for r in roles]
    with create_adapter(source(oidc, admin, brief_representation=True)) as kc:
        brief = read_all(kc, "realm_roles")
    assert brief == [_role_rep(r, brief=True) for r in roles] and all("attributes" not in r for r in brief)
    assert pages(admin, "/admin/realms/acme/roles")[:4] == [("0", "3"), ("3", "3"), ("6", "3"), ("9", "3")]


def test_limit_columns_and_stream_params(oidc: Any, admin: Any) -> None:
    with create_adapter(source(oidc, admin, page_size=4, params={"users": {"enabled": "false"}})) as kc:
        some = read_all(kc, "users", limit=10, columns=["id", "username"])
        groups = read_all(kc, "groups", limit=3, columns=["path"])
        disabled = read_all(kc, "users")
    assert len(some) <= 10 and all(set(r) == {"id", "username"} for r in some)
    assert [u["username"] for u in disabled] == ["user07", "user14", "user21"]
    assert groups == [{"path": "/admins"}, {"path": "/empty"}, {"path": "/engineering"}]


def test_a_403_is_one_line_naming_the_adapter_stream_and_url(oidc: Any, admin: Any) -> None:
    auth = {
        "type": "keycloak",
        "server_url": oidc.url,
        "client_id": "viewer",
        "client_secret": CANARIES["viewer_secret"],
    }
    with create_adapter(source(oidc, admin, auth=auth)) as kc, pytest.raises(HTTPStatusError) as info:
        read_all(kc, "users")
    text = str(info.value)
    assert (
        text.startswith("adapter 'keycloak', stream 'users': GET ")
        and f"{admin.url}/admin/realms/acme/users" in text
    )
    assert "HTTP 403" in text and "\n" not in text and CANARIES["viewer_secret"] not in text
    assert info.value.status_code == 403


def test_admin_of_the_master_realm_reads_another_realm(oidc: Any, admin: Any) -> None:
    auth = {
        "type": "keycloak",
        "server_url": oidc.url,
        "realm": "master",
        "client_id": "admin-cli",
        "username": "admin",
        "password": CANARIES["admin_password"],
    }
    with create_adapter(source(oidc, admin, auth=auth)) as kc:
        assert len(read_all(kc, "realm_roles")) == 8
    assert ADMIN_ID in admin.admins
    last = oidc.calls(realm="master")[-1]
    assert (last["client_id"], last["grant_type"], last["status"]) == ("admin-cli", "password", 200)


def test_api_client_requests_and_paginates_relative_to_the_realm(oidc: Any, admin: Any) -> None:
    auth = {
        "type": "keycloak",
        "server_url": oidc.url,
        "realm": "acme",
        "client_id": "etl-service",
        "client_secret": CANARIES["etl_secret"],
    }
    with ApiClient(admin.url, adapter="keycloak", realm="acme", page_size=10, auth=auth) as api:
        assert api.get("users/count").raise_for_status().data == 23
        assert api.get("groups/count", params={"top": "true"}).data == {"count": 5}
        users = list(api.paginate("users"))
    assert len(users) == 23
    assert pages(admin, "/admin/realms/acme/users") == [("0", "10"), ("10", "10"), ("20", "10"), ("30", "10")]


def test_bad_adapter_options_are_one_line(oidc: Any, admin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^adapter 'keycloak': option 'realm': required option is missing"):
        create_adapter({"adapter": "keycloak", "server_url": admin.url})
    with pytest.raises(
        ConfigError, match=r"^adapter 'keycloak': option 'params': .*unknown stream\(s\) roles"
    ):
        create_adapter(
            {"adapter": "keycloak", "server_url": admin.url, "realm": "acme", "params": {"roles": {}}}
        )
    with pytest.raises(ConfigError, match=r"^adapter 'keycloak': option 'retries.max_attempts'"):
        create_adapter(
            {"adapter": "keycloak", "server_url": admin.url, "realm": "acme", "retries": {"max_attempts": 0}}
        )
    with pytest.raises(ConfigError, match=r"^adapter 'keycloak': option 'server_url'"):
        create_adapter({"adapter": "keycloak", "server_url": "ftp://x", "realm": "acme"})
    monkeypatch.setenv("KEYCLOAK_URL", admin.url)
    monkeypatch.setenv("KEYCLOAK_REALM", "acme")
    monkeypatch.setenv("KEYCLOAK_CLIENT_ID", "etl-service")
    monkeypatch.setenv("KEYCLOAK_CLIENT_SECRET", CANARIES["etl_secret"])
    # server, realm and client from the environment (the token server is another URL in this test)
    with create_adapter({"adapter": "keycloak", "auth": {"type": "keycloak", "server_url": oidc.url}}) as kc:
        assert kc.url == f"{admin.url}/admin/realms/acme"
        assert len(read_all(kc, "users")) == 23
    # no auth option: {type: keycloak} with the adapter's server and realm, the client from the environment
    with create_adapter({"adapter": "keycloak", "retries": 1}) as kc:
        assert kc._http.options.auth == {"type": "keycloak", "server_url": admin.url, "realm": "acme"}
