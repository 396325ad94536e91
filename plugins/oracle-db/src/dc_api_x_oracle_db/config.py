"""The pydantic configuration of the ``oracle_db`` adapter: the ``sql`` adapter's options plus the
connection pool, ``OFFSET``/``FETCH`` paging and PL/SQL procedure streams.

Imported with the adapter (SQLAlchemy is already loaded then), never when the plugin registers.
"""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from dc_api_x.adapters.sql.adapter import SQLOptions, SQLStreamOptions

__all__ = [
    "DRIVER",
    "OracleOptions",
    "OracleStreamOptions",
    "default_pool_size",
    "default_url",
    "procedure_name",
]

#: The only driver this plugin runs: python-oracledb (thin mode) through SQLAlchemy.
DRIVER = "oracle+oracledb"

# an unquoted identifier, or a quoted one; up to schema.package.procedure
_PART = r'(?:[A-Za-z][A-Za-z0-9_$#]*|"[^"]+")'
_PROCEDURE = re.compile(rf"^{_PART}(?:\.{_PART}){{0,2}}$")


def default_url() -> str | None:
    """``DC_API_X_ORACLE_URL`` (``None`` when unset)."""
    return os.environ.get("DC_API_X_ORACLE_URL") or None


def default_pool_size() -> int:
    """``DC_API_X_ORACLE_POOL_SIZE``, else 5."""
    raw = os.environ.get("DC_API_X_ORACLE_POOL_SIZE", "").strip()
    if not raw:
        return 5
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"DC_API_X_ORACLE_POOL_SIZE={raw!r} is not a positive number of connections")
    return int(raw)


def procedure_name(value: str) -> str:
    """``value`` if it names a procedure (``proc``, ``pkg.proc``, ``owner.pkg.proc``, parts may be
    double-quoted); anything else (a PL/SQL fragment) raises ``ValueError``."""
    if not _PROCEDURE.match(value.strip()):
        raise ValueError(f"{value!r} is not a procedure name (name, package.name or owner.package.name)")
    return value.strip()


class OracleStreamOptions(SQLStreamOptions):
    """One configured stream: a table or view, a custom ``query``, or a PL/SQL ``procedure`` that
    returns a ``SYS_REFCURSOR`` as an OUT parameter."""

    procedure: str | None = Field(
        default=None,
        description="a PL/SQL procedure (name, package.name or owner.package.name) whose OUT "
        "SYS_REFCURSOR parameter is read as the stream",
    )
    parameters: list[Any] | dict[str, Any] = Field(
        default_factory=list,
        description="the procedure's IN parameters: a list (positional; the ref cursor is passed "
        "after them) or a mapping (by name; the ref cursor is passed as `cursor_parameter`)",
    )
    cursor_parameter: str | None = Field(
        default=None,
        description="the name of the OUT SYS_REFCURSOR parameter (needed when `parameters` is a mapping)",
    )

    @field_validator("procedure")
    @classmethod
    def _procedure(cls, v: str | None) -> str | None:
        return None if v is None else procedure_name(v)

    @model_validator(mode="after")
    def _procedure_stream(self) -> OracleStreamOptions:
        if self.procedure is None:
            if self.cursor_parameter is not None or self.parameters:
                raise ValueError("'parameters' and 'cursor_parameter' belong to a 'procedure' stream")
            return self
        if not self.name:
            raise ValueError("a 'procedure' stream needs a 'name'")
        if self.table is not None or self.query is not None:
            raise ValueError("a stream is a 'table', a 'query' or a 'procedure', not several")
        if self.replication_key is not None:
            raise ValueError(
                "a 'procedure' stream is read in full (the ref cursor's order is the procedure's): "
                "no replication_key"
            )
        if isinstance(self.parameters, dict) and not self.cursor_parameter:
            raise ValueError("named 'parameters' need 'cursor_parameter' (the OUT SYS_REFCURSOR's name)")
        return self


class OracleOptions(SQLOptions):
    """Options of the ``oracle_db`` adapter (those of ``sql`` plus the pool and paging)."""

    url: str = Field(
        default=None,  # type: ignore[assignment]  # filled from DC_API_X_ORACLE_URL, else refused
        description="SQLAlchemy URL oracle+oracledb://user:password@host:port/?service_name=NAME "
        "(oracle:// is taken as oracle+oracledb://); default: $DC_API_X_ORACLE_URL",
        json_schema_extra={"secret": True},
    )
    streams: list[OracleStreamOptions | str] | None = Field(  # type: ignore[assignment]
        default=None, description="tables (schema.table), queries and procedures to read"
    )
    pool_size: int = Field(
        default=5,
        ge=1,
        description="connections kept open in the pool (default: $DC_API_X_ORACLE_POOL_SIZE, else 5)",
    )
    max_overflow: int = Field(default=10, ge=0, description="connections opened beyond pool_size when busy")
    pool_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for a free connection")
    pool_recycle: int = Field(
        default=3600, ge=-1, description="seconds after which a pooled connection is replaced (-1: never)"
    )
    pool_pre_ping: bool = Field(
        default=True, description="check a pooled connection with a round trip before handing it out"
    )
    connect_timeout: float = Field(default=20.0, gt=0, description="TCP connect timeout in seconds")
    page_size: int | None = Field(
        default=None,
        gt=0,
        description="read in pages of this many rows (OFFSET … FETCH NEXT, one read-only "
        "transaction); default: one server-side cursor",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("url") is None:
            url = default_url()
            if url is None:
                raise ValueError("needs the 'url' option (or DC_API_X_ORACLE_URL)")
            data = {**data, "url": url}
        if data.get("pool_size") is None:
            data = {**data, "pool_size": default_pool_size()}
        return data

    @field_validator("url")
    @classmethod
    def _oracledb_url(cls, v: str) -> str:
        import sqlalchemy as sa

        try:
            u = sa.make_url(v)
        except Exception:
            raise ValueError(
                "is not a SQLAlchemy URL (oracle+oracledb://user:password@host:port/...)"
            ) from None
        if u.drivername == "oracle":
            u = u.set(drivername=DRIVER)
        if u.drivername != DRIVER:
            raise ValueError(
                f"driver {u.drivername!r} is not supported: this plugin runs python-oracledb "
                f"(thin mode), URL scheme {DRIVER}://"
            )
        return u.render_as_string(hide_password=False)

    def engine_kwargs(self) -> dict[str, Any]:
        """``create_engine`` keyword arguments: the pool options, the connect timeout, then
        ``engine_options`` (which win)."""
        kw: dict[str, Any] = {
            "pool_size": self.pool_size,
            "max_overflow": self.max_overflow,
            "pool_timeout": self.pool_timeout,
            "pool_recycle": self.pool_recycle,
            "pool_pre_ping": self.pool_pre_ping,
            "connect_args": {"tcp_connect_timeout": self.connect_timeout},
        }
        extra = dict(self.engine_options)
        if "connect_args" in extra:
            kw["connect_args"] = {**kw["connect_args"], **extra.pop("connect_args")}
        kw.update(extra)
        return kw
