"""``dcapix meltano-snippet``: a Meltano custom-plugin definition for an adapter configuration.

::

    dcapix meltano-snippet --adapter sql --url sqlite:///data/shop.sqlite --set streams='["orders"]'
    dcapix meltano-snippet --loader --adapter parquet --path output
    dcapix meltano-snippet --config source.json --format ref > tap-dcapix.yml
    meltano add --plugin-type extractor tap-dcapix --from-ref tap-dcapix.yml --no-install

The definition is *custom* (it has ``namespace``), so Meltano never asks Meltano Hub; it declares
the capabilities the plugin really has (``state`` among them, without which Meltano would never
pass ``--state``) and a ``settings:`` list generated from the adapter's pydantic options (kinds,
descriptions, ``sensitive: true`` for secrets). The options given are validated by the adapter
(one error line naming the field); secret values are never printed (a URL without credentials
excepted): they are left to the ``TAP_DCAPIX_<SETTING>`` / ``TARGET_DCAPIX_<SETTING>`` environment
variables.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .exceptions import ConfigError

__all__ = [
    "TAP_CAPABILITIES",
    "TARGET_CAPABILITIES",
    "add_commands",
    "plugin_definition",
    "render_snippet",
    "sdk_capabilities",
]

#: The capabilities of tap-dcapix — the one list: the tap declares exactly these (through
#: :func:`sdk_capabilities`) and Meltano must know them (``state``: Meltano passes ``--state``).
TAP_CAPABILITIES = (
    "catalog",
    "state",
    "discover",
    "test",
    "about",
    "stream-maps",
    "schema-flattening",
    "batch",
    "structured-logging",
)
#: The capabilities of target-dcapix (the target declares exactly these).
TARGET_CAPABILITIES = (
    "about",
    "stream-maps",
    "schema-flattening",
    "structured-logging",
    "activate-version",
    "batch",
    "validate-records",
    "hard-delete",
)

DEFAULT_PIP_URL = "dc-api-x[singer,sql,files,http]"


def sdk_capabilities(names: Sequence[str]) -> list[Any]:
    """singer-sdk's capability enum members for ``names`` (what a tap/target class declares).

    :raises ValueError: for a name singer-sdk does not know.
    """
    from singer_sdk.helpers.capabilities import PluginCapabilities, TapCapabilities, TargetCapabilities

    known: dict[str, Any] = {}
    for enum in (PluginCapabilities, TapCapabilities, TargetCapabilities):
        for member in enum:
            known.setdefault(str(member.value), member)
    try:
        return [known[n] for n in names]
    except KeyError as exc:
        raise ValueError(f"singer-sdk knows no capability {exc.args[0]!r}") from None


def plugin_definition(
    config: Mapping[str, Any],
    *,
    kind: str = "extractor",
    name: str | None = None,
    pip_url: str = DEFAULT_PIP_URL,
    plugins: Any = None,
) -> dict[str, Any]:
    """The Meltano plugin definition (a dict) for an endpoint config ``{"adapter": NAME, …}``.

    :param kind: ``extractor`` (tap-dcapix) or ``loader`` (target-dcapix).
    :param name: the plugin name in meltano.yml (default: the executable name); another name
        inherits nothing and keeps ``namespace`` / ``executable`` of the real plugin.
    :raises ConfigError: no ``adapter``, or an option the adapter rejects (names the field).
    """
    from .factories import check_adapter_options
    from .plugins import get_plugins
    from .singer_settings import adapter_settings_schema, meltano_settings, secret_settings

    if kind not in ("extractor", "loader"):
        raise ConfigError(
            f"meltano-snippet: kind must be extractor or loader, not {kind!r}",
            plugin="meltano-snippet",
            field="kind",
        )
    adapter = config.get("adapter")
    if not adapter or not isinstance(adapter, str):
        raise ConfigError(
            "meltano-snippet: the config needs 'adapter' (e.g. --adapter sql)",
            plugin="meltano-snippet",
            field="adapter",
        )
    ps = plugins or get_plugins()
    cls = ps.adapters.get(adapter)
    options = {k: v for k, v in config.items() if k != "adapter"}
    check_adapter_options(adapter, cls, options)  # raises ConfigError naming the option

    executable = "tap-dcapix" if kind == "extractor" else "target-dcapix"
    schema = adapter_settings_schema(adapter, plugins=ps)
    secrets = set(secret_settings(schema)) | set(getattr(cls, "secret_options", ()) or ())
    settings = meltano_settings(schema)
    for item in settings:
        if item["name"] in secrets:
            item["sensitive"] = True
    if kind == "extractor":
        settings += [
            {
                "name": "transforms",
                "kind": "array",
                "label": "Transforms",
                "description": "dc-api-x transforms applied to every batch: [{type: NAME, ...options}]",
            },
        ]
    settings += [
        {
            "name": "stream_maps",
            "kind": "object",
            "label": "Stream Maps",
            "description": "Singer SDK inline stream maps",
        },
        {"name": "flattening_enabled", "kind": "boolean", "label": "Flattening Enabled"},
        {"name": "flattening_max_depth", "kind": "integer", "label": "Flattening Max Depth"},
    ]
    cfg = {"adapter": adapter}
    cfg.update({k: v for k, v in options.items() if k not in secrets or _credential_free(v)})
    definition: dict[str, Any] = {
        "name": name or executable,
        "namespace": executable.replace("-", "_"),
        "pip_url": pip_url,
        "executable": executable,
        "capabilities": list(TAP_CAPABILITIES if kind == "extractor" else TARGET_CAPABILITIES),
        "settings": settings,
        "config": cfg,
    }
    return definition


def _credential_free(value: Any) -> bool:
    """True for a "secret" option value that holds no credential (a URL without a password, such
    as ``sqlite:///shop.db``): it may be printed; anything else is left to environment variables."""
    from .logs import redact, redact_url

    if not isinstance(value, str) or "://" not in value:
        return False
    return redact_url(value) == value and redact(value) == value and "@" not in value.split("://", 1)[1]


def render_snippet(definition: Mapping[str, Any], *, fmt: str = "project") -> str:
    """YAML text: ``project`` → a ``plugins:`` block for meltano.yml; ``ref`` → the bare definition
    for ``meltano add --from-ref``."""
    import yaml

    data: Any = dict(definition)
    if fmt == "project":
        kind = "extractors" if definition["executable"] == "tap-dcapix" else "loaders"
        data = {"plugins": {kind: [dict(definition)]}}
    elif fmt != "ref":
        raise ConfigError(
            f"meltano-snippet: unknown format {fmt!r} (project or ref)",
            plugin="meltano-snippet",
            field="format",
        )
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False))


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _load_config_file(path: str) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"meltano-snippet: cannot read {path}: {exc.strerror}", plugin="meltano-snippet", field="config"
        ) from None
    import yaml

    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"meltano-snippet: {path} is not valid JSON/YAML: {exc}", plugin="meltano-snippet", field="config"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"meltano-snippet: {path} must hold a mapping", plugin="meltano-snippet", field="config"
        )
    return data


def _cmd_snippet(args: argparse.Namespace) -> int:
    config: dict[str, Any] = _load_config_file(args.config) if args.config else {}
    if args.adapter:
        config["adapter"] = args.adapter
    for key in ("url", "path", "base_url"):
        value = getattr(args, key)
        if value is not None:
            config[key] = value
    for item in args.set or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"meltano-snippet: --set expects KEY=VALUE, got {item!r}",
                plugin="meltano-snippet",
                field="set",
            )
        config[key.strip()] = _parse_value(value)
    definition = plugin_definition(
        config,
        kind="loader" if args.loader else "extractor",
        name=args.name,
        pip_url=args.pip_url,
    )
    sys.stdout.write(render_snippet(definition, fmt=args.format))
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``meltano-snippet`` to the ``dcapix`` command line."""
    p = subparsers.add_parser(
        "meltano-snippet",
        help="print a Meltano custom plugin definition (YAML) for an adapter configuration",
        description="Print a Meltano custom plugin definition for tap-dcapix (or target-dcapix with "
        "--loader): namespace, pip_url, executable, capabilities, settings generated from the "
        "adapter's options, and the given config (secrets left to environment variables).",
    )
    p.add_argument("--adapter", help="adapter name (sql, http, parquet, csv, jsonl, or a plugin's)")
    p.add_argument("--url", help="the adapter's url option (e.g. a SQLAlchemy URL)")
    p.add_argument("--path", help="the adapter's path option")
    p.add_argument("--base-url", dest="base_url", help="the adapter's base_url option (http)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any other option (VALUE parsed as JSON when it is JSON); repeatable",
    )
    p.add_argument("--config", help="a JSON/YAML file with the endpoint config {adapter: NAME, ...}")
    p.add_argument("--loader", action="store_true", help="a target-dcapix (loader) definition")
    p.add_argument("--name", help="plugin name in meltano.yml (default: the executable name)")
    p.add_argument(
        "--pip-url",
        dest="pip_url",
        default=DEFAULT_PIP_URL,
        help=f"pip_url of the plugin (default: {DEFAULT_PIP_URL}; '-e .' in a checkout)",
    )
    p.add_argument(
        "--format",
        choices=("project", "ref"),
        default="project",
        help="project: a plugins: block for meltano.yml; ref: for meltano add --from-ref",
    )
    p.set_defaults(func=_cmd_snippet)
