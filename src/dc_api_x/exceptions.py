"""The exception hierarchy of dc-api-x.

::

    DcApiXError
    ├── ConfigError                 bad configuration (names the plugin and the field)
    ├── PluginError                 a plugin could not be loaded or conflicts with another
    │   └── UnknownPluginError      a name that no registry holds (lists the known names)
    ├── AdapterError                an adapter failed to read or write (names adapter / stream)
    │   ├── SchemaError             data that does not fit its schema (names the field)
    │   └── NotSupportedError       the adapter does not offer this operation
    ├── TransportError              a remote call failed (names the URL, secrets redacted)
    │   ├── HTTPStatusError         a non-success HTTP status after retries
    │   └── ResponseDecodeError     the server answered something that is not what was expected
    ├── PaginationError             a paginator went wrong (e.g. a token loop)
    ├── AuthError                   credentials were refused or could not be obtained
    └── StateError                  the state store could not be read or written

Every message is one line meant for a human, naming what is wrong and where.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AdapterError",
    "AuthError",
    "ConfigError",
    "DcApiXError",
    "HTTPStatusError",
    "NotSupportedError",
    "PaginationError",
    "PluginError",
    "ResponseDecodeError",
    "SchemaError",
    "StateError",
    "TransportError",
    "UnknownPluginError",
]


class DcApiXError(Exception):
    """Root of every error raised by dc-api-x on purpose."""


class ConfigError(DcApiXError, ValueError):
    """Invalid configuration. The message names the plugin (adapter, paginator, …) and the field."""

    def __init__(self, message: str, *, plugin: str | None = None, field: str | None = None) -> None:
        self.plugin = plugin
        self.field = field
        super().__init__(message)


class PluginError(DcApiXError):
    """A plugin failed to load, to register, or clashes with another plugin."""


class UnknownPluginError(PluginError, KeyError):
    """A name that the registry does not hold. The message lists the known names (and, for a name
    an official plugin provides, the distribution to install: ``hint``)."""

    def __init__(self, kind: str, name: str, known: Iterable[str], *, hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        self.hint = hint
        msg = f"unknown {kind} {name!r}; known: {', '.join(self.known) or '(none)'}"
        super().__init__(f"{msg}; {hint}" if hint else msg)

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class AdapterError(DcApiXError):
    """An adapter failed; the message names the adapter and the stream."""

    def __init__(self, message: str, *, adapter: str | None = None, stream: str | None = None) -> None:
        self.adapter = adapter
        self.stream = stream
        super().__init__(message)


class SchemaError(AdapterError):
    """Data does not fit its schema; the message names the stream and the field."""


class NotSupportedError(AdapterError):
    """The adapter does not implement the requested operation."""


class TransportError(DcApiXError):
    """A remote call failed. ``url`` is already redacted."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        self.url = url
        super().__init__(message)


class HTTPStatusError(TransportError):
    """The server answered with an error status (after retries, when retries apply)."""

    def __init__(self, message: str, *, url: str | None = None, status_code: int = 0) -> None:
        self.status_code = status_code
        super().__init__(message, url=url)


class ResponseDecodeError(TransportError):
    """The server's answer could not be decoded as expected (e.g. not JSON)."""


class PaginationError(DcApiXError):
    """A paginator failed, e.g. a token seen before (a loop)."""


class AuthError(DcApiXError):
    """Credentials were refused or a token could not be obtained."""


class StateError(DcApiXError):
    """The state store could not be read or written."""
