"""Built-in plugin: the auth providers ``bearer``, ``api_key``, ``basic`` and
``oauth2_client_credentials``.

Config examples::

    {"type": "bearer", "token": "…"}
    {"type": "api_key", "key": "…", "name": "X-API-Key", "location": "header"}
    {"type": "api_key", "key": "…", "name": "api_key", "location": "query"}
    {"type": "basic", "username": "me", "password": "…"}
    {"type": "oauth2_client_credentials", "token_url": "https://id.example.com/oauth/token",
     "client_id": "…", "client_secret": "…", "scopes": ["read"], "refresh_margin": 60}

Secrets are ``SecretStr`` options, registered with :func:`dc_api_x.logs.register_secret` and never
shown by ``repr``. This module imports httpx only when an OAuth2 token is first fetched.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator

from .exceptions import AuthError
from .ext.auth import AuthOptions, AuthProvider
from .logs import redact, redact_url, register_secret

log = logging.getLogger("dc_api_x.auth")

if TYPE_CHECKING:  # pragma: no cover
    from .plugins import Registry

__all__ = [
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "OAuth2ClientCredentials",
    "register_auth_providers",
]


class BearerOptions(AuthOptions):
    token: SecretStr
    header: str = Field(default="Authorization", min_length=1)
    scheme: str = Field(default="Bearer", description="prefix of the header value ('' for none)")


class BearerAuth(AuthProvider):
    """``Authorization: Bearer <token>``."""

    name = "bearer"
    Options = BearerOptions

    def apply(self, request: Any) -> None:
        token = self.options.token.get_secret_value()
        scheme = self.options.scheme
        request.headers[self.options.header] = f"{scheme} {token}" if scheme else token


class ApiKeyOptions(AuthOptions):
    key: SecretStr
    name: str = Field(default="X-API-Key", min_length=1, description="header or query parameter name")
    location: Literal["header", "query"] = "header"


class ApiKeyAuth(AuthProvider):
    """An API key in a header (``location: header``) or a query parameter (``location: query``)."""

    name = "api_key"
    Options = ApiKeyOptions

    def apply(self, request: Any) -> None:
        key = self.options.key.get_secret_value()
        if self.options.location == "header":
            request.headers[self.options.name] = key
        else:
            request.url = request.url.copy_merge_params({self.options.name: key})


class BasicOptions(AuthOptions):
    username: str
    password: SecretStr


class BasicAuth(AuthProvider):
    """HTTP Basic authentication (RFC 7617)."""

    name = "basic"
    Options = BasicOptions

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        raw = f"{self.options.username}:{self.options.password.get_secret_value()}".encode()
        self._header = "Basic " + base64.b64encode(raw).decode("ascii")
        register_secret(self._header[6:])

    def apply(self, request: Any) -> None:
        request.headers["Authorization"] = self._header


class OAuth2Options(AuthOptions):
    token_url: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scopes: list[str] = Field(default_factory=list)
    audience: str | None = None
    extra_params: dict[str, str] = Field(default_factory=dict, description="more token-request fields")
    auth_method: Literal["body", "basic"] = Field(
        default="body", description="send the client credentials in the form body or as HTTP Basic"
    )
    refresh_margin: float = Field(
        default=60.0,
        ge=0,
        description="refresh this many seconds before expiry (at most half the token's lifetime)",
    )
    timeout: float = Field(default=30.0, gt=0)
    verify: bool | str = True

    @field_validator("scopes", mode="before")
    @classmethod
    def _split_scopes(cls, v: Any) -> Any:
        if isinstance(v, str):
            return v.split()
        return v


class OAuth2ClientCredentials(AuthProvider):
    """OAuth 2.0 client-credentials grant (RFC 6749 §4.4).

    The token is fetched on first use and reused while it is valid. It is refreshed ahead of its
    expiry (``expires_in``) by ``refresh_margin`` seconds, but never by more than half its lifetime:
    a 3-second token is refreshed after 1.5 s, not before every request (a margin at or above the
    lifetime would make every request fetch a token). A token without ``expires_in`` is kept until
    the API answers ``401``; then it is refreshed once and the request retried.

    Concurrent requests share one refresh: threads wait on one lock while the first fetches, and a
    ``401`` only drops the token the failed request carried (requests that fail together with the
    same stale token cause one fetch, not one each). The tasks of an :class:`~dc_api_x.AsyncApiClient`
    are served the same way (:meth:`atoken`: one fetch, in a worker thread, while the others wait).
    """

    name = "oauth2_client_credentials"
    Options = OAuth2Options

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: float | None = None
        #: monotonic time after which the token is refreshed before use (None: never by time)
        self._refresh_at: float | None = None
        self._client: Any = None
        self._alock: tuple[Any, Any] | None = None
        #: How many tokens were fetched (for monitoring and tests).
        self.fetch_count = 0

    # -- token handling ---------------------------------------------------------------------------
    def _valid(self) -> bool:
        if self._token is None:
            return False
        return self._refresh_at is None or time.monotonic() < self._refresh_at

    def margin_for(self, lifetime: float) -> float:
        """The refresh margin used for a token valid ``lifetime`` seconds: ``refresh_margin``,
        capped at half the lifetime."""
        return min(float(self.options.refresh_margin), max(lifetime, 0.0) / 2)

    def token(self) -> str:
        """A valid access token: the cached one while it is valid, else a new one (one fetch
        shared by every thread asking meanwhile)."""
        token = self._token
        if token is not None and self._valid():
            return token
        with self._lock:
            if not self._valid():
                self._fetch()
            assert self._token is not None
            return self._token

    def refresh(self, stale: str | None = None) -> bool:
        """Drop the cached token (after a ``401``). With ``stale``, only when the cached token is
        still that one: a request that failed with a token another thread already replaced does
        not cause another fetch."""
        with self._lock:
            if stale is None or self._token == stale:
                self._token = None
                self._expires_at = None
                self._refresh_at = None
        return True

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        """Apply the token; on a ``401`` refresh it (shared with concurrent requests) and retry
        once."""
        used = self.token()
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if getattr(response, "status_code", None) == 401 and self.refresh(used):
            request.headers["Authorization"] = f"Bearer {self.token()}"
            yield request

    def _where(self) -> str:
        return f"auth provider {self.name!r}: token request to {redact_url(self.options.token_url)}"

    def _fetch(self) -> None:
        import httpx
        import orjson

        opts = self.options
        if self._client is None:
            if opts.verify is False:
                log.warning(
                    "%s: TLS certificate verification is OFF (verify: false)",
                    f"auth provider {self.name!r}: {redact_url(opts.token_url)}",
                )
            self._client = httpx.Client(timeout=opts.timeout, verify=opts.verify)
        form: dict[str, str] = {"grant_type": "client_credentials", **opts.extra_params}
        if opts.scopes:
            form["scope"] = " ".join(opts.scopes)
        if opts.audience:
            form["audience"] = opts.audience
        auth = None
        if opts.auth_method == "basic":
            auth = httpx.BasicAuth(opts.client_id, opts.client_secret.get_secret_value())
        else:
            form["client_id"] = opts.client_id
            form["client_secret"] = opts.client_secret.get_secret_value()
        started = time.monotonic()
        try:
            resp = self._client.post(
                opts.token_url, data=form, auth=auth, headers={"accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise AuthError(f"{self._where()} failed: {type(exc).__name__}: {redact(exc)}") from None
        try:
            body = orjson.loads(resp.content) if resp.content.strip() else {}
        except orjson.JSONDecodeError:
            body = None
        if resp.status_code >= 400 or not isinstance(body, dict):
            detail = ""
            if isinstance(body, dict):
                detail = " ".join(str(body[k]) for k in ("error", "error_description") if body.get(k))
            elif body is None:
                detail = f"non-JSON answer ({resp.headers.get('content-type', '?')})"
            raise AuthError(redact(f"{self._where()} failed: HTTP {resp.status_code} {detail}".rstrip()))
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self._where()}: the answer has no 'access_token'")
        register_secret(token)
        expires_in = body.get("expires_in")
        try:
            lifetime = (
                float(expires_in) if expires_in is not None and not isinstance(expires_in, bool) else None
            )
        except (TypeError, ValueError):
            lifetime = None
        if lifetime is not None and lifetime == lifetime and lifetime != float("inf"):  # not NaN / inf
            self._expires_at = started + lifetime
            self._refresh_at = self._expires_at - self.margin_for(lifetime)
        else:
            self._expires_at = self._refresh_at = None
        self._token = token
        self.fetch_count += 1

    def apply(self, request: Any) -> None:
        request.headers["Authorization"] = f"Bearer {self.token()}"

    # -- async (AsyncApiClient): one token request however many tasks need it ---------------------
    def _async_lock(self) -> Any:
        """The lock of async fetches in the running event loop (one per loop: a lock is bound to
        the loop that first waits on it)."""
        import anyio
        import anyio.lowlevel

        loop = anyio.lowlevel.current_token()
        if self._alock is None or self._alock[0] != loop:
            self._alock = (loop, anyio.Lock())
        return self._alock[1]

    async def atoken(self) -> str:
        """:meth:`token` for async clients: the first task that needs a token fetches it in a
        worker thread (the event loop is not blocked) while the others wait for that one fetch."""
        token = self._token
        if token is not None and self._valid():
            return token
        async with self._async_lock():
            if not self._valid():
                import anyio.to_thread

                return await anyio.to_thread.run_sync(self.token)
            assert self._token is not None
            return self._token

    async def aapply(self, request: Any) -> None:
        request.headers["Authorization"] = f"Bearer {await self.atoken()}"

    async def arefresh(self, request: Any) -> bool:
        """Drop the token ``request`` carried, unless another task already replaced it (many
        ``401`` answers to one token cause one refresh)."""
        sent = request.headers.get("Authorization") or ""
        return self.refresh(sent[7:] if sent.startswith("Bearer ") else None)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def register_auth_providers(registry: Registry) -> None:
    """Register the built-in auth providers."""
    for cls in (BearerAuth, ApiKeyAuth, BasicAuth, OAuth2ClientCredentials):
        registry.register(cls.name, cls)
