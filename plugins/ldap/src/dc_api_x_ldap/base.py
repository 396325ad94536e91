"""The core of the ``ldap`` adapter: the backend (ldap3, python-ldap or ldaptor, loaded by name on
construction), the server's root DSE and subschema, and LDAP failures as the toolkit's one-line
errors. The adapter's concepts build on it: :mod:`.streams` (schema mapping: streams and their JSON
Schema), :mod:`.source` (paged, incremental reads), :mod:`.sink` (writes), :mod:`.operations`
(the request side of ``ApiClient``) and :mod:`.ldif_io` (LDIF export/import);
:class:`dc_api_x_ldap.adapter.LdapAdapter` puts them together.
"""

from __future__ import annotations

from typing import Any

from dc_api_x.exceptions import ConfigError, SchemaError, TransportError
from dc_api_x.ext.adapters import ProtocolAdapter

from .backends import Backend, LdapError, first, load_backend, values
from .config import LdapOptions
from .schema import SubSchema

__all__ = ["CONNECT_ERRORS", "DATA_ERRORS", "LdapBase"]

#: result codes that mean "the data does not fit" (a SchemaError rather than an AdapterError)
DATA_ERRORS = frozenset({16, 17, 19, 20, 21, 34, 64, 65, 67, 69})
#: result codes that mean "the connection failed"
CONNECT_ERRORS = frozenset({-1, 81, 85, 91})


class LdapBase(ProtocolAdapter):
    """The connection, root DSE, subschema and error mapping every part of the adapter uses."""

    name = "ldap"
    Options = LdapOptions
    load_methods = ("append", "upsert")
    secret_options = ("password",)

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        o: LdapOptions = self.options
        try:
            cls = load_backend(o.backend)
        except ImportError as exc:
            raise ConfigError(
                f"adapter 'ldap': option 'backend': {exc}", plugin="adapter 'ldap'", field="backend"
            ) from None
        if o.auth not in cls.auth_methods:
            raise ConfigError(
                f"adapter 'ldap': option 'auth': backend {o.backend!r} does not support {o.auth!r}; "
                f"it supports: {', '.join(sorted(cls.auth_methods))}",
                plugin="adapter 'ldap'",
                field="auth",
            )
        self.backend: Backend = cls(o)
        self._dse: dict[str, list[bytes]] | None = None
        self._schema: SubSchema | None = None

    # -- connection, root DSE, schema -----------------------------------------------------------
    @property
    def where(self) -> str:
        return self.options.url

    def _fail(self, exc: LdapError, *, stream: str | None = None, field: str | None = None) -> Exception:
        """An LDAP failure as the toolkit's one-line error naming the adapter, server and stream."""
        msg = f"{exc.describe()} ({self.options.backend} at {self.where})"
        if exc.code in CONNECT_ERRORS:
            where = f"adapter 'ldap'{f', stream {stream!r}' if stream else ''}"
            return TransportError(f"{where}: {msg}", url=self.where)
        if exc.code in DATA_ERRORS:
            err = self.error(msg, stream=stream, field=field)
            return SchemaError(str(err), adapter=self.name, stream=stream)
        return self.error(msg, stream=stream, field=field)

    def _call(self, fn: Any, *args: Any, stream: str | None = None, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LdapError as exc:
            raise self._fail(exc, stream=stream) from None
        except NotImplementedError as exc:
            raise self._unsupported(str(exc)) from None

    def root_dse(self) -> dict[str, list[bytes]]:
        """The server's root DSE (naming contexts, subschema entry, controls …), raw."""
        if self._dse is None:
            self._dse = self._call(self.backend.root_dse)
        return self._dse

    def subschema(self) -> SubSchema:
        """The server's subschema, parsed by the backend's library."""
        if self._schema is None:
            dn = first(self.root_dse(), "subschemaSubentry") or "cn=Subschema"
            self._schema = self._call(self.backend.subschema, dn)
        return self._schema

    def naming_contexts(self) -> list[str]:
        return values(self.root_dse(), "namingContexts")

    def supported_controls(self) -> list[str]:
        return values(self.root_dse(), "supportedControl")

    def _aliases(self) -> dict[str, str]:
        """Every name and alias of the subschema's attribute types -> the canonical name."""
        schema = self.subschema()
        out = {}
        for key, at in schema.attribute_types.items():
            if not key[:1].isdigit():
                out[key] = at.name
        return out

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        if not self._closed:
            self.backend.close()
        super().close()

    def __repr__(self) -> str:
        return f"<LdapAdapter backend={self.options.backend!r} url={self.where!r}>"
