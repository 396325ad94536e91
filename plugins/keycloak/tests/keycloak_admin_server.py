"""A local HTTP server following Keycloak's documented admin REST API (NOT Keycloak).

Keycloak cannot be installed here, so the adapter's streams are tested against this server. It
implements what the adapter reads, as Keycloak 26 does (``UsersResource``, ``GroupsResource`` /
``GroupResource``, ``ClientsResource``, ``RoleContainerResource`` of keycloak/keycloak):

* ``GET /admin/realms/{realm}/users`` — ``first`` (default 0), ``max`` (default 100),
  ``briefRepresentation`` (default false), ``search``, ``username``, ``email``, ``enabled``,
  ``exact``; ordered by username; service-account users left out when no filter is given;
  ``GET …/users/count``, ``GET …/users/{id}``;
* ``GET …/groups`` — top-level groups ordered by name, ``first``/``max`` (all when absent),
  ``briefRepresentation`` (default **true**), ``subGroupsCount`` (default true), ``search``;
  ``subGroups`` empty and ``subGroupCount`` set; ``GET …/groups/{id}/children`` — one level,
  ``first`` / ``max`` (default 10), ``briefRepresentation`` (default false); ``GET …/groups/count``.
  With ``legacy_groups`` it answers like Keycloak < 23: the whole tree nested in ``subGroups``
  and no ``children`` endpoint;
* ``GET …/clients`` — ``first``/``max`` (all when absent), ``clientId``, ``search``; ordered by
  clientId; ``secret`` of confidential clients included (as Keycloak does);
* ``GET …/roles`` — realm roles ordered by name, ``first``/``max`` (paged only when both are
  given), ``search``, ``briefRepresentation`` (default true).

Every request needs ``Authorization: Bearer <token>``. The token is checked with the REAL OpenID
Connect server's introspection endpoint (RFC 7662, ``…/realms/{realm}/protocol/openid-connect/
token/introspect``, the target realm then ``master``), the answer cached until the token's ``exp``
(as Keycloak's own check of a JWT's signature and expiry is local): an expired or inactive token
gets ``401 {"error": "HTTP 401 Unauthorized"}``, a principal not in ``admins`` gets
``403 {"error": "HTTP 403 Forbidden"}`` (Keycloak's bodies). ``hidden_users`` imitates
fine-grained admin permissions: those users are filtered out *after* ``first``/``max`` paging, so
a page can be short while more follow. ``delay`` sleeps before each answer.

``requests`` records ``(method, path, query, status)`` of every request.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["KeycloakAdminServer", "Realm"]


@dataclass
class Realm:
    """The objects of one realm. ``groups`` is a tree: dicts with ``subGroups`` lists."""

    users: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    clients: list[dict[str, Any]] = field(default_factory=list)
    roles: list[dict[str, Any]] = field(default_factory=list)


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.lower() == "true"


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


class KeycloakAdminServer:
    """``with KeycloakAdminServer(oidc_url, introspection_client, admins) as srv: srv.url``."""

    def __init__(
        self,
        oidc_url: str,
        introspection_client: tuple[str, str],
        admins: set[str],
        *,
        realms: dict[str, Realm] | None = None,
    ) -> None:
        self.oidc_url = oidc_url.rstrip("/")
        self.introspection_client = introspection_client
        #: principals allowed to read: introspected ``client_id`` (service accounts) or ``sub``
        self.admins = set(admins)
        self.realms: dict[str, Realm] = realms or {}
        self.hidden_users: set[str] = set()
        #: realms whose tokens are accepted besides the target realm (Keycloak: the realm and master)
        self.issuers: list[str] = ["master"]
        self.legacy_groups = False
        self.delay = 0.0
        self.requests: list[tuple[str, str, dict[str, str], int]] = []
        self.introspections = 0
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> KeycloakAdminServer:
        handler = _handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="kc-admin", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def statuses(self) -> list[int]:
        with self._lock:
            return [r[3] for r in self.requests]

    # -- auth -----------------------------------------------------------------------------------
    def principal(self, realm: str, token: str) -> str | None:
        """The introspected principal of an active token, or ``None`` (inactive or expired)."""
        now = time.time()
        with self._lock:
            cached = self._cache.get(token)
        if cached is not None:
            exp, who = cached
            return who if now < exp else None
        for issuer_realm in dict.fromkeys([realm, *self.issuers]):
            answer = self._introspect(issuer_realm, token)
            if answer.get("active"):
                exp = float(answer.get("exp") or 0)
                who = str(answer.get("sub") or answer.get("client_id"))
                with self._lock:
                    self._cache[token] = (exp, who)
                return who if now < exp else None
        return None

    def _introspect(self, realm: str, token: str) -> dict[str, Any]:
        url = f"{self.oidc_url}/realms/{realm}/protocol/openid-connect/token/introspect"
        cid, secret = self.introspection_client
        req = urllib.request.Request(
            url,
            data=urllib.parse.urlencode({"token": token, "client_id": cid, "client_secret": secret}).encode(),
            headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
        )
        with self._lock:
            self.introspections += 1
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())  # type: ignore[no-any-return]
        except OSError:
            return {"active": False}

    # -- the admin API ----------------------------------------------------------------------------
    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if len(parts) < 4 or parts[:2] != ["admin", "realms"]:
            return 404, {"error": "Not Found"}
        realm = self.realms.get(parts[2])
        if realm is None:
            return 404, {"error": "Realm not found."}
        rest = parts[3:]
        first, max_ = _int(query.get("first")), _int(query.get("max"))
        if rest == ["users"]:
            return 200, self._users(realm, query, first, max_)
        if rest == ["users", "count"]:
            return 200, len(self._matching_users(realm, query))
        if len(rest) == 2 and rest[0] == "users":
            for u in realm.users:
                if u["id"] == rest[1]:
                    return 200, _user_rep(u, brief=False)
            return 404, {"error": "User not found"}
        if rest == ["groups"]:
            return 200, self._groups(realm, query, first, max_)
        if rest == ["groups", "count"]:
            top = _bool(query.get("top"), False)
            return 200, {"count": len(realm.groups) if top else len(list(_walk(realm.groups)))}
        if len(rest) == 3 and rest[0] == "groups" and rest[2] == "children" and not self.legacy_groups:
            group = next((g for g in _walk(realm.groups) if g["id"] == rest[1]), None)
            if group is None:
                return 404, {"error": "Could not find group by id"}
            brief = _bool(query.get("briefRepresentation"), False)
            count = _bool(query.get("subGroupsCount"), True)
            kids = sorted(group.get("subGroups", []), key=lambda g: g["name"])
            page = _page(kids, first or 0, 10 if max_ is None else max_)
            return 200, [_group_rep(g, brief=brief, count=count, parent=group) for g in page]
        if rest == ["clients"]:
            return 200, self._clients(realm, query, first, max_)
        if rest == ["roles"]:
            roles = sorted(realm.roles, key=lambda r: r["name"])
            search = query.get("search")
            if search:
                roles = [r for r in roles if search.lower() in r["name"].lower()]
            if first is not None and max_ is not None:
                roles = _page(roles, first, max_)
            brief = _bool(query.get("briefRepresentation"), True)
            return 200, [_role_rep(r, brief=brief) for r in roles]
        return 404, {"error": "Not Found"}

    def _matching_users(self, realm: Realm, query: dict[str, str]) -> list[dict[str, Any]]:
        users = sorted(realm.users, key=lambda u: u["username"])
        filters = {
            k: query[k] for k in ("username", "email", "firstName", "lastName", "enabled") if k in query
        }
        search = query.get("search")
        if not filters and not search:
            return [u for u in users if not u.get("serviceAccountClientId")]
        exact = _bool(query.get("exact"), False)
        out = []
        for u in users:
            if search and not any(
                search.lower() in str(u.get(k) or "").lower()
                for k in ("username", "email", "firstName", "lastName")
            ):
                continue
            ok = True
            for k, v in filters.items():
                have = u.get(k)
                if k == "enabled":
                    ok = ok and bool(have) == (v.lower() == "true")
                elif exact:
                    ok = ok and str(have or "") == v
                else:
                    ok = ok and v.lower() in str(have or "").lower()
            if ok:
                out.append(u)
        return out

    def _users(self, realm: Realm, query: dict[str, str], first: int | None, max_: int | None) -> list[Any]:
        users = self._matching_users(realm, query)
        page = _page(users, max(first or 0, 0), 100 if max_ is None else max_)
        brief = _bool(query.get("briefRepresentation"), False)
        # fine-grained admin permissions filter after the database paging (Keycloak's toRepresentation)
        return [_user_rep(u, brief=brief) for u in page if u["id"] not in self.hidden_users]

    def _groups(self, realm: Realm, query: dict[str, str], first: int | None, max_: int | None) -> list[Any]:
        brief = _bool(query.get("briefRepresentation"), True)
        count = _bool(query.get("subGroupsCount"), True)
        groups = sorted(realm.groups, key=lambda g: g["name"])
        search = query.get("search")
        if search:
            groups = [g for g in groups if search.lower() in g["name"].lower()]
        if first is not None or max_ is not None:
            groups = _page(groups, first or 0, max_ if max_ is not None else len(groups))
        if self.legacy_groups:
            return [_legacy_group_rep(g, brief=brief) for g in groups]
        return [_group_rep(g, brief=brief, count=count, parent=None) for g in groups]

    def _clients(self, realm: Realm, query: dict[str, str], first: int | None, max_: int | None) -> list[Any]:
        clients = sorted(realm.clients, key=lambda c: c["clientId"])
        cid = query.get("clientId")
        if cid is not None:
            if _bool(query.get("search"), False):
                clients = [c for c in clients if cid.lower() in c["clientId"].lower()]
            else:
                clients = [c for c in clients if c["clientId"] == cid]
        if first is not None or max_ is not None:
            clients = _page(clients, first or 0, max_ if max_ is not None else len(clients))
        out = []
        for c in clients:
            rep = {k: v for k, v in c.items() if v is not None}
            if c.get("publicClient") or c.get("bearerOnly"):
                rep.pop("secret", None)
            rep["access"] = {"view": True, "configure": True, "manage": True}
            out.append(rep)
        return out


def _page(items: list[Any], first: int, max_: int) -> list[Any]:
    if max_ < 0:
        return items[first:]
    return items[first : first + max_]


def _walk(groups: list[dict[str, Any]]) -> Any:
    for g in groups:
        yield g
        yield from _walk(g.get("subGroups", []))


_BRIEF_USER = (
    "id",
    "username",
    "firstName",
    "lastName",
    "email",
    "emailVerified",
    "enabled",
    "createdTimestamp",
    "federationLink",
)


def _user_rep(u: dict[str, Any], *, brief: bool) -> dict[str, Any]:
    if brief:
        rep = {k: u[k] for k in _BRIEF_USER if u.get(k) is not None}
    else:
        rep = {k: v for k, v in u.items() if v is not None}
        rep.setdefault("totp", False)
        rep.setdefault("disableableCredentialTypes", [])
        rep.setdefault("requiredActions", [])
        rep.setdefault("notBefore", 0)
        if not rep.get("attributes"):
            rep.pop("attributes", None)
    rep["access"] = {
        "manageGroupMembership": True,
        "view": True,
        "mapRoles": True,
        "impersonate": False,
        "manage": True,
    }
    return rep


def _group_rep(
    g: dict[str, Any], *, brief: bool, count: bool, parent: dict[str, Any] | None
) -> dict[str, Any]:
    rep: dict[str, Any] = {"id": g["id"], "name": g["name"], "path": g["path"]}
    if g.get("description") is not None:
        rep["description"] = g["description"]
    if parent is not None:
        rep["parentId"] = parent["id"]
    if count:
        rep["subGroupCount"] = len(g.get("subGroups", []))
    rep["subGroups"] = []
    if not brief:
        rep["attributes"] = g.get("attributes", {})
        rep["realmRoles"] = g.get("realmRoles", [])
        rep["clientRoles"] = g.get("clientRoles", {})
    rep["access"] = {
        "view": True,
        "viewMembers": True,
        "manageMembers": True,
        "manage": True,
        "manageMembership": True,
    }
    return rep


def _legacy_group_rep(g: dict[str, Any], *, brief: bool) -> dict[str, Any]:
    """Keycloak < 23: the whole tree in ``subGroups``, no ``parentId`` / ``subGroupCount``."""
    rep: dict[str, Any] = {"id": g["id"], "name": g["name"], "path": g["path"]}
    if not brief:
        rep["attributes"] = g.get("attributes", {})
        rep["realmRoles"] = g.get("realmRoles", [])
        rep["clientRoles"] = g.get("clientRoles", {})
    rep["subGroups"] = [
        _legacy_group_rep(s, brief=brief) for s in sorted(g.get("subGroups", []), key=lambda s: s["name"])
    ]
    return rep


def _role_rep(r: dict[str, Any], *, brief: bool) -> dict[str, Any]:
    rep = {k: v for k, v in r.items() if v is not None and k != "attributes"}
    if not brief:
        rep["attributes"] = r.get("attributes", {})
    return rep


def _handler(srv: KeycloakAdminServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            if status == 401:
                self.send_header("www-authenticate", 'Bearer realm="keycloak"')
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            parts = url.path.strip("/").split("/")
            realm = urllib.parse.unquote(parts[2]) if len(parts) > 2 else ""
            header = self.headers.get("authorization", "")
            status: int
            body: Any
            if srv.delay:
                time.sleep(srv.delay)
            if not header.lower().startswith("bearer "):
                status, body = 401, {"error": "HTTP 401 Unauthorized"}
            else:
                who = srv.principal(realm, header[7:].strip())
                if who is None:
                    status, body = 401, {"error": "HTTP 401 Unauthorized"}
                elif who not in srv.admins:
                    status, body = 403, {"error": "HTTP 403 Forbidden"}
                else:
                    status, body = srv.answer(url.path, query)
            with srv._lock:
                srv.requests.append(("GET", url.path, query, status))
            self._send(status, body)

    return Handler
