"""
DCApiX plugin for the Singer specification: any Singer tap or target as a dc-api-x endpoint.

This plugin provides:
- the ``singer`` adapter: a Singer tap executable as a source (``--discover`` or a given catalog,
  stream and field selection, ``--state``; SCHEMA, RECORD, STATE, ACTIVATE_VERSION and BATCH
  messages), a Singer target executable as a destination (SCHEMA, RECORD and STATE messages; the
  target's STATE output is the commit)
- so every Singer connector on PyPI works with ``dcapix run``, ``ApiClient`` adapters'
  ETL side and the Singer tap/target of dc-api-x, next to the built-in adapters and transforms

Requirements:
- dc-api-x>=0.2.0
- msgspec>=0.18 (exact JSON decoding: big integers and long decimals stay exact)
- the connectors themselves, each best in its own virtualenv (``python -m venv v && v/bin/pip
  install tap-foo``); pyarrow (a dc-api-x extra) only for BATCH messages in Parquet

Environment variables:
- DCAPIX_SINGER_PATH: Optional directories (``os.pathsep``-separated) searched for connector
  executables before ``PATH``, e.g. ``/opt/connectors/tap-foo/bin:/opt/connectors/target-bar/bin``
- any variable the connector reads itself (pass more with the adapter's ``env`` option)
"""

from __future__ import annotations

__all__ = ["register_adapters"]


def register_adapters(registry):  # type: ignore[no-untyped-def]
    """
    Register the ``singer`` adapter.

    The adapter supports the following features:
    - any Singer tap as a source: discovery from the tap's catalog, one stream per read, the tap's
      STATE stored by the runner only after the destination committed the records before it
    - any Singer target as a destination: checkpoints sent as STATE messages, committed when the
      target prints them back (or exits 0)
    - the rows a tap replays when it resumes at its bookmark (``>=``) are not delivered twice
    """
    registry["singer"] = "dc_api_x_singer.adapter:SingerAdapter"  # imported on first use
