"""Fails at import time."""

from __future__ import annotations

raise RuntimeError("dcapix_broken_plugin.bad_import exploded at import")
