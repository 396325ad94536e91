"""The core of the ``ldap`` adapter: the backend (ldap3, python-ldap or ldaptor, loaded by name on
construction), the server's root DSE and subschema, and LDAP failures as the toolkit's one-line
errors. The adapter's concepts build on it: :mod:`.streams` (schema mapping: streams and their JSON
Schema), :mod:`.source` (paged, incremental reads), :mod:`.sink` (writes), :mod:`.operations`
(the request side of ``ApiClient``) and :mod:`.ldif_io` (LDIF export/import);
:class:`dc_api_x_ldap.adapter.LdapAdapter` puts them together.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from dc_api_x.exceptions import ConfigError, SchemaError, TransportError
from dc_api_x.ext.adapters import ProtocolAdapter

from .backends import AUTH_METHODS, Backend, LdapError, first, load_backend, missing_library, values
from .config import LdapOptions
from .schema import SubSchema

__all__ = ["CONNECT_ERRORS", "DATA_ERRORS", "LdapBase"]

log = logging.getLogger("dc_api_x_ldap")

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
        missing = missing_library(o.backend)
        if missing is not None:
            raise ConfigError(
                f"adapter 'ldap': option 'backend': {missing}", plugin="adapter 'ldap'", field="backend"
            )
        if o.auth not in AUTH_METHODS[o.backend]:
            raise ConfigError(
                f"adapter 'ldap': option 'auth': backend {o.backend!r} does not support {o.auth!r}; "
                f"it supports: {', '.join(sorted(AUTH_METHODS[o.backend]))}",
                plugin="adapter 'ldap'",
                field="auth",
            )
        self._backend: Backend | None = None
        self._native: Any = None
        self._native_why: str | None = None
        self._dse: dict[str, list[bytes]] | None = None
        self._schema: SubSchema | None = None
        #: discovery and the first stream's search begun ahead (:mod:`.ahead`), taken over here
        self._specs_ahead: list[Any] | None = None
        self._ahead_read: tuple[Any, Any, Any] | None = None
        from . import ahead

        got = ahead.take(o) if not ahead.building() else None
        if got is not None:
            src = got.adapter
            self._native, self._native_why, src._native = src._native, src._native_why, None
            self._dse, self._schema = src._dse, src._schema
            self._specs_ahead, self._ahead_read, got.read = got.specs, got.read, None
            src.close()

    @classmethod
    def open_ahead(cls, config: Mapping[str, Any], role: str = "source") -> Any:
        """Begin, in a thread, the connection, discovery and first stream's read a *source* adapter
        with the raw options ``config`` will do (``dcapix run`` calls this while it still imports;
        :mod:`.ahead`). Returns the function closing what no adapter took, or ``None`` (also for a
        destination, ``role``: it reads nothing)."""
        if role != "source":
            return None
        from . import ahead

        return ahead.start(cls, config)

    def _claim_ahead(self, key: Any) -> tuple[Any, Any] | None:
        """``(pages, server time)`` of the search begun ahead when its key is ``key``; any other
        search begun ahead is cancelled (its connection closed: the reader connects again)."""
        got, self._ahead_read = self._ahead_read, None
        if got is None:
            return None
        k, pages, now = got
        if key is not None and k == key:
            return pages, now
        from .ahead import cancel

        cancel(self._native, pages)
        return None

    @property
    def backend(self) -> Backend:
        """The client library's backend, loaded (and its library imported) on first use: a read
        through the native reader never needs it."""
        if self._backend is None:
            try:
                cls = load_backend(self.options.backend)
            except ImportError as exc:
                raise ConfigError(
                    f"adapter 'ldap': option 'backend': {exc}", plugin="adapter 'ldap'", field="backend"
                ) from None
            self._backend = cls(self.options)
        return self._backend

    def native(self) -> Any:
        """The native reader (:mod:`dc_api_x_ldap.native`: its own connection, entries decoded by
        the C extension) when ``reader:`` allows it and it can serve the connection, else
        ``None`` (``auto``: the reason is logged once; ``native``: raises with the reason)."""
        mode = self.options.reader
        if mode == "backend":
            return None
        if self._ahead_read is not None:  # the connection is wanted for something else
            self._claim_ahead(None)
        if self._native is None and self._native_why is None:
            from .native import NativeReader, status, supports

            ok, reason = status()
            why = supports(self.options) if ok else reason
            if why is None:
                self._native = NativeReader(self.options)
            else:
                self._native_why = why
                log.debug(
                    "ldap: reading through the %s backend (native reader: %s)", self.options.backend, why
                )
        if self._native is None and mode == "native":
            raise self.error(
                f"option 'reader': the native reader cannot be used: {self._native_why}", field="reader"
            )
        return self._native

    @property
    def reader(self) -> Any:
        """What reads the root DSE, the subschema and the server's time: the native reader when
        there is one, else the backend (both offer ``search``, ``root_dse`` and ``subschema``)."""
        native = self.native()
        return native if native is not None else self.backend

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
            self._dse = self._call(self.reader.root_dse)
        return self._dse

    def subschema(self) -> SubSchema:
        """The server's subschema, parsed by the backend's library."""
        if self._schema is None:
            dn = first(self.root_dse(), "subschemaSubentry") or "cn=Subschema"
            self._schema = self._call(self.reader.subschema, dn)
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
            if self._backend is not None:
                self._backend.close()
            if self._ahead_read is not None:
                self._claim_ahead(None)
            if self._native is not None:
                self._native.close()
        super().close()

    def __repr__(self) -> str:
        return f"<LdapAdapter backend={self.options.backend!r} url={self.where!r}>"
