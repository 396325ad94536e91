"""The ``ldap`` adapter's options (pydantic), with defaults from ``DCAPIX_LDAP_*`` variables.

Explicit options win over the environment; the environment wins over the built-in defaults.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from dc_api_x.config import OptionsModel
from dc_api_x.ext.adapters import AdapterOptions

__all__ = ["BACKENDS", "ENV", "ControlOptions", "LdapOptions", "StreamOptions"]

#: The client libraries the adapter can use (``backend:``), each an extra of dc-api-x-ldap.
BACKENDS = ("ldap3", "python-ldap", "ldaptor")

#: option → environment variable giving its default.
ENV = {
    "url": "DCAPIX_LDAP_URL",
    "backend": "DCAPIX_LDAP_BACKEND",
    "bind_dn": "DCAPIX_LDAP_BIND_DN",
    "password": "DCAPIX_LDAP_PASSWORD",
    "auth": "DCAPIX_LDAP_AUTH",
    "page_size": "DCAPIX_LDAP_PAGE_SIZE",
    "timeout": "DCAPIX_LDAP_TIMEOUT",
    "ca_file": "DCAPIX_LDAP_CA_FILE",
}

Scope = Literal["base", "one", "sub"]


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(ENV[name], default)


class ControlOptions(OptionsModel):
    """A server control sent with every search: ``{oid, critical, value}`` (value base64)."""

    oid: str = Field(..., pattern=r"^\d+(\.\d+)+$", description="the control's OID")
    critical: bool = Field(False, description="fail the operation when the server lacks it")
    value: str | None = Field(None, description="the BER-encoded control value, base64")

    def as_tuple(self) -> tuple[str, bool, bytes | None]:
        import base64

        return self.oid, self.critical, None if self.value is None else base64.b64decode(self.value)


class StreamOptions(OptionsModel):
    """One stream: the entries below ``base`` matching ``filter``, read with paging."""

    name: str = Field(..., min_length=1, description="the stream name")
    base: str = Field(..., description="the search base DN")
    filter: str = Field("(objectClass=*)", description="an RFC 4515 search filter")
    scope: Scope = Field("sub", description="base, one (children) or sub (whole subtree)")
    attributes: list[str] | None = Field(
        None, description="the attributes to read (default: all of the object classes found)"
    )
    object_classes: list[str] | None = Field(
        None, description="object classes whose attributes make the schema (default: scanned)"
    )
    replication_key: Literal["modifyTimestamp", "entryCSN"] | None = Field(
        "modifyTimestamp", description="incremental reads by this operational attribute (null: full)"
    )
    page_size: int | None = Field(None, gt=0, le=2**31 - 1, description="entries per page (RFC 2696)")

    @field_validator("filter")
    @classmethod
    def _parenthesized(cls, v: str) -> str:
        v = v.strip()
        if not v.startswith("("):
            v = f"({v})"
        if v.count("(") != v.count(")"):
            raise ValueError(f"unbalanced parentheses in filter {v!r}")
        return v


class LdapOptions(AdapterOptions):
    """Options of the ``ldap`` adapter (source and sink)."""

    url: str = Field(
        default_factory=lambda: _env("url", "ldap://127.0.0.1:389"),
        description="ldap://host:port, ldaps://host:port or ldapi://%2Fpath%2Fto%2Fsocket",
    )
    urls: list[str] = Field(
        default_factory=list,
        description="more servers tried after url (ldap3: a ServerPool; python-ldap: a URI list)",
    )
    pool_strategy: Literal["first", "round_robin", "random"] = Field(
        "first", description="how ldap3 picks a server of url + urls"
    )
    pool_size: int = Field(
        1, ge=1, le=64, description="ldap3: connections kept open for writes (REUSABLE strategy)"
    )
    backend: Literal["ldap3", "python-ldap", "ldaptor"] = Field(
        default_factory=lambda: _env("backend", "ldap3"), description="the client library"
    )
    reader: Literal["auto", "native", "backend"] = Field(
        "auto",
        description="how streams are read: native (the plugin's C decoder over its own socket, "
        "ldap:// or ldapi://), backend (the client library), auto (native when built and possible)",
    )
    auth: Literal["anonymous", "simple", "sasl_external", "ntlm"] | None = Field(
        default_factory=lambda: _env("auth"),
        description="default: simple with bind_dn, SASL EXTERNAL over ldapi://, else anonymous",
    )
    bind_dn: str | None = Field(default_factory=lambda: _env("bind_dn"), description="the bind DN")
    password: SecretStr | None = Field(
        default_factory=lambda: SecretStr(p) if (p := _env("password")) is not None else None,
        description="the bind password",
    )
    start_tls: bool = Field(False, description="StartTLS on an ldap:// connection")
    ca_file: str | None = Field(default_factory=lambda: _env("ca_file"), description="CA bundle for TLS")
    verify_tls: bool = Field(True, description="verify the server certificate")
    timeout: float = Field(
        default_factory=lambda: float(_env("timeout", 30)), gt=0, description="seconds per operation"
    )
    page_size: int = Field(
        default_factory=lambda: int(_env("page_size", 1000)),
        gt=0,
        le=2**31 - 1,
        description="entries per page of the simple paged results control (RFC 2696)",
    )
    streams: list[StreamOptions] = Field(
        default_factory=list, description="search streams (default: one per naming context)"
    )
    controls: list[ControlOptions] = Field(
        default_factory=list, description="server controls sent with every search"
    )
    clock_skew: float = Field(
        1.0,
        ge=0,
        description="seconds the server clock may be behind this one (used only when the server "
        "publishes no time: entries changed within it are read again by the next run)",
    )
    # -- sink ------------------------------------------------------------------------------------
    dn_template: str | None = Field(
        None, description="DN of records without 'dn', e.g. 'uid={uid},ou=people,dc=example,dc=com'"
    )
    object_classes: list[str] | None = Field(
        None, description="objectClass values of added entries whose record has none"
    )
    write_window: int = Field(
        256, ge=1, description="operations in flight at once while writing (pipelined backends)"
    )

    @model_validator(mode="after")
    def _auth_default(self) -> LdapOptions:
        if self.auth is None:
            if self.bind_dn:
                self.auth = "simple"
            elif self.url.lower().startswith("ldapi:"):
                self.auth = "sasl_external"
            else:
                self.auth = "anonymous"
        if self.auth in ("simple", "ntlm") and not self.bind_dn:
            raise ValueError(f"auth {self.auth!r} needs bind_dn (and password)")
        scheme = self.url.split(":", 1)[0].lower()
        if scheme not in ("ldap", "ldaps", "ldapi"):
            raise ValueError(f"url must start with ldap://, ldaps:// or ldapi://, got {scheme!r}")
        names = [s.name for s in self.streams]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"stream names must be unique: {', '.join(sorted(dup))}")
        return self

    def secret(self) -> str:
        return self.password.get_secret_value() if self.password is not None else ""

    def all_urls(self) -> list[str]:
        return [self.url, *self.urls]
