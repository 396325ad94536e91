"""Factories: build what a configuration names from the current plugin set's registries.

* :func:`create_adapter` — ``{"adapter": NAME, …options}`` → an adapter instance;
* :func:`create_plugin` — ``{"type": NAME, …options}`` → a paginator, auth provider, transform, hook, …;
* :func:`load_settings` — a settings model merged from the registered config providers.

**How an adapter is constructed** (:func:`build_adapter`; ``create_adapter``, ``ApiClient``,
``dcapix run``, the tap and the target all go through it). The endpoint config without ``adapter``
is the adapter's *options*; ``ApiClient(url, adapter=NAME, adapter_options=O)`` is the config
``{"url": url, **O}``. The registered entry — a class or any callable — is called according to its
signature:

1. **One options mapping** when its first parameter is positional-only, ``*args`` or named
   ``options`` — the toolkit's ``ProtocolAdapter.__init__(self, options=None, /, **kwargs)`` —
   ``Adapter(options)``; the adapter validates them with its ``Options`` model. (``ApiClient``'s
   ``url`` fills the model's ``base_url`` field when it has one, else ``url``.)
2. **Keyword arguments** otherwise — ``Adapter(**options)`` — except the URL (the ``url`` option):
   it goes to a parameter named ``url``; else to the first parameter without a default that no
   option names (``__init__(self, connection_string)``); else into ``**kwargs`` as ``url=``.
3. What the signature cannot take is refused before the call with one
   :class:`~dc_api_x.exceptions.ConfigError` line naming the adapter, the option and what the
   adapter accepts; so is a required parameter no option fills. A pydantic ``ValidationError`` the
   constructor raises becomes a ``ConfigError`` naming the field; any other error an
   :class:`~dc_api_x.exceptions.AdapterError` naming the adapter (secrets redacted).

They sit above :mod:`dc_api_x.plugins` (they look names up in a plugin set) and below the users of
plugins (``ApiClient``, the runner, the tap and the target), so :mod:`dc_api_x.config` stays a bottom
layer that imports no plugin machinery.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .config import EndpointConfig, PluginConfig, describe_validation_error, validate_options
from .exceptions import AdapterError, ConfigError, DcApiXError, PluginError
from .plugins import PluginSet, get_plugins

__all__ = [
    "build_adapter",
    "check_adapter_options",
    "create_adapter",
    "create_plugin",
    "keyword_options_schema",
    "load_settings",
]

M = TypeVar("M", bound=BaseModel)
_MISSING: Any = object()


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
    entry = (plugins or get_plugins()).adapters.get(ep.adapter)
    return build_adapter(ep.adapter, entry, ep.options)


def build_adapter(
    name: str, entry: Any, options: Mapping[str, Any] | None = None, *, url: Any = _MISSING
) -> Any:
    """Construct the adapter ``entry`` (registered as ``name``) from ``options`` by the rule of the
    module doc. ``url`` is ``ApiClient``'s URL argument (an option ``url`` in ``options`` wins).

    :raises ConfigError: an option the adapter cannot take (naming it and what the adapter accepts),
        a missing required one, or a validation error of the adapter's own model.
    :raises AdapterError: the constructor failed otherwise (names the adapter; secrets redacted).
    """
    args, kwargs = _bind(name, entry, dict(options or {}), url)
    try:
        adapter = entry(*args, **kwargs)
    except DcApiXError:
        raise
    except ValidationError as exc:  # the adapter's own pydantic model (the guide's **kwargs shape)
        field, msg = describe_validation_error(exc)
        raise ConfigError(
            f"adapter {name!r}: option {field!r}: {msg}", plugin=f"adapter {name!r}", field=field
        ) from None
    except Exception as exc:
        from .logs import redact

        raise AdapterError(
            f"adapter {name!r} could not be created: {type(exc).__name__}: {redact(exc)}", adapter=name
        ) from exc
    if not getattr(adapter, "name", None):  # the guide's adapters set no class-level name
        try:
            adapter.name = name
        except Exception:  # pragma: no cover - a slotted / read-only object keeps its own
            pass
    return adapter


def check_adapter_options(name: str, entry: Any, options: Mapping[str, Any] | None = None) -> None:
    """Check ``options`` against the adapter ``entry`` without constructing it: an options-model
    adapter validates them (``configure``); any other must accept them by the construction rule.

    :raises ConfigError: as :func:`build_adapter` would, naming the adapter and the option.
    """
    args, _kwargs = _bind(name, entry, dict(options or {}), _MISSING)
    if args and hasattr(entry, "configure"):
        entry.configure(args[0])


_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "dict": "object"}
_JSON_TYPES.update({"list": "array", "Mapping": "object", "Sequence": "array"})


def keyword_options_schema(entry: Any) -> dict[str, Any] | None:
    """The settings JSON Schema of an adapter built with keyword arguments (rule 2 of the module doc),
    read from its signature: one property per parameter (typed from simple annotations, with
    defaults), ``url`` for the parameter the URL goes to, open to more when it has ``**kwargs``.
    ``None`` for an options-mapping adapter (its ``Options`` model describes it)."""
    sig = _signature(entry)
    if _takes_mapping(sig):
        return None
    assert sig is not None
    params = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    free = [p.name for p in params if p.default is p.empty]
    url_to = "url" if any(p.name == "url" for p in params) else (free[0] if free else None)
    props: dict[str, Any] = {}
    required: list[str] = []
    for p in params:
        ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        prop: dict[str, Any] = {}
        base = str(ann).split("[")[0].split("|")[0].strip()
        if base in _JSON_TYPES:
            prop["type"] = _JSON_TYPES[base]
        if p.default is not p.empty and isinstance(p.default, (str, int, float, bool)):
            prop["default"] = p.default
        if p.name == url_to and p.name != "url":
            prop["description"] = "the adapter's URL (also accepted as url)"
            props["url"] = {"type": "string", "description": f"the adapter's URL (passed as {p.name})"}
        elif p.default is p.empty:
            required.append(p.name)
        props[p.name] = prop
    if url_to is None and var_kw:
        props["url"] = {"type": "string", "description": "the adapter's URL (passed as url=)"}
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": var_kw}
    if required:
        out["required"] = required
    return out


def _signature(entry: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(entry)
    except (TypeError, ValueError):  # a builtin without a signature: call it the toolkit's way
        return None


def _takes_mapping(sig: inspect.Signature | None) -> bool:
    if sig is None:
        return True
    params = list(sig.parameters.values())
    if not params:
        return False
    first = params[0]
    return first.kind in (first.POSITIONAL_ONLY, first.VAR_POSITIONAL) or first.name == "options"


def _bind(name: str, entry: Any, options: dict[str, Any], url: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` to call ``entry`` with, or a ConfigError naming what does not fit."""
    sig = _signature(entry)
    if _takes_mapping(sig):
        if url is not _MISSING:
            fields = getattr(getattr(entry, "Options", None), "model_fields", None) or {}
            options.setdefault("base_url" if "base_url" in fields else "url", url)
        return (options,), {}
    assert sig is not None
    params = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    by_name = {p.name: p for p in params if p.kind is not p.POSITIONAL_ONLY}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if "url" in options:  # the config's url (or ApiClient's adapter_options url) wins
        url = options.pop("url")
    kwargs: dict[str, Any] = {}
    if url is not _MISSING:
        target = "url" if "url" in by_name else None
        if target is None:
            free = [p.name for p in by_name.values() if p.default is p.empty and p.name not in options]
            target = free[0] if free else ("url" if var_kw else None)
        if target is None:
            raise _refused(name, entry, sig, "url")
        kwargs[target] = url
    for key, value in options.items():
        if key not in by_name and not var_kw:
            raise _refused(name, entry, sig, key)
        kwargs[key] = value
    for p in params:
        if p.default is p.empty and p.name not in kwargs:
            raise ConfigError(
                f"adapter {name!r}: option {p.name!r}: required option is missing; {_accepts(entry, sig)}",
                plugin=f"adapter {name!r}",
                field=p.name,
            )
    return (), kwargs


def _refused(name: str, entry: Any, sig: inspect.Signature, option: str) -> ConfigError:
    return ConfigError(
        f"adapter {name!r}: option {option!r} is not accepted; {_accepts(entry, sig)}",
        plugin=f"adapter {name!r}",
        field=option,
    )


def _accepts(entry: Any, sig: inspect.Signature) -> str:
    """``ConnAdapter(connection_string) accepts: connection_string (the url)`` and the like."""
    what = getattr(entry, "__qualname__", None) or type(entry).__name__
    bare = sig.replace(
        parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
        return_annotation=sig.empty,
    )
    params = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = [p.name for p in params if p.kind is not p.POSITIONAL_ONLY]
    var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    free = [p.name for p in params if p.default is p.empty and p.kind is not p.POSITIONAL_ONLY]
    url_to = "url" if "url" in names else (free[0] if free else "url" if var_kw else None)
    parts = [f"{n} (the url)" if n == url_to and n != "url" else n for n in names]
    if var_kw:
        parts += [*(["url"] if url_to == "url" and "url" not in names else []), "any other option (**kwargs)"]
    return f"{what}{bare} accepts: {', '.join(parts) or 'no options'}"


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
