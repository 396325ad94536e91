"""The ``keycloak`` auth provider: OAuth 2.0 tokens from a Keycloak realm.

::

    {"type": "keycloak", "server_url": "https://sso.example.com", "realm": "acme",
     "client_id": "etl", "client_secret": "…"}                                 # client credentials
    {"type": "keycloak", "server_url": "…", "realm": "master", "client_id": "admin-cli",
     "username": "admin", "password": "…"}                                     # password grant
    {"type": "keycloak", "server_url": "…", "realm": "acme", "client_id": "etl",
     "grant_type": "refresh_token", "refresh_token": "<offline token>"}        # a refresh token

The token endpoint is ``{server_url}/realms/{realm}/protocol/openid-connect/token`` (or
``token_url``). An access token is reused until ``expires_in - margin`` seconds after it was
requested, where the margin is ``refresh_margin`` but never more than half the token's lifetime
(a 3-second token is used for 1.5 s, not refetched before every request). Then the refresh token,
when the server gave one, is exchanged (``grant_type=refresh_token``; a rotated refresh token
replaces the old one, which is never sent again); a refused refresh token falls back to the
original grant. Concurrent requests share one token request (a lock, double-checked). A ``401``
from the API drops the token it was sent with (only that one) and retries once.

Under :class:`~dc_api_x.AsyncApiClient` the provider's async path (:meth:`KeycloakAuth.aapply`,
:meth:`KeycloakAuth.arefresh`) never blocks the event loop: a task that needs a token it does not
have runs the token request in a worker thread (``anyio.to_thread``) while the other tasks that
need one wait on an async lock for that one request; a valid token is applied without a thread.
The token request itself is the same synchronous one (the core's ``http`` adapter), so one
provider serves sync and async clients with one token, one refresh token and one rotation.

Every token received is passed to :func:`dc_api_x.logs.register_secret`, like the client secret and
the password, so none of them appears in a log line or an error message. The token requests go
through the core's ``http`` adapter (retries of connection errors and ``429``; a token request is
a ``POST`` and is not replayed after a ``5xx``, so a rotated refresh token is never presented
twice).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Generator
from typing import Any, Literal
from urllib.parse import quote

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from dc_api_x.exceptions import AuthError, ConfigError, DcApiXError
from dc_api_x.ext.auth import AuthOptions, AuthProvider
from dc_api_x.logs import redact, redact_url, register_secret

__all__ = ["KeycloakAuth", "KeycloakAuthOptions", "realm_url", "token_url"]

GrantType = Literal["client_credentials", "password", "refresh_token"]

#: option -> environment variable read when the option is not given
ENV = {
    "server_url": "KEYCLOAK_URL",
    "client_id": "KEYCLOAK_CLIENT_ID",
    "client_secret": "KEYCLOAK_CLIENT_SECRET",
    "username": "KEYCLOAK_USERNAME",
    "password": "KEYCLOAK_PASSWORD",
}
_ALIASES = {"server_url": ("server_url", "url", "base_url")}


def realm_url(server_url: str, realm: str) -> str:
    """``{server_url}/realms/{realm}`` (the realm's issuer URL; ``server_url`` may end in ``/auth``
    for Keycloak < 17, and in a slash)."""
    return f"{server_url.rstrip('/')}/realms/{quote(realm, safe='')}"


def token_url(server_url: str, realm: str) -> str:
    """The realm's token endpoint: ``{server_url}/realms/{realm}/protocol/openid-connect/token``."""
    return f"{realm_url(server_url, realm)}/protocol/openid-connect/token"


def env_defaults(data: Any, env: dict[str, str]) -> Any:
    """``data`` with each option of ``env`` that is absent filled from its environment variable."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for option, var in env.items():
        names = _ALIASES.get(option, (option,))
        if any(out.get(n) is not None for n in names):
            continue
        value = os.environ.get(var)
        if value:
            out[option] = value
    return out


class KeycloakAuthOptions(AuthOptions):
    """Options of the ``keycloak`` auth provider."""

    server_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("server_url", "url", "base_url"),
        description="the server, e.g. https://sso.example.com (…/auth before Keycloak 17); env KEYCLOAK_URL",
    )
    realm: str | None = Field(
        default=None, description="the realm that issues the token; env KEYCLOAK_AUTH_REALM or KEYCLOAK_REALM"
    )
    token_url: str | None = Field(
        default=None, description="the token endpoint (default: built from the realm)"
    )
    client_id: str | None = Field(default=None, description="the OAuth2 client; env KEYCLOAK_CLIENT_ID")
    client_secret: SecretStr | None = Field(default=None, description="env KEYCLOAK_CLIENT_SECRET")
    grant_type: GrantType | None = Field(
        default=None,
        description="default: password when a username is given, refresh_token when only a refresh "
        "token is, else client_credentials",
    )
    username: str | None = Field(default=None, description="password grant; env KEYCLOAK_USERNAME")
    password: SecretStr | None = Field(default=None, description="password grant; env KEYCLOAK_PASSWORD")
    refresh_token: SecretStr | None = Field(
        default=None, description="a refresh (e.g. offline) token to start from (grant_type refresh_token)"
    )
    scopes: list[str] = Field(
        default_factory=list, description="scopes to request ('openid', 'offline_access', …)"
    )
    auth_method: Literal["body", "basic"] = Field(
        default="body", description="client credentials in the form body (client_secret_post) or HTTP Basic"
    )
    refresh_margin: float = Field(
        default=60.0,
        ge=0,
        description="renew this many seconds before expiry (at most half the token lifetime)",
    )
    revoke_on_close: bool = Field(
        default=True,
        description="revoke the refresh token of a password-grant session when the provider is closed",
    )
    extra_params: dict[str, str] = Field(default_factory=dict, description="more token-request fields")
    timeout: float = Field(default=30.0, gt=0)
    verify: bool | str = Field(default=True, description="verify TLS (or a CA bundle path)")

    @model_validator(mode="before")
    @classmethod
    def _from_env(cls, data: Any) -> Any:
        data = env_defaults(data, ENV)
        if isinstance(data, dict) and data.get("realm") is None and data.get("token_url") is None:
            realm = os.environ.get("KEYCLOAK_AUTH_REALM") or os.environ.get("KEYCLOAK_REALM")
            if realm:
                data["realm"] = realm
        return data

    @field_validator("scopes", mode="before")
    @classmethod
    def _split_scopes(cls, v: Any) -> Any:
        return v.split() if isinstance(v, str) else v

    @field_validator("server_url", "token_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.lower().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class _Token:
    """An access token and the monotonic time after which it is not used any more."""

    __slots__ = ("deadline", "value")

    def __init__(self, value: str, deadline: float | None) -> None:
        self.value = value
        self.deadline = deadline

    def fresh(self) -> bool:
        return self.deadline is None or time.monotonic() < self.deadline


class KeycloakAuth(AuthProvider):
    """OAuth 2.0 tokens from a Keycloak realm (client credentials, password, refresh token).

    ``fetch_count`` counts the token requests that succeeded, ``grants`` counts them per grant type.
    """

    name = "keycloak"
    Options = KeycloakAuthOptions

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        opts: KeycloakAuthOptions = self.options
        plugin = f"auth provider {self.name!r}"

        def missing(field: str, hint: str) -> ConfigError:
            return ConfigError(
                f"{plugin}: option {field!r}: required option is missing ({hint})", plugin=plugin, field=field
            )

        if opts.token_url is None:
            if not opts.server_url:
                raise missing("server_url", "or set KEYCLOAK_URL, or give token_url")
            if not opts.realm:
                raise missing("realm", "or set KEYCLOAK_REALM")
        if not opts.client_id:
            raise missing("client_id", "or set KEYCLOAK_CLIENT_ID")
        grant = opts.grant_type
        if grant is None:
            if opts.username is not None:
                grant = "password"
            elif opts.refresh_token is not None:
                grant = "refresh_token"
            else:
                grant = "client_credentials"
        if grant == "password":
            if not opts.username:
                raise missing("username", "the password grant needs one; or set KEYCLOAK_USERNAME")
            if opts.password is None:
                raise missing("password", "the password grant needs one; or set KEYCLOAK_PASSWORD")
        elif grant == "refresh_token" and opts.refresh_token is None:
            raise missing("refresh_token", "grant_type refresh_token needs one")
        elif grant == "client_credentials" and opts.client_secret is None:
            raise missing(
                "client_secret",
                "client credentials need a confidential client; or set KEYCLOAK_CLIENT_SECRET",
            )
        #: The grant used when there is no usable refresh token.
        self.grant_type: str = grant
        #: The token endpoint.
        self.token_url: str = opts.token_url or token_url(str(opts.server_url), str(opts.realm))
        #: The OAuth2 client.
        self.client_id: str = opts.client_id
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self._refresh: str | None = opts.refresh_token.get_secret_value() if opts.refresh_token else None
        self._refresh_deadline: float | None = None
        self._http: Any = None
        self._alock: tuple[Any, Any] | None = None
        self._basic: str | None = None
        #: Token requests that succeeded, in total and per grant type.
        self.fetch_count = 0
        self.grants: dict[str, int] = {}

    # -- the token ----------------------------------------------------------------------------------
    def token(self) -> str:
        """A valid access token: the cached one, or a new one (one request for all threads)."""
        tok = self._token
        if tok is not None and tok.fresh():
            return tok.value
        with self._lock:
            tok = self._token
            if tok is None or not tok.fresh():
                tok = self._obtain()
            return tok.value

    def invalidate(self, token: str | None = None) -> None:
        """Stop using the access token ``token`` (the current one when ``None``); the refresh
        token is kept. A token that was already replaced is left alone, so many requests refused
        with the same old token cause one renewal, not one each."""
        with self._lock:
            if self._token is not None and (token is None or self._token.value == token):
                self._token = None

    def refresh(self) -> bool:
        self.invalidate()
        return True

    def apply(self, request: Any) -> None:
        request.headers["Authorization"] = f"Bearer {self.token()}"

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        """Send with the current token; on a ``401`` drop that token (if still current) and retry
        once with a new one."""
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if getattr(response, "status_code", None) == 401:
            self.invalidate(token)
            request.headers["Authorization"] = f"Bearer {self.token()}"
            yield request

    # -- async (AsyncApiClient): one token request, in a worker thread, however many tasks wait ------
    def _async_lock(self) -> Any:
        """The lock of async token requests in the running event loop (one per loop)."""
        import anyio
        import anyio.lowlevel

        loop = anyio.lowlevel.current_token()
        if self._alock is None or self._alock[0] != loop:
            self._alock = (loop, anyio.Lock())
        return self._alock[1]

    async def atoken(self) -> str:
        """:meth:`token` for async clients: a valid token at once; else the first task fetches one
        in a worker thread (the loop goes on) while the others wait for that one request."""
        tok = self._token
        if tok is not None and tok.fresh():
            return tok.value
        async with self._async_lock():
            tok = self._token
            if tok is not None and tok.fresh():
                return tok.value
            import anyio.to_thread

            return await anyio.to_thread.run_sync(self.token)

    async def aapply(self, request: Any) -> None:
        request.headers["Authorization"] = f"Bearer {await self.atoken()}"

    async def arefresh(self, request: Any) -> bool:
        """After a ``401``: drop the token ``request`` carried, unless another task already
        replaced it (many ``401`` answers to one token cause one renewal)."""
        sent = request.headers.get("Authorization") or ""
        self.invalidate(sent[7:] if sent.startswith("Bearer ") else None)
        return True

    # -- token requests (called with the lock held) --------------------------------------------------
    def _where(self) -> str:
        return f"auth provider {self.name!r}: token request to {redact_url(self.token_url)}"

    def _obtain(self) -> _Token:
        refresh = self._refresh
        if refresh is not None and (
            self._refresh_deadline is None or time.monotonic() < self._refresh_deadline
        ):
            try:
                return self._grant({"grant_type": "refresh_token", "refresh_token": refresh})
            except _Refused as exc:
                if exc.error != "invalid_grant" or self.grant_type == "refresh_token":
                    raise AuthError(exc.message) from None
                self._refresh = None  # expired, revoked or already used: start a new session
        elif self.grant_type == "refresh_token":
            raise AuthError(f"{self._where()}: the refresh token has expired; a new one is needed")
        form: dict[str, str] = {"grant_type": self.grant_type}
        if self.grant_type == "password":
            form["username"] = self.options.username
            form["password"] = self.options.password.get_secret_value()
        try:
            return self._grant(form)
        except _Refused as exc:
            raise AuthError(exc.message) from None

    def _grant(self, form: dict[str, str]) -> _Token:
        opts: KeycloakAuthOptions = self.options
        form = {**opts.extra_params, **form}
        if opts.scopes and form["grant_type"] != "refresh_token":
            form["scope"] = " ".join(opts.scopes)
        headers = {"accept": "application/json"}
        self._client_auth(form, headers)
        started = time.monotonic()
        body = self._post(self.token_url, form, headers, what=form["grant_type"])
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise AuthError(f"{self._where()}: the answer has no 'access_token'")
        register_secret(access)
        for key in ("refresh_token", "id_token"):
            if isinstance(body.get(key), str):
                register_secret(body[key])
        if isinstance(body.get("refresh_token"), str) and body["refresh_token"]:
            # rotation: the new refresh token replaces the old one, which is never sent again
            self._refresh = body["refresh_token"]
            self._refresh_deadline = _deadline(started, body.get("refresh_expires_in"), margin=5.0)
        deadline = _deadline(started, body.get("expires_in"), margin=opts.refresh_margin)
        self._token = _Token(access, deadline)
        self.fetch_count += 1
        self.grants[form["grant_type"]] = self.grants.get(form["grant_type"], 0) + 1
        return self._token

    def _client_auth(self, form: dict[str, str], headers: dict[str, str]) -> None:
        opts: KeycloakAuthOptions = self.options
        secret = opts.client_secret.get_secret_value() if opts.client_secret is not None else None
        if opts.auth_method == "basic" and secret is not None:
            if self._basic is None:
                # RFC 6749 section 2.3.1: the id and the secret are form-encoded before base64
                raw = f"{quote(self.client_id, safe='')}:{quote(secret, safe='')}".encode()
                self._basic = base64.b64encode(raw).decode("ascii")
                register_secret(self._basic)
            headers["authorization"] = f"Basic {self._basic}"
        else:
            form["client_id"] = self.client_id
            if secret is not None:
                form["client_secret"] = secret

    def _post(self, url: str, form: dict[str, str], headers: dict[str, str], *, what: str) -> dict[str, Any]:
        """POST a form to ``url`` through the core's ``http`` adapter; the decoded JSON object.

        :raises _Refused: the server refused (4xx with an OAuth ``error``).
        :raises AuthError: anything else (transport, 5xx, not JSON).
        """
        if self._http is None:
            from dc_api_x import create_adapter

            opts: KeycloakAuthOptions = self.options
            self._http = create_adapter(
                {"adapter": "http", "timeout": opts.timeout, "verify": opts.verify, "prefetch": False}
            )
        try:
            resp = self._http.request("POST", url, data=form, headers=headers, auth=None)
        except DcApiXError as exc:
            raise AuthError(f"{self._where()} ({what}) failed: {redact(exc)}") from None
        try:
            body = resp.data
        except DcApiXError:
            body = None
        if resp.status_code >= 400 or not isinstance(body, dict):
            error = str(body.get("error") or "") if isinstance(body, dict) else ""
            detail = ""
            if isinstance(body, dict):
                detail = " ".join(str(body[k]) for k in ("error", "error_description") if body.get(k))
            elif body is None:
                detail = f"non-JSON answer ({resp.headers.get('content-type', '?')})"
            message = redact(f"{self._where()} ({what}) failed: HTTP {resp.status_code} {detail}".rstrip())
            if 400 <= resp.status_code < 500 and error:
                raise _Refused(message, error)
            raise AuthError(message)
        return body

    # -- lifecycle ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Revoke the refresh token of a password-grant session (``revoke_on_close``) and release
        the HTTP client. Safe to call twice."""
        with self._lock:
            refresh, self._refresh = self._refresh, None
            self._token = None
            if refresh is not None and self.grant_type == "password" and self.options.revoke_on_close:
                self._revoke(refresh)
            if self._http is not None:
                self._http.close()
                self._http = None

    def _revoke(self, refresh: str) -> None:
        """RFC 7009 revocation of ``refresh`` (Keycloak ends the session); failures are ignored:
        the session then ends at its idle timeout."""
        url = self.token_url.rsplit("/token", 1)[0] + "/revoke"
        form = {"token": refresh, "token_type_hint": "refresh_token"}
        headers = {"accept": "application/json"}
        self._client_auth(form, headers)
        try:
            self._post(url, form, headers, what="revoke")
        except (AuthError, _Refused):
            pass


class _Refused(Exception):
    """The token endpoint refused a grant with an OAuth error (``invalid_grant`` …)."""

    def __init__(self, message: str, error: str) -> None:
        super().__init__(message)
        self.message = message
        self.error = error


def _deadline(started: float, expires_in: Any, *, margin: float) -> float | None:
    """The monotonic time from which a token of ``expires_in`` seconds, requested at ``started``,
    is no longer used: ``expires_in - min(margin, expires_in / 2)`` after ``started``. ``None``
    when the lifetime is unknown or ``0`` (Keycloak's "no expiry" for offline tokens)."""
    try:
        lifetime = float(expires_in)
    except (TypeError, ValueError):
        return None
    if lifetime <= 0:
        return None
    return started + lifetime - min(margin, lifetime / 2)
