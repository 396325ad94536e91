"""Singer taps and targets bound to one dc-api-x adapter: ``tap-NAME`` / ``target-NAME``.

:class:`AdapterTap` and :class:`AdapterTarget` are ``tap-dcapix`` and ``target-dcapix`` (singer-sdk
``Tap`` / ``Target`` classes) with the adapter fixed, so a plugin's own executables get everything
those have — discovery, catalog selection, exact incremental state (a STATE after each committed
batch), stream maps, flattening, ``--about``, one-line errors — and their settings are the options
of that one adapter::

    from dc_api_x_sdk_meltano.singer import AdapterTap

    class TapXyz(AdapterTap):
        name = "tap-xyz"                # the executable and the Meltano plugin name
        package_name = "dc-api-x-xyz"   # the distribution (for --version / --about)
        adapter_name = "xyz"            # the adapter its plugin registers

    # pyproject.toml: [project.scripts] tap-xyz = "dc_api_x_xyz.tap:TapXyz.cli"

The config holds the adapter's options (``{"path": "/data"}``), no ``adapter`` key (one naming
another adapter is refused). :func:`meltano_definition` gives the Meltano custom-plugin definition
of such a class (``namespace``, ``pip_url``, ``executable``, ``capabilities``, ``settings``).

singer-sdk is imported with this module: import it from the plugin's ``tap.py`` / ``target.py``, not
from its ``__init__`` (which every ``enable_plugins()`` imports).
"""

from __future__ import annotations

import copy
import json
import weakref
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, ClassVar

from singer_sdk import Tap, Target
from tap_dcapix.tap import TRANSFORMS_SCHEMA, TapDcApiX
from target_dcapix.settings import TARGET_PROPERTIES
from target_dcapix.target import TargetDcApiX

from dc_api_x.exceptions import ConfigError

__all__ = ["AdapterTap", "AdapterTarget", "meltano_definition"]


def _config_with_adapter(cls: type[AdapterTap] | type[AdapterTarget], config: Any) -> dict[str, Any]:
    """The config as a dict holding ``adapter: cls.adapter_name`` (paths are read as singer-sdk
    reads them, later files overriding earlier ones)."""
    if not cls.adapter_name:
        raise ConfigError(
            f"{cls.name}: the class {cls.__qualname__} sets no adapter_name (the adapter it serves)",
            plugin=cls.name,
            field="adapter",
        )
    if config is None:
        cfg: dict[str, Any] = {}
    elif isinstance(config, Mapping):
        cfg = dict(config)
    else:
        paths = [config] if isinstance(config, (str, PurePath)) else list(config)
        cfg = {}
        for path in paths:
            with open(path, encoding="utf-8") as fh:
                cfg.update(json.load(fh))
    given = cfg.get("adapter")
    if given not in (None, "", cls.adapter_name):
        raise ConfigError(
            f"{cls.name}: setting 'adapter' is {given!r}, but {cls.name} serves adapter "
            f"{cls.adapter_name!r} only (leave the setting out)",
            plugin=cls.name,
            field="adapter",
        )
    cfg["adapter"] = cls.adapter_name
    return cfg


def _undefaulted(prop: Mapping[str, Any]) -> dict[str, Any]:
    """A setting that documents its default in the description instead of ``default`` (singer-sdk's
    validator copies defaults into the config; the adapter applies its own)."""
    doc = {k: v for k, v in prop.items() if k != "default"}
    if prop.get("default") is not None:
        text = str(doc.get("description") or "").rstrip(". ")
        doc["description"] = f"{text} (default: {json.dumps(prop['default'], default=str)})".lstrip()
    return doc


class _AdapterSettings:
    """``config_jsonschema`` of an adapter-bound tap or target: a class attribute computed per
    class (each names its own adapter) and per plugin set (held by a weak reference)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._cache: dict[type, tuple[weakref.ref[Any], dict[str, Any]]] = {}

    def __get__(self, obj: Any, owner: type | None = None) -> dict[str, Any]:
        from dc_api_x.plugins import get_plugins

        cls = owner if owner is not None else type(obj)
        plugins = get_plugins()
        hit = self._cache.get(cls)
        if hit is None or hit[0]() is not plugins:
            hit = (weakref.ref(plugins), self._build(cls, plugins))
            self._cache[cls] = hit
        return copy.deepcopy(hit[1])  # singer-sdk adds its built-in settings to what it gets

    def _build(self, cls: Any, plugins: Any) -> dict[str, Any]:
        from dc_api_x.singer_settings import adapter_options_schema

        if not cls.adapter_name:
            return {"type": "object", "properties": {}}
        options = adapter_options_schema(cls.adapter_name, plugins=plugins)
        props: dict[str, Any] = {}
        for key, prop in (options.get("properties") or {}).items():
            if key != "adapter" and isinstance(prop, Mapping):
                props[key] = _undefaulted(prop) if self.kind == "target" else dict(prop)
        if self.kind == "tap":
            props["transforms"] = dict(TRANSFORMS_SCHEMA)
        else:
            adapter_cls = plugins.adapters.get(cls.adapter_name)
            methods = [str(m) for m in getattr(adapter_cls, "load_methods", ()) or ()]
            for key, prop in TARGET_PROPERTIES.items():
                if key == "adapter":
                    continue
                prop = copy.deepcopy(prop)
                if key == "load_method" and methods:
                    prop["enum"] = [*methods, *(["append-only"] if "append" in methods else [])]
                    if "append" not in methods:
                        prop["default"] = methods[0]
                props[key] = prop
        # no "required": the adapter validates its options and names a missing one in one line
        return {"type": "object", "properties": props}


class AdapterTap(TapDcApiX):
    """A singer-sdk ``Tap`` over the streams of one dc-api-x adapter (see the module docstring).

    Subclasses set ``name`` (``tap-NAME``), ``package_name`` (the distribution) and
    :attr:`adapter_name`.
    """

    name = "tap-adapter"
    #: the registered name of the adapter this tap reads from
    adapter_name: ClassVar[str] = ""

    #: the adapter's options and ``transforms`` (computed per class)
    config_jsonschema = _AdapterSettings("tap")  # type: ignore[assignment]

    def __init__(self, *, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config=_config_with_adapter(type(self), config), **kwargs)


class AdapterTarget(TargetDcApiX):
    """A singer-sdk ``Target`` writing through one dc-api-x adapter (see the module docstring).

    Subclasses set ``name`` (``target-NAME``), ``package_name`` (the distribution) and
    :attr:`adapter_name`.
    """

    name = "target-adapter"
    #: the registered name of the adapter this target writes through
    adapter_name: ClassVar[str] = ""

    #: the adapter's options and the target's own settings (computed per class)
    config_jsonschema = _AdapterSettings("target")  # type: ignore[assignment]

    def __init__(self, *, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config=_config_with_adapter(type(self), config), **kwargs)


def meltano_definition(
    plugin_class: type[Tap] | type[Target], *, pip_url: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """The Meltano custom-plugin definition of a tap or target class: ``name``, ``namespace``,
    ``pip_url`` (default: its ``package_name``), ``executable``, ``capabilities`` and ``settings``
    (from its ``config_jsonschema``: kinds, descriptions, ``sensitive`` secrets; for adapter-bound
    classes, the adapter's options)."""
    from dc_api_x.singer_settings import meltano_settings

    executable = str(plugin_class.name)
    schema = plugin_class.config_jsonschema
    return {
        "name": name or executable,
        "namespace": executable.replace("-", "_"),
        "pip_url": pip_url or str(getattr(plugin_class, "package_name", None) or executable),
        "executable": executable,
        "capabilities": [str(c) for c in plugin_class.capabilities],
        "settings": meltano_settings(schema),
    }
