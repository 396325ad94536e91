"""Configuration: option validation for every plugin and the shared config models.

* :func:`validate_options` turns a mapping into a plugin's pydantic model, or raises one
  :class:`~dc_api_x.exceptions.ConfigError` line naming the plugin and the field.
* :class:`PluginConfig` is the ``{type: NAME, …options}`` shape used for pagination, auth and
  transforms; :class:`EndpointConfig` is ``{adapter: NAME, …options}``.

``load_settings`` (the config providers merged: defaults < file < environment) needs the plugin set,
so it lives in :mod:`dc_api_x.factories`; ``dc_api_x.config.load_settings`` still finds it.
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
    "merge_options",
    "new_dict",
    "new_list",
    "validate_options",
]

M = TypeVar("M", bound=BaseModel)


# ``Field(default_factory=list)`` makes pydantic read the signature of the builtin ``list`` while it
# builds the model (``takes_validated_data_argument``), which parses its text signature with
# ``tokenize`` and compiles tokenize's large regular expression: ~14 M instructions of a small
# ``dcapix run`` (issue 15). A Python function's signature is read without it; the field, its
# default (a fresh empty list / dict per instance) and its JSON Schema are unchanged.
def new_list() -> list[Any]:
    """A new empty list: the ``default_factory`` of list options."""
    return []


def new_dict() -> dict[str, Any]:
    """A new empty dict: the ``default_factory`` of mapping options."""
    return {}


class OptionsModel(BaseModel):
    """Base for plugin option models: unknown options are errors (typos must not pass silently).

    Validators are built on first use (``defer_build``): importing an adapter module does not build
    the options models of every adapter it defines, only the one a run validates."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, arbitrary_types_allowed=True, defer_build=True
    )


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


def __getattr__(name: str) -> Any:
    # ``from dc_api_x.config import load_settings`` keeps working; the function needs the plugin
    # set, so it lives one layer up (this module imports nothing of the plugin machinery at import).
    if name == "load_settings":
        from .factories import load_settings

        return load_settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
