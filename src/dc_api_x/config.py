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
    "construct_exact",
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


# ------------------------------------------------------------- options of exact types, without pydantic
# Building a model's pydantic validator costs far more than validating with it: the first build of a
# process imports pydantic's schema generator and its plugin loader (~150 M instructions, 14 % of a
# small ``dcapix run``, issue 15). Options whose every value already has the exact type its field
# declares need no coercion, so :func:`construct_exact` builds the model with ``model_construct``:
# the same values, defaults and ``model_fields_set`` ``model_validate`` would give. It declines
# (``None``: validate with pydantic, its coercions and its errors) whenever it cannot be sure: an
# unknown key, a value of another type, a constraint other than ge/gt, a validator, an alias choice,
# a model configuration beyond the plain options one, a nested model.

_PLAIN_CONFIG = frozenset(
    {"extra", "populate_by_name", "validate_by_name", "arbitrary_types_allowed"}
    | {"defer_build", "title", "json_schema_extra", "protected_namespaces", "use_attribute_docstrings"}
)
_SKIP = object()  # a field construct_exact cannot check
_EXACT: dict[type, Any] = {}


def _checker(annotation: Any) -> Any:
    """A function returning the value pydantic would give for an exact-typed ``annotation`` value
    (or raising ``TypeError``); ``_SKIP`` when the annotation is not one of the simple shapes."""
    import types
    import typing

    if annotation is Any:
        return lambda v: v
    if annotation in (str, int, bool):

        def exact(v: Any, t: type = annotation) -> Any:
            if type(v) is not t:
                raise TypeError
            return v

        return exact
    if annotation is float:

        def to_float(v: Any) -> float:
            if type(v) not in (int, float) or v != v or v in (float("inf"), float("-inf")):
                raise TypeError
            return float(v)

        return to_float
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:

        def literal(v: Any) -> Any:
            if not any(type(v) is type(a) and v == a for a in args):
                raise TypeError
            return v

        return literal
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) != 1:
            # several types (``str | StreamOptions``): a value of exactly one of the members str, int
            # or bool is what pydantic's smart mode returns as it is; anything else is its decision
            simple = tuple(m for m in members if m in (str, int, bool))
            if not simple:
                return _SKIP
            nullable = len(members) != len(args)

            def one_of(v: Any) -> Any:
                if (v is None and nullable) or type(v) in simple:
                    return v
                raise TypeError

            return one_of
        inner = _checker(members[0])
        if inner is _SKIP:
            return _SKIP
        return lambda v: None if v is None else inner(v)
    if origin is list and len(args) == 1:
        item = _checker(args[0])
        if item is _SKIP:
            return _SKIP

        def items(v: Any) -> list[Any]:
            if type(v) is not list:
                raise TypeError
            return [item(x) for x in v]

        return items
    if origin is dict and len(args) == 2 and args[0] is str:
        value = _checker(args[1])
        if value is _SKIP:
            return _SKIP

        def mapping(v: Any) -> dict[str, Any]:
            if type(v) is not dict or any(type(k) is not str for k in v):
                raise TypeError
            return {k: value(x) for k, x in v.items()}

        return mapping
    return _SKIP


def _bounded(check: Any, metadata: list[Any]) -> Any:
    """``check`` with the field's ``ge`` / ``gt`` bounds; ``_SKIP`` for any other constraint."""
    import annotated_types as at

    bounds = []
    for m in metadata:
        if isinstance(m, at.Ge):
            bounds.append(lambda v, b=m.ge: v >= b)
        elif isinstance(m, at.Gt):
            bounds.append(lambda v, b=m.gt: v > b)
        else:
            return _SKIP
    if not bounds:
        return check

    def bounded(v: Any) -> Any:
        out = check(v)
        if out is not None and not all(ok(out) for ok in bounds):
            raise TypeError
        return out

    return bounded


def _exact_plan(model: type[BaseModel]) -> Any:
    """``(key -> (field name, checker), extra allowed)`` for ``model``, or ``None`` when the model is
    not a plain options model."""
    config = model.model_config
    if set(config) - _PLAIN_CONFIG or config.get("extra") not in ("forbid", "allow", "ignore", None):
        return None
    d = model.__pydantic_decorators__
    hooks = (d.validators, d.field_validators, d.root_validators, d.model_validators)
    if (
        any(hooks)
        or d.field_serializers
        or d.model_serializers
        or getattr(model, "__pydantic_root_model__", False)
    ):
        return None
    if model.model_post_init is not BaseModel.model_post_init or any(
        "__init__" in vars(c) for c in model.__mro__[: model.__mro__.index(BaseModel)]
    ):
        return None
    fields = model.model_fields
    if any(
        f.validate_default or not isinstance(f.validation_alias, (str, type(None))) for f in fields.values()
    ):
        return None  # a default validated, or alias choices / paths
    by_name = config.get("populate_by_name") or config.get("validate_by_name")
    keys: dict[str, tuple[str, Any]] = {}
    for name, field in fields.items():
        check = _SKIP
        if not getattr(field, "default_factory_takes_validated_data", False):
            check = _checker(field.annotation)
            if check is not _SKIP:
                check = _bounded(check, field.metadata)
        alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
        for key in ([alias] if alias else []) + ([name] if by_name or not alias else []):
            keys[key] = (name, check)
    return keys, config.get("extra")


def construct_exact(model: type[M], data: Mapping[str, Any]) -> M | None:
    """``model`` built from ``data`` with ``model_construct`` when every value has the exact type
    its field declares (within its ge/gt bounds), as ``model_validate`` would build it; ``None``
    when pydantic must decide (see above)."""
    plan = _EXACT.get(model)
    if plan is None:
        plan = _EXACT[model] = _exact_plan(model) or (None, None)
    keys, extra = plan
    if keys is None:
        return None
    values: dict[str, Any] = {}
    given: set[str] = set()
    extras: dict[str, Any] = {}
    try:
        for key, value in data.items():
            entry = keys.get(key)
            if entry is None:
                if extra == "allow" and type(key) is str:
                    extras[key] = value
                    continue
                return None  # forbidden (pydantic's error) or ignored (let pydantic drop it)
            name, check = entry
            if check is _SKIP or name in given:
                return None
            values[name] = check(value)
            given.add(name)
    except TypeError:
        return None
    for name, field in model.model_fields.items():
        if name not in given and field.is_required():
            return None
    if set(extras) & set(model.model_fields):
        return None
    return model.model_construct(given | set(extras), **values, **extras)


def validate_options(model: type[M], options: Mapping[str, Any] | BaseModel | None, *, plugin: str) -> M:
    """Validate ``options`` against ``model``.

    :param plugin: how to name the plugin in errors, e.g. ``"adapter 'sql'"``.
    :raises ConfigError: one line naming the plugin and the field.
    """
    if isinstance(options, model):
        return options
    if isinstance(options, BaseModel):
        options = options.model_dump(exclude_unset=True)
    data = dict(options or {})
    fast = construct_exact(model, data)
    if fast is not None:
        return fast
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, msg = describe_validation_error(exc)
        raise ConfigError(f"{plugin}: option {field!r}: {msg}", plugin=plugin, field=field) from None


class PluginConfig(BaseModel):
    """``{"type": NAME, …options}``: selects a registered paginator, auth provider or transform."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    type: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EndpointConfig(BaseModel):
    """``{"adapter": NAME, …options}``: one source or destination endpoint."""

    model_config = ConfigDict(extra="allow", defer_build=True)
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
