"""The base class of authentication providers (plugins registered by ``register_auth_providers``).

An :class:`AuthProvider` adds credentials to an outgoing request. It follows the httpx
``auth_flow`` protocol (a generator that yields the request and receives the response), so the
HTTP adapter wraps it into an ``httpx.Auth`` with no glue, but this module imports no HTTP library:
a provider only needs :meth:`AuthProvider.apply` (edit ``request.headers`` / ``request.url``).

Secrets are pydantic ``SecretStr`` options: every ``SecretStr`` option value is passed to
:func:`dc_api_x.logs.register_secret` when the provider is built, and :func:`repr` shows no secret.

A provider that caches credentials (a token) overrides :meth:`AuthProvider.refresh`; the default
flow calls it (through :meth:`AuthProvider.refresh_refused`) on a ``401`` answer and retries the
request once with fresh credentials.
Async clients (:class:`~dc_api_x.AsyncApiClient`) go through :meth:`AuthProvider.aapply` and
:meth:`AuthProvider.arefresh`, which call the sync ones unless a provider overrides them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, SecretStr

from ..config import OptionsModel, merge_options, validate_options
from ..logs import register_secret

__all__ = ["AuthOptions", "AuthProvider"]


class AuthOptions(OptionsModel):
    """Base options of an auth provider (the ``type`` key is consumed by the registry)."""


class AuthProvider:
    """Base class of auth providers. Subclasses set :attr:`name`, :attr:`Options` and implement
    :meth:`apply` (and :meth:`refresh` when they cache credentials)."""

    #: The registry name (``auth: {type: NAME}``).
    name: ClassVar[str] = ""
    #: The pydantic model of this provider's options (secrets as ``SecretStr``).
    Options: ClassVar[type[BaseModel]] = AuthOptions
    #: httpx reads these two flags from the wrapped flow.
    requires_request_body: ClassVar[bool] = False
    requires_response_body: ClassVar[bool] = False

    options: Any

    def __init__(self, options: Mapping[str, Any] | BaseModel | None = None, /, **kwargs: Any) -> None:
        merged = merge_options(options, kwargs)
        self.options = validate_options(self.Options, merged, plugin=f"auth provider {self.name!r}")
        for value in self.secrets():
            register_secret(value)

    def secrets(self) -> list[str]:
        """The secret values this provider holds (every ``SecretStr`` option)."""
        out = []
        for fname in type(self.options).model_fields:
            value = getattr(self.options, fname, None)
            if isinstance(value, SecretStr):
                out.append(value.get_secret_value())
        return out

    def apply(self, request: Any) -> None:
        """Add the credentials to ``request`` (an ``httpx.Request`` for the HTTP adapter: edit
        ``request.headers``, or ``request.url = request.url.copy_merge_params({...})``)."""
        raise NotImplementedError(f"auth provider {self.name!r} does not implement apply()")

    def refresh(self) -> bool:
        """Drop cached credentials after the server refused them; return True to retry once."""
        return False

    def refresh_refused(self, request: Any) -> bool:
        """:meth:`refresh` after the server refused the credentials of ``request`` (what the
        default flows call on a ``401``). The default calls :meth:`refresh`; a provider shared by
        concurrent requests compares the refused credentials with its current ones, so that many
        401 answers to the same token cause one refresh."""
        return self.refresh()

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        """The httpx auth flow: apply, send, and on a 401 refresh and retry once."""
        self.apply(request)
        response = yield request
        if getattr(response, "status_code", None) == 401 and self.refresh_refused(request):
            self.apply(request)
            yield request

    # -- async (AsyncApiClient) -------------------------------------------------------------------
    async def aapply(self, request: Any) -> None:
        """:meth:`apply` for async clients. The default calls :meth:`apply`; a provider whose
        credentials need I/O (a token request) overrides it so the event loop is not blocked."""
        self.apply(request)

    async def arefresh(self, request: Any) -> bool:
        """:meth:`refresh_refused` for async clients (the default calls it)."""
        return self.refresh_refused(request)

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        """The httpx async auth flow: :meth:`auth_flow` with :meth:`aapply` / :meth:`arefresh`."""
        await self.aapply(request)
        response = yield request
        if getattr(response, "status_code", None) == 401 and await self.arefresh(request):
            await self.aapply(request)
            yield request

    def close(self) -> None:
        """Release resources (an HTTP client used for tokens). Safe to call twice."""

    def __repr__(self) -> str:
        shown = []
        for fname in type(self.options).model_fields:
            value = getattr(self.options, fname, None)
            if isinstance(value, SecretStr):
                continue
            shown.append(f"{fname}={value!r}")
        return f"<{type(self).__name__} {self.name!r} {' '.join(shown)}>".replace(" >", ">")
