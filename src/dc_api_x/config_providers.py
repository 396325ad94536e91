"""Built-in plugin: the configuration providers ``defaults`` < ``file`` < ``env``.

* ``defaults`` (priority 0): the ``defaults`` mapping given to :func:`~dc_api_x.config.load_settings`
  (the model's own defaults apply below everything).
* ``file`` (priority 10): the ``file`` given to ``load_settings`` — YAML (``.yaml``/``.yml``), TOML
  (``.toml``, :mod:`tomllib`) or JSON (``.json``), chosen by suffix. A file given but missing is a
  :class:`~dc_api_x.exceptions.ConfigError` naming it.
* ``env`` (priority 20): environment variables ``{prefix}FIELD`` (``DCAPIX_TIMEOUT``), nested fields
  with ``__`` (``DCAPIX_DB__HOST``), read with pydantic-settings' ``EnvSettingsSource`` when a model
  is known; values that look like JSON (``{…}``, ``[…]``) are parsed as JSON.

Nothing heavy is imported here; pyyaml and pydantic-settings are imported when a provider loads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .ext.config import ConfigProvider

if TYPE_CHECKING:  # pragma: no cover
    from .plugins import Registry

__all__ = ["DefaultsProvider", "EnvProvider", "FileProvider", "register_config_providers"]


class DefaultsProvider(ConfigProvider):
    """The ``defaults`` mapping given to ``load_settings`` (lowest priority)."""

    name = "defaults"
    priority: ClassVar[int] = 0

    def load(self) -> dict[str, Any]:
        return _plain_dict(self.defaults)


class FileProvider(ConfigProvider):
    """A YAML, TOML or JSON config file, chosen by its suffix."""

    name = "file"
    priority: ClassVar[int] = 10
    suffixes: ClassVar[dict[str, str]] = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}

    def load(self) -> dict[str, Any]:
        if not self.file:
            return {}
        path = Path(self.file).expanduser()
        fmt = self.suffixes.get(path.suffix.lower())
        if fmt is None:
            raise self.error(
                f"{str(path)!r}: unknown config file type {path.suffix or '(no suffix)'!r}; "
                "use .yaml, .yml, .toml or .json",
                field="file",
            )
        if not path.is_file():
            raise self.error(f"config file {str(path)!r} does not exist", field="file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise self.error(f"cannot read config file {str(path)!r}: {exc}", field="file") from None
        try:
            data = _parse(text, fmt)
        except Exception as exc:
            msg = " ".join(str(exc).split())
            raise self.error(
                f"config file {str(path)!r} is not valid {fmt.upper()}: {msg}", field="file"
            ) from None
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise self.error(
                f"config file {str(path)!r}: the top level must be a mapping, got {type(data).__name__}",
                field="file",
            )
        return _plain_dict(data)


def _parse(text: str, fmt: str) -> Any:
    if fmt == "json":
        return json.loads(text)
    if fmt == "toml":
        import tomllib

        return tomllib.loads(text)
    import yaml

    return yaml.safe_load(text)


class EnvProvider(ConfigProvider):
    """Environment variables ``{prefix}FIELD`` and ``{prefix}PARENT__CHILD`` (highest built-in)."""

    name = "env"
    priority: ClassVar[int] = 20
    nested_delimiter: ClassVar[str] = "__"

    def load(self) -> dict[str, Any]:
        if self.model is not None:
            return self._load_model()
        return self._load_all()

    def _load_model(self) -> dict[str, Any]:
        from pydantic_settings import EnvSettingsSource, SettingsError

        assert self.model is not None
        try:
            source = EnvSettingsSource(
                self.model,  # type: ignore[arg-type]
                env_prefix=self.env_prefix,
                env_nested_delimiter=self.nested_delimiter,
                case_sensitive=False,
            )
            data = source()
        except SettingsError as exc:
            raise self.error(f"{exc} (environment variables {self.env_prefix}*)") from None
        out = {}
        for key, value in data.items():
            field = self.model.model_fields.get(key)
            if isinstance(value, str) and (field is None or field.annotation is not str):
                value = _maybe_json(value)
            out[key] = value
        return out

    def _load_all(self) -> dict[str, Any]:
        prefix = self.env_prefix.lower()
        out: dict[str, Any] = {}
        for var, value in os.environ.items():
            low = var.lower()
            if not low.startswith(prefix) or len(low) == len(prefix):
                continue
            parts = [p for p in low[len(prefix) :].split(self.nested_delimiter)]
            if not all(parts):
                continue
            node = out
            for part in parts[:-1]:
                nxt = node.get(part)
                if not isinstance(nxt, dict):
                    nxt = node[part] = {}
                node = nxt
            node[parts[-1]] = _maybe_json(value)
        return out


def _maybe_json(value: str) -> Any:
    """``value`` parsed as JSON when it looks like a JSON object or array, else unchanged."""
    text = value.strip()
    if (text.startswith("{") and text.endswith("}")) or (text.startswith("[") and text.endswith("]")):
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def _plain_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): _plain_dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def register_config_providers(registry: Registry) -> None:
    """Register the built-in config providers."""
    registry.register("defaults", DefaultsProvider)
    registry.register("file", FileProvider)
    registry.register("env", EnvProvider)
