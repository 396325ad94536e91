"""
DCApiX plugin dc-api-x-sdk-meltano: an SDK for Meltano-compatible plugins built on dc-api-x.

This plugin provides:
- the ``dcapix new-plugin NAME`` command: a new plugin distribution ``dc-api-x-NAME`` rendered from a
  copier template — an adapter in the plugin guide's style (``dc_api_x.plugins`` entry point,
  ``register_adapters`` with ``registry[NAME] = ...``, a pydantic options model, a working
  JSON-lines implementation to replace), tests on the plugin test kit ``dc_api_x.testing`` and,
  optionally, ``tap-NAME`` / ``target-NAME`` on singer-sdk with a Meltano custom-plugin definition
- :class:`~dc_api_x_sdk_meltano.singer.AdapterTap` and
  :class:`~dc_api_x_sdk_meltano.singer.AdapterTarget`: singer-sdk taps and targets bound to one
  adapter (what the generated executables subclass), and ``meltano_definition()``

It registers no adapter, paginator or other registry entry: ``dcapix plugins`` lists it with the
``dcapix`` sub-command it adds (entry point group ``dc_api_x.commands``).

Requirements:
- dc-api-x>=0.2.0 (with its ``singer`` extra: singer-sdk)
- copier>=9.4 (imported only when ``dcapix new-plugin`` runs)

Environment variables:
- none of its own; copier reads its user settings file (``COPIER_SETTINGS_PATH``) as usual
"""

from __future__ import annotations

__all__: list[str] = []
