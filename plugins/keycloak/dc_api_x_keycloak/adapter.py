"""The ``keycloak`` adapter: the Keycloak admin REST API as streams, on the core's ``http`` adapter.

::

    {"adapter": "keycloak", "server_url": "https://sso.example.com", "realm": "acme",
     "auth": {"type": "keycloak", "realm": "master", "client_id": "admin-cli",
              "username": "admin", "password": "…"}}

Streams (all ``FULL_TABLE``, key ``id``; Keycloak's admin API has no change timestamps or feed for
these objects, so every run reads them whole):

=============== ============================================ ======================================
stream          endpoint (under /admin/realms/{realm})       notes
=============== ============================================ ======================================
``users``       ``GET /users``                                service-account users are not listed
                                                             (Keycloak leaves them out without a
                                                             filter)
``groups``      ``GET /groups``, ``GET /groups/{id}/children`` the whole tree, parents first;
                                                             ``subGroups`` become rows
``clients``     ``GET /clients``                              ``secret`` dropped unless
                                                             ``include_client_secrets``
``realm_roles`` ``GET /roles``                                realm roles
=============== ============================================ ======================================

Pages are read with ``first``/``max`` (the ``keycloak`` paginator: ``first`` moves by ``max``, an
empty page ends). Requests, retries, timeouts, auth and URL redaction are the ``http`` adapter's:
this adapter configures one (through the registry) with ``base_url =
{server_url}/admin/realms/{realm}`` and the four streams, so its errors name ``adapter 'keycloak'``.
The request side (``request`` / ``stream``) takes paths relative to that URL
(``api.get("users/count")``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from pydantic import AliasChoices, Field, field_validator, model_validator

from dc_api_x.exceptions import ConfigError
from dc_api_x.ext.adapters import AdapterOptions, ProtocolAdapter, Response
from dc_api_x.logs import register_secret
from dc_api_x.types import Batch, StreamSpec

from .auth import env_defaults
from .schemas import SCHEMAS

__all__ = ["KeycloakAdapter", "KeycloakAdapterOptions", "admin_url"]


def admin_url(server_url: str, realm: str) -> str:
    """``{server_url}/admin/realms/{realm}``: the base of the realm's admin REST API."""
    return f"{server_url.rstrip('/')}/admin/realms/{quote(realm, safe='')}"


class KeycloakAdapterOptions(AdapterOptions):
    """Options of the ``keycloak`` adapter."""

    server_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("server_url", "url", "base_url"),
        description="the server, e.g. https://sso.example.com (…/auth before Keycloak 17); env KEYCLOAK_URL",
    )
    realm: str | None = Field(
        default=None, description="the realm whose admin API is read; env KEYCLOAK_REALM"
    )
    auth: dict[str, Any] | str | None = Field(
        default=None,
        description="{type: NAME, …} of an auth provider; a 'keycloak' one gets server_url and realm "
        "from the adapter (realm: KEYCLOAK_AUTH_REALM first); default {type: keycloak} when "
        "KEYCLOAK_CLIENT_ID is set",
    )
    page_size: int = Field(default=100, ge=1, description="Keycloak's 'max' per page")
    stop_on_short_page: bool = Field(
        default=False,
        description="a page shorter than page_size ends a stream (saves one request; only when the "
        "caller may see every entry)",
    )
    brief_representation: bool = Field(default=False, description="ask for brief representations")
    include_client_secrets: bool = Field(
        default=False, description="keep the 'secret' of confidential clients in the clients stream"
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="more query parameters per stream, e.g. {users: {enabled: true}, groups: {q: 'k:v'}}",
    )
    pagination: dict[str, Any] | None = Field(
        default=None, description="paginator of ApiClient.paginate (default: keycloak with max=page_size)"
    )
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Any = Field(default=None, description="as the http adapter's 'timeout'")
    retries: Any = Field(default=None, description="as the http adapter's 'retries'")
    verify: bool | str = Field(default=True, description="verify TLS (or a CA bundle path)")
    prefetch: bool = Field(default=True, description="fetch the next page while one is consumed")

    @model_validator(mode="before")
    @classmethod
    def _from_env(cls, data: Any) -> Any:
        return env_defaults(data, {"server_url": "KEYCLOAK_URL", "realm": "KEYCLOAK_REALM"})

    @field_validator("server_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.lower().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @field_validator("params")
    @classmethod
    def _known_streams(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = sorted(set(v) - set(SCHEMAS))
        if unknown:
            raise ValueError(f"unknown stream(s) {', '.join(unknown)}; streams: {', '.join(SCHEMAS)}")
        return v


_http_classes: dict[type, type] = {}


def _http_class() -> type:
    """The registered ``http`` adapter, named ``keycloak`` (so its messages name this adapter)."""
    from dc_api_x import get_adapter

    base = get_adapter("http")
    cls = _http_classes.get(base)
    if cls is None:
        cls = _http_classes[base] = type(
            "KeycloakAdminHttp",
            (base,),
            {
                "name": "keycloak",
                "__module__": __name__,
                "__doc__": "The http adapter the keycloak adapter runs on.",
            },
        )
    return cls


#: fields read but not streamed as such (declared to the http adapter so that it does not log them
#: as new fields): a group's nested ``subGroups`` become rows, a client's ``secret`` is dropped
_INTERNAL = {
    "groups": {"subGroups": {"type": ["array", "null"]}},
    "clients": {"secret": {"type": ["string", "null"]}},
}


def _with_internal(spec: StreamSpec) -> StreamSpec:
    extra = _INTERNAL.get(spec.name)
    if not extra:
        return spec
    props = {**extra, **(spec.schema.get("properties") or {})}
    return spec.with_(schema={**spec.schema, "properties": props})


class KeycloakAdapter(ProtocolAdapter):
    """The Keycloak admin REST API: streams ``users``, ``groups``, ``clients``, ``realm_roles``,
    and requests relative to ``{server_url}/admin/realms/{realm}``."""

    name = "keycloak"
    Options = KeycloakAdapterOptions
    secret_options = ("auth", "headers")

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        opts: KeycloakAdapterOptions = self.options
        plugin = f"adapter {self.name!r}"
        for field, var in (("server_url", "KEYCLOAK_URL"), ("realm", "KEYCLOAK_REALM")):
            if not getattr(opts, field):
                raise ConfigError(
                    f"{plugin}: option {field!r}: required option is missing (or set {var})",
                    plugin=plugin,
                    field=field,
                )
        #: The base URL of the realm's admin API.
        self.url = admin_url(str(opts.server_url), str(opts.realm))
        self._paging = opts.pagination or {
            "type": "keycloak",
            "max": opts.page_size,
            "stop_on_short_page": opts.stop_on_short_page,
        }
        if opts.pagination is None:
            opts.pagination = dict(self._paging)
        http: dict[str, Any] = {
            "base_url": self.url,
            "headers": opts.headers,
            "verify": opts.verify,
            "prefetch": opts.prefetch,
            "pagination": self._paging,
            "streams": [self._stream_config(name) for name in SCHEMAS],
        }
        if opts.timeout is not None:
            http["timeout"] = opts.timeout
        if opts.retries is not None:
            http["retries"] = opts.retries
        auth = self._auth_config(opts)
        if auth is not None:
            http["auth"] = auth
        self._http: Any = _http_class()(http)

    def _auth_config(self, opts: KeycloakAdapterOptions) -> dict[str, Any] | str | None:
        auth = opts.auth
        if auth is None:
            if not os.environ.get("KEYCLOAK_CLIENT_ID"):
                return None
            return {"type": "keycloak", "server_url": opts.server_url, "realm": self._token_realm(opts)}
        if isinstance(auth, dict) and auth.get("type") == "keycloak":
            filled = dict(auth)
            if not any(filled.get(k) for k in ("server_url", "url", "base_url", "token_url")):
                filled["server_url"] = opts.server_url
            if filled.get("realm") is None and filled.get("token_url") is None:
                filled["realm"] = self._token_realm(opts)
            return filled
        return auth

    @staticmethod
    def _token_realm(opts: KeycloakAdapterOptions) -> str | None:
        return os.environ.get("KEYCLOAK_AUTH_REALM") or opts.realm

    def _stream_config(self, name: str) -> dict[str, Any]:
        opts: KeycloakAdapterOptions = self.options
        path, _schema = SCHEMAS[name]
        params: dict[str, Any] = {}
        if name != "clients":  # GET /clients has no briefRepresentation
            params["briefRepresentation"] = opts.brief_representation
        params.update(opts.params.get(name, {}))
        return {"name": name, "path": path, "params": params, "primary_keys": ["id"]}

    # -- request side ---------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        """A request relative to ``{server_url}/admin/realms/{realm}`` (see the ``http`` adapter)."""
        return self._http.request(method, path, **kwargs)  # type: ignore[no-any-return]

    def stream(self, method: str, path: str, **kwargs: Any) -> Any:
        """A streamed request (a context manager; see the ``http`` adapter's ``stream``)."""
        return self._http.stream(method, path, **kwargs)

    # -- ETL side -------------------------------------------------------------------------------
    def discover(self) -> list[StreamSpec]:
        """The four streams, with Keycloak's representations as JSON Schema (no request)."""
        out = []
        for name, (path, schema) in SCHEMAS.items():
            if name == "clients" and self.options.include_client_secrets:
                schema = {
                    **schema,
                    "properties": {**schema["properties"], "secret": {"type": ["string", "null"]}},
                }
            out.append(StreamSpec(name=name, schema=schema, key_properties=("id",), options={"path": path}))
        return out

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """Yield the stream's entries page by page (``state`` is ignored: full-table streams)."""
        name = stream if isinstance(stream, str) else stream.name
        spec = self.get_stream(name)
        if isinstance(stream, StreamSpec) and stream.schema.get("properties"):
            spec = spec.with_(schema=stream.schema)
        if name == "groups":
            yield from self._read_groups(spec, columns, limit)
            return
        for batch in self._http.read(_with_internal(spec), columns=columns, limit=limit):
            if name == "clients":
                batch = self._client_secrets(batch)
            yield batch

    def _client_secrets(self, batch: Batch) -> Batch:
        """Register every client secret for redaction; drop it unless ``include_client_secrets``."""
        keep = self.options.include_client_secrets
        dropped = False
        for rec in batch.records:
            secret = rec.get("secret")
            if isinstance(secret, str):
                register_secret(secret)
            if not keep and "secret" in rec:
                del rec["secret"]
                dropped = True
        if dropped or (not keep and "secret" in ((batch.schema or {}).get("properties") or {})):
            schema = dict(batch.schema or {})
            schema["properties"] = {
                k: v for k, v in (schema.get("properties") or {}).items() if k != "secret"
            }
            return Batch(records=batch.records, schema=schema, bookmark=batch.bookmark)
        return batch

    def _read_groups(
        self, spec: StreamSpec, columns: Sequence[str] | None, limit: int | None
    ) -> Iterator[Batch]:
        """The group tree, depth first (a group, then its sub-groups), one row per group.

        Keycloak >= 23 lists top-level groups with ``subGroupCount`` and serves each level under
        ``/groups/{id}/children`` (paged); older servers nest the whole tree in ``subGroups``.
        Both are read; ``parentId`` is set from the tree when the server does not send it.
        """
        if limit is not None and limit <= 0:
            return
        opts: KeycloakAdapterOptions = self.options
        props: dict[str, Any] = dict(spec.schema.get("properties") or {})
        cols = list(columns) if columns is not None else None
        seen: set[Any] = set()
        child_params = {"briefRepresentation": opts.brief_representation}

        def widen(batch: Batch) -> None:
            for key, prop in ((batch.schema or {}).get("properties") or {}).items():
                if key not in props and key != "subGroups":
                    props[key] = prop

        def visit(group: dict[str, Any], parent: Any) -> Iterator[dict[str, Any]]:
            subs = group.pop("subGroups", None)
            gid = group.get("id")
            if parent is not None and group.get("parentId") is None:
                group["parentId"] = parent
            if gid in seen:
                raise self.error(
                    f"group {gid!r} ({group.get('path')!r}) is listed twice in the tree", stream="groups"
                )
            seen.add(gid)
            yield group
            if subs:
                for sub in subs:
                    yield from visit(sub, gid)
            elif (group.get("subGroupCount") or 0) > 0:
                children = StreamSpec(
                    name=f"groups/{gid}/children",
                    schema=_with_internal(spec).schema,
                    key_properties=("id",),
                    options={"path": f"groups/{quote(str(gid), safe='')}/children", "params": child_params},
                )
                for batch in self._http.read(children):
                    widen(batch)
                    for child in batch.records:
                        yield from visit(child, gid)

        out: list[dict[str, Any]] = []
        produced = 0
        top = self._http.read(_with_internal(spec))
        try:
            for batch in top:
                widen(batch)
                for group in batch.records:
                    for rec in visit(group, None):
                        out.append({c: rec[c] for c in cols if c in rec} if cols is not None else rec)
                        produced += 1
                        if limit is not None and produced >= limit:
                            yield self._batch(out, props, cols)
                            return
                        if len(out) >= opts.page_size:
                            yield self._batch(out, props, cols)
                            out = []
        finally:
            top.close()
        if out:
            yield self._batch(out, props, cols)

    @staticmethod
    def _batch(records: list[dict[str, Any]], props: dict[str, Any], cols: list[str] | None) -> Batch:
        shown = {c: props[c] for c in cols if c in props} if cols is not None else dict(props)
        return Batch(records=records, schema={"type": "object", "properties": shown})

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP client and the auth provider (a password-grant session is revoked)."""
        self._http.close()
        super().close()
