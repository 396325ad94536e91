"""
DCApiX plugin for Oracle Database (dc-api-x-oracle-db): connection pooling, PL/SQL support.

This plugin provides:
- the ``oracle_db`` protocol adapter: the SQL adapter (``sql``) with an Oracle backend, on
  python-oracledb in thin mode (no Oracle Client libraries) through SQLAlchemy's
  ``oracle+oracledb`` dialect; source and destination of ``ApiClient``, ``dcapix run`` and
  ``tap-dcapix | target-dcapix``:
  - tables and views of a schema (an Oracle user) discovered by bulk reflection, read with one
    server-side cursor (``FETCH FIRST n ROWS ONLY`` for limits, ``OFFSET … FETCH NEXT`` pages with
    ``page_size``), incrementally by a replication key;
  - ``NUMBER(p,s)`` read and written as exact decimals, ``DATE`` as a date-time without zone,
    ``TIMESTAMP WITH TIME ZONE`` as instants in UTC;
  - a PL/SQL procedure returning a ``SYS_REFCURSOR`` as a stream (``procedure:``), read in batches;
  - writes by array binding (``executemany``), one transaction per batch; append, upsert, overwrite;
  - a connection pool with the ``pool_*`` options.

Requirements:
- dc-api-x>=0.2.0
- oracledb>=2.0 (python-oracledb, thin mode)
- sqlalchemy>=2.0.25
- an Oracle Database >= 12.1 (FETCH FIRST / OFFSET); never run here against a live server: see
  the README

Environment variables:
- DC_API_X_ORACLE_URL: Optional SQLAlchemy URL used when the ``url`` option is not given,
  e.g. oracle+oracledb://scott:tiger@127.0.0.1:1521/?service_name=FREEPDB1
- DC_API_X_ORACLE_POOL_SIZE: Optional connections kept in the pool (default: 5)
- TNS_ADMIN: Optional directory of tnsnames.ora / sqlnet.ora (read by python-oracledb)
"""

from __future__ import annotations

from typing import Any

__all__ = ["DC_API_X_REQUIRES", "register_adapters"]

#: The dc-api-x versions this plugin supports.
DC_API_X_REQUIRES = ">=0.2.0"


def register_adapters(registry: Any) -> None:
    """
    Register the Oracle Database protocol adapter.

    The adapter supports the following features:
    - connection pooling (SQLAlchemy's QueuePool over python-oracledb thin connections)
    - PL/SQL procedures returning a ref cursor, read as streams
    - exact NUMBER(p,s) decimals, DATE and TIMESTAMP WITH TIME ZONE values
    - array-bound inserts (executemany) for writes

    SQLAlchemy and python-oracledb are imported only when an adapter is created. Without them the
    plugin is listed as failed with the reason.
    """
    from importlib.util import find_spec

    for module, dist in (("oracledb", "oracledb>=2.0"), ("sqlalchemy", "sqlalchemy>=2.0.25")):
        if find_spec(module) is None:
            raise ModuleNotFoundError(
                f"unavailable: {module} is not installed (pip install '{dist}', or reinstall "
                "dc-api-x-oracle-db)",
                name=module,
            )
    # "module:Class": the registry imports the adapter (and SQLAlchemy) on first use
    registry["oracle_db"] = "dc_api_x_oracle_db.adapter:OracleAdapter"
