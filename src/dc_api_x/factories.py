"""Factories: build what a configuration names from the current plugin set's registries.

* :func:`create_adapter` — ``{"adapter": NAME, …options}`` → an adapter instance;
* :func:`create_plugin` — ``{"type": NAME, …options}`` → a paginator, auth provider, transform, hook, …;
* :func:`load_settings` — a settings model merged from the registered config providers.

They sit above :mod:`dc_api_x.plugins` (they look names up in a plugin set) and below the users of
plugins (``ApiClient``, the runner, the tap and the target), so :mod:`dc_api_x.config` stays a bottom
layer that imports no plugin machinery.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from .config import EndpointConfig, PluginConfig, validate_options
from .exceptions import ConfigError, DcApiXError, PluginError
from .plugins import PluginSet, get_plugins

__all__ = ["create_adapter", "create_plugin", "load_settings"]

M = TypeVar("M", bound=BaseModel)


def create_adapter(config: Any, *, plugins: PluginSet | None = None, **overrides: Any) -> Any:
    """Instantiate the adapter a config names: ``{"adapter": "sql", "url": …}``.

    :raises ConfigError: when ``adapter`` is missing or an option is invalid.
    :raises UnknownPluginError: when no plugin registers that adapter (lists the known ones).
    """
    if hasattr(config, "model_dump"):
        config = config.model_dump(exclude_none=True)
    data = dict(config or {})
    data.update(overrides)
    ep = validate_options(EndpointConfig, data, plugin="endpoint")
    cls = (plugins or get_plugins()).adapters.get(ep.adapter)
    return cls(ep.options)


def create_plugin(attr: str, config: Any, *, plugins: PluginSet | None = None, **kwargs: Any) -> Any:
    """Instantiate a ``{"type": NAME, …options}`` plugin from the registry ``attr``
    (``"paginators"``, ``"auth_providers"``, ``"transforms"``, ``"hooks"`` …). A bare string is a
    type with no options."""
    if isinstance(config, str):
        config = {"type": config}
    if hasattr(config, "model_dump"):
        config = config.model_dump(exclude_none=True)
    registries = (plugins or get_plugins()).registries
    if attr not in registries:
        raise PluginError(f"no plugin registry {attr!r}; registries: {', '.join(sorted(registries))}")
    reg = registries[attr]
    pc = validate_options(PluginConfig, dict(config or {}), plugin=reg.kind)
    cls = reg.get(pc.type)
    return cls(pc.options, **kwargs)


def load_settings(
    model: type[M],
    *,
    file: str | None = None,
    env_prefix: str = "DCAPIX_",
    defaults: Mapping[str, Any] | None = None,
    providers: list[str] | None = None,
) -> M:
    """Build ``model`` from the registered config providers, lowest priority first.

    The built-in precedence is: ``defaults`` (model defaults and the ``defaults`` mapping) < the
    config file (``file``: YAML, TOML or JSON) < environment variables (``{env_prefix}FIELD``,
    nested fields with ``__``). Providers registered by plugins join by their ``priority``.
    """
    ps = get_plugins()
    names = providers if providers is not None else ps.config_providers.names()
    layers = []
    for name in names:
        cls = ps.config_providers.get(name)
        layers.append(cls(file=file, env_prefix=env_prefix, defaults=defaults or {}, model=model))
    layers.sort(key=lambda p: p.priority)  # stable: equal priorities keep registry (name) order
    merged: dict[str, Any] = {}
    for provider in layers:
        who = f"config provider {getattr(provider, 'name', '') or type(provider).__name__!r}"
        try:
            data = provider.load()
        except DcApiXError:
            raise
        except Exception as exc:
            raise ConfigError(f"{who} failed: {type(exc).__name__}: {exc}", plugin=who) from exc
        if data is None:
            continue
        if not isinstance(data, Mapping):
            raise ConfigError(f"{who}: load() returned {type(data).__name__}, expected a mapping", plugin=who)
        _deep_merge(merged, data)
    return validate_options(model, merged, plugin=f"settings {model.__name__}")


def _deep_merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping):
            if not isinstance(into.get(key), dict):
                into[key] = {}  # a copy: later layers must not modify a provider's own dicts
            _deep_merge(into[key], value)
        else:
            into[key] = value
