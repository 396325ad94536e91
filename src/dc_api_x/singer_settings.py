"""Singer / Meltano settings generated from the adapters' pydantic ``Options`` models.

One typed source for every place settings are described: the tap's and target's
``config_jsonschema`` (``--about --format json|markdown``), the Meltano ``settings:`` block
(``dcapix meltano-snippet``) and the env-var names. Shared by ``tap-dcapix`` and
``target-dcapix``.

Conventions of the generated JSON Schema:

* ``$defs`` / ``$ref`` are inlined (Meltano and the SDK's markdown renderer do not follow refs);
  pydantic's ``title`` noise is dropped, descriptions are kept;
* a secret option (listed in the adapter's ``secret_options``, a ``SecretStr`` field, a field
  with ``json_schema_extra={"secret": True}``, or named like one: ``password``, ``auth``,
  ``client_secret``, ``*_token`` …) carries ``"secret": true, "writeOnly": true`` and
  ``"sensitive": true`` in its Meltano definition;
* the config of a tap/target names the adapter at run time, so the plugin-level schema is
  ``adapter`` (an enum of the registered adapters) plus the union of every adapter's options;
  an option two adapters declare differently becomes an ``anyOf`` of both definitions.

Nothing here imports a heavy library; adapter classes are loaded through the registry.
"""

from __future__ import annotations

import copy
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

__all__ = [
    "SECRET_MARKERS",
    "SECRET_NAMES",
    "SettingsSchema",
    "adapter_options_schema",
    "adapter_settings_schema",
    "inline_refs",
    "is_secret_name",
    "jsonschema_kind",
    "meltano_settings",
    "model_settings_schema",
    "secret_settings",
]

log = logging.getLogger(__name__)


class SettingsSchema:
    """The ``config_jsonschema`` of tap-dcapix / target-dcapix: a class attribute computed on each
    access (singer-sdk reads it from the class; its own ``classproperty`` helper is private).

    During a run it is ``run()`` — the plugin's own settings, so singer-sdk's validation neither
    rejects an adapter's options nor copies other adapters' defaults into the config (the chosen
    adapter validates its options and names the field). With :attr:`complete` set (``--about``,
    ``--config ENV``: singer-sdk reads the env vars of documented settings only) it is
    ``complete(plugins)``, built once per plugin set — held by a weak reference, so a new set
    created where a freed one was is not mistaken for it.
    """

    def __init__(self, run: Callable[[], dict[str, Any]], complete: Callable[[Any], dict[str, Any]]) -> None:
        self._run, self._complete = run, complete
        #: whether the complete schema is served
        self.complete = False
        self._for: weakref.ref[Any] | None = None
        self._schema: dict[str, Any] = {}

    def __get__(self, obj: Any, owner: Any = None) -> dict[str, Any]:
        if not self.complete:
            return self._run()
        from .plugins import get_plugins

        plugins = get_plugins()
        if self._for is None or self._for() is not plugins:
            self._schema = self._complete(plugins)
            self._for = weakref.ref(plugins)
        return self._schema


#: Keys put on a secret property.
SECRET_MARKERS: dict[str, Any] = {"secret": True, "writeOnly": True}

_DROP_KEYS = ("title",)


def inline_refs(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with every local ``$ref`` (``#/$defs/X``, ``#/definitions/X``) replaced
    by its definition and the ``$defs``/``definitions`` section removed.

    A recursive reference is cut at its second occurrence (replaced by ``{"type": "object"}``)."""
    root = copy.deepcopy(dict(schema))
    defs: dict[str, Any] = {}
    defs.update(root.pop("$defs", {}) or {})
    defs.update(root.pop("definitions", {}) or {})

    def resolve(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(x, stack) for x in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            name = ref.rsplit("/", 1)[-1]
            target = defs.get(name)
            if target is None or name in stack:
                out: dict[str, Any] = {"type": "object"}
            else:
                out = resolve(copy.deepcopy(target), (*stack, name))
            extra = {k: resolve(v, stack) for k, v in node.items() if k != "$ref"}
            if extra:
                out = {**out, **extra}
            return out
        return {k: resolve(v, stack) for k, v in node.items() if k not in ("$defs", "definitions")}

    return resolve(root, ())  # type: ignore[no-any-return]


def _drop_titles(node: Any) -> Any:
    if isinstance(node, list):
        return [_drop_titles(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in _DROP_KEYS and isinstance(v, str):
            continue
        if k == "properties" and isinstance(v, dict):
            out[k] = {name: _drop_titles(sub) for name, sub in v.items()}
        else:
            out[k] = _drop_titles(v)
    return out


#: Option names that hold a secret whatever the adapter declares (exact names or these suffixes).
SECRET_NAMES = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "client_secret",
        "private_key",
        "auth",
        "credentials",
    }
)
_SECRET_SUFFIXES = ("_password", "_secret", "_token", "_api_key", "_private_key", "_credentials")


def is_secret_name(name: str) -> bool:
    """Whether an option called ``name`` holds a secret by its name alone (``password``,
    ``client_secret``, ``auth``, ``*_token`` …; not ``primary_key`` or ``replication_key``)."""
    low = name.lower()
    return low in SECRET_NAMES or low.endswith(_SECRET_SUFFIXES)


def _is_secret_schema(prop: Mapping[str, Any]) -> bool:
    if prop.get("secret") is True or prop.get("writeOnly") is True or prop.get("format") == "password":
        return True
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in prop.get(key) or ():
            if isinstance(sub, Mapping) and _is_secret_schema(sub):
                return True
    return False


def _contains_secret(node: Any) -> bool:
    if isinstance(node, list):
        return any(_contains_secret(x) for x in node)
    if not isinstance(node, Mapping):
        return False
    if _is_secret_schema(node):
        return True
    return any(_contains_secret(v) for v in node.values() if isinstance(v, (Mapping, list)))


def _mark_secrets(node: Any) -> None:
    """Mark every property (recursively) that looks secret with :data:`SECRET_MARKERS`."""
    if isinstance(node, list):
        for x in node:
            _mark_secrets(x)
        return
    if not isinstance(node, dict):
        return
    for name, sub in (node.get("properties") or {}).items():
        if isinstance(sub, dict) and (_is_secret_schema(sub) or is_secret_name(str(name))):
            sub.update(SECRET_MARKERS)
    for v in node.values():
        if isinstance(v, (dict, list)):
            _mark_secrets(v)


def model_settings_schema(model: type[BaseModel], *, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """The JSON Schema of a pydantic options model, ready for Singer ``--about`` and Meltano.

    :param secrets: top-level option names to mark secret (besides ``SecretStr`` fields and fields
        declared with ``json_schema_extra={"secret": True}``).
    """
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema = _drop_titles(inline_refs(raw))
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    for name in secrets:
        prop = schema["properties"].get(name)
        if isinstance(prop, dict):
            prop.update(SECRET_MARKERS)
    _mark_secrets(schema)
    return schema  # type: ignore[no-any-return]


def _adapter_classes(names: Sequence[str] | None, plugins: Any = None) -> list[tuple[str, Any]]:
    from .plugins import get_plugins

    ps = plugins or get_plugins()
    out: list[tuple[str, Any]] = []
    for name in names if names is not None else ps.adapters.names():
        try:
            out.append((name, ps.adapters.get(name)))
        except Exception as exc:  # an adapter whose extra is not installed: documented as such
            if names is not None:
                raise
            log.warning("adapter %r left out of the settings schema: %s", name, exc)
    return out


def adapter_options_schema(adapter: str | type, *, plugins: Any = None) -> dict[str, Any]:
    """The settings schema of one adapter (its ``Options`` model, or its constructor's keyword
    parameters, secrets marked), by registry name or class."""
    cls = _adapter_classes([adapter], plugins)[0][1] if isinstance(adapter, str) else adapter
    from .factories import keyword_options_schema

    by_signature = keyword_options_schema(cls)  # an adapter built with keyword arguments
    if by_signature is not None:
        _mark_secrets(by_signature)
        return by_signature
    model = getattr(cls, "Options", None)
    if model is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
        return {"type": "object", "properties": {}}
    return model_settings_schema(model, secrets=getattr(cls, "secret_options", ()) or ())


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    strip = ("description", "default", "examples")
    return {k: v for k, v in a.items() if k not in strip} == {k: v for k, v in b.items() if k not in strip}


def adapter_settings_schema(
    adapters: str | Sequence[str] | None = None,
    *,
    plugins: Any = None,
    adapter_required: bool = True,
) -> dict[str, Any]:
    """The settings schema of a tap/target whose config names its adapter at run time.

    ``{"type": "object", "properties": {"adapter": {"type": "string", "enum": [...]}, <options>},
    "required": ["adapter"]}`` where ``<options>`` is the union of the options of ``adapters``
    (one name, several, or ``None``: every registered adapter). An option declared differently by
    two adapters becomes ``{"anyOf": [...]}``; each option's description says which adapters use
    it. Per-adapter ``required`` lists are not enforced here (the adapter itself validates its
    options and names the field), only ``adapter``.
    """
    if isinstance(adapters, str):
        adapters = [adapters]
    classes = _adapter_classes(list(adapters) if adapters is not None else None, plugins)
    names = [n for n, _ in classes]
    props: dict[str, Any] = {
        "adapter": {
            "type": "string",
            "description": "The dc-api-x adapter that reads or writes this endpoint"
            + (f" (one of: {', '.join(names)})" if names else ""),
        }
    }
    if names:
        props["adapter"]["enum"] = names
    users: dict[str, list[str]] = {}
    required_by: dict[str, list[str]] = {}
    for name, cls in classes:
        schema = adapter_options_schema(cls)
        for opt in schema.get("required") or ():
            required_by.setdefault(opt, []).append(name)
        for opt, prop in (schema.get("properties") or {}).items():
            if opt == "adapter":
                continue
            users.setdefault(opt, []).append(name)
            if opt not in props:
                props[opt] = prop
                continue
            cur = props[opt]
            variants = cur["anyOf"] if cur.get("x-dcapix-union") else [cur]
            if any(_same(v, prop) for v in variants):
                continue
            merged: dict[str, Any] = {"anyOf": [*variants, prop], "x-dcapix-union": True}
            if any(_is_secret_schema(v) for v in merged["anyOf"]):
                merged.update(SECRET_MARKERS)
            props[opt] = merged
    for opt, who in users.items():
        prop = props[opt]
        if len(classes) > 1:
            note = f"Adapter{'s' if len(who) > 1 else ''}: {', '.join(who)}."
            if opt in required_by:
                note += f" Required by: {', '.join(required_by[opt])}."
            desc = prop.get("description") or (prop.get("anyOf") or [{}])[0].get("description")
            prop["description"] = f"{desc} ({note})" if desc else note
    for prop in props.values():
        prop.pop("x-dcapix-union", None)
    out: dict[str, Any] = {"type": "object", "properties": props}
    if adapter_required:
        out["required"] = ["adapter"]
    if len(classes) == 1:
        req = [r for r in required_by if r in props]
        out["required"] = (["adapter"] if adapter_required else []) + req
    return out


def secret_settings(schema: Mapping[str, Any]) -> list[str]:
    """Names of the top-level settings of ``schema`` marked secret."""
    return [
        name
        for name, prop in (schema.get("properties") or {}).items()
        if isinstance(prop, Mapping) and _is_secret_schema(prop)
    ]


def jsonschema_kind(prop: Mapping[str, Any]) -> str:
    """The Meltano setting ``kind`` for a JSON Schema property."""
    types: list[str] = []
    t = prop.get("type")
    if isinstance(t, str):
        types = [t]
    elif isinstance(t, list):
        types = [x for x in t if x != "null"]
    for key in ("anyOf", "oneOf"):
        for sub in prop.get(key) or ():
            if isinstance(sub, Mapping):
                st = sub.get("type")
                types += [st] if isinstance(st, str) else [x for x in (st or []) if isinstance(x, str)]
    types = [x for x in dict.fromkeys(types) if x != "null"]
    if len(types) != 1:
        return "object" if {"object", "array"} & set(types) else "string"
    only = types[0]
    if only == "string":
        fmt = prop.get("format")
        if fmt == "date-time":
            return "date_iso8601"
        return "string"
    return {
        "integer": "integer",
        "number": "decimal",
        "boolean": "boolean",
        "object": "object",
        "array": "array",
    }.get(only, "string")


def meltano_settings(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Meltano ``settings:`` list for a settings schema: ``name``, ``kind``, ``label``,
    ``description``, ``sensitive`` (secrets) and ``value`` (the default, when there is one)."""
    out: list[dict[str, Any]] = []
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            continue
        item: dict[str, Any] = {
            "name": name,
            "kind": jsonschema_kind(prop),
            "label": name.replace("_", " ").title(),
        }
        if prop.get("description"):
            item["description"] = str(prop["description"])
        if _contains_secret(prop):  # a secret, or an object holding one (``auth``)
            item["sensitive"] = True
        if "default" in prop and prop["default"] is not None:
            item["value"] = prop["default"]
        out.append(item)
    return out
