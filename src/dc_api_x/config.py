"""Configuration: option validation for every plugin, shared config models, layered settings.

* :func:`validate_options` turns a mapping into a plugin's pydantic model, or raises one
  :class:`~dc_api_x.exceptions.ConfigError` line naming the plugin and the field.
* :class:`PluginConfig` is the ``{type: NAME, …options}`` shape used for pagination, auth and
  transforms; :class:`EndpointConfig` is ``{adapter: NAME, …options}``.
* :func:`load_settings` merges the registered config providers (defaults < file < environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .exceptions import ConfigError

__all__ = [
    "EndpointConfig",
    "OptionsModel",
    "PluginConfig",
    "describe_validation_error",
    "load_settings",
    "merge_options",
    "validate_options",
]

M = TypeVar("M", bound=BaseModel)


class OptionsModel(BaseModel):
    """Base for plugin option models: unknown options are errors (typos must not pass silently)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)


def describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    """``(field, message)`` of the first error of a pydantic validation error."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ())) or "(root)"
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = "unknown option"
    elif err.get("type") == "missing":
        msg = "required option is missing"
    return loc, msg


def merge_options(options: Mapping[str, Any] | BaseModel | None, overrides: Mapping[str, Any]) -> Any:
    """``options`` (a mapping, a model or ``None``) with ``overrides`` (keyword options) on top.

    Without overrides ``options`` is returned unchanged, so :func:`validate_options` can still take a
    ready model as it is."""
    if not overrides:
        return options
    base = options.model_dump(exclude_unset=True) if isinstance(options, BaseModel) else dict(options or {})
    return {**base, **overrides}


def validate_options(model: type[M], options: Mapping[str, Any] | BaseModel | None, *, plugin: str) -> M:
    """Validate ``options`` against ``model``.

    :param plugin: how to name the plugin in errors, e.g. ``"adapter 'sql'"``.
    :raises ConfigError: one line naming the plugin and the field.
    """
    if isinstance(options, model):
        return options
    if isinstance(options, BaseModel):
        options = options.model_dump(exclude_unset=True)
    try:
        return model.model_validate(dict(options or {}))
    except ValidationError as exc:
        field, msg = describe_validation_error(exc)
        raise ConfigError(f"{plugin}: option {field!r}: {msg}", plugin=plugin, field=field) from None


class PluginConfig(BaseModel):
    """``{"type": NAME, …options}``: selects a registered paginator, auth provider or transform."""

    model_config = ConfigDict(extra="allow")
    type: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EndpointConfig(BaseModel):
    """``{"adapter": NAME, …options}``: one source or destination endpoint."""

    model_config = ConfigDict(extra="allow")
    adapter: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


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
    from .exceptions import DcApiXError
    from .plugins import get_plugins

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
