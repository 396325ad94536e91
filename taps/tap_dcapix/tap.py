"""``tap-dcapix``: a singer-sdk Tap whose streams are served by any dc-api-x adapter.

The config names a source adapter and its options, exactly as ``dcapix`` endpoint configs do::

    {"adapter": "sql", "url": "sqlite:////data/shop.sqlite", "streams": ["customers", "orders"]}
    {"adapter": "http", "base_url": "https://api.example.com", "streams": [{"name": "users", ...}]}
    {"adapter": "parquet", "path": "/data/in"}

plus the SDK's own settings (``stream_maps``, ``flattening_*``, ``batch_config`` …) and an optional
``transforms`` list (dc-api-x transform plugins applied to every batch). The adapter is created
through the registry (``dc_api_x.create_adapter``), so adapters registered by third-party plugins
work the same way as the built-ins.

Errors in the config, the catalog or the source end the process with exit code 1 and **one** line
on stderr naming the adapter, stream or field (secrets redacted).
"""

from __future__ import annotations

import sys
import typing as t
from collections.abc import Mapping, Sequence
from typing import Any

import click
from singer_sdk import Tap
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.plugin_base import SingerCommand

from dc_api_x.exceptions import ConfigError, DcApiXError
from dc_api_x.meltano import TAP_CAPABILITIES, sdk_capabilities
from dc_api_x.types import StreamSpec

from .streams import AdapterStream
from .writer import FastSingerWriter

if t.TYPE_CHECKING:  # pragma: no cover
    from singer_sdk.helpers.capabilities import CapabilitiesEnum

__all__ = ["TAP_KEYS", "TapDcApiX", "adapter_config", "singer_keys"]

#: Config keys the tap itself consumes (never passed to the adapter).
TAP_KEYS = frozenset({"transforms"})

_SETTINGS_CACHE: dict[int, dict[str, Any]] = {}

TRANSFORMS_SCHEMA: dict[str, Any] = {
    "type": ["array", "null"],
    "items": {"type": ["object", "string"]},
    "description": "dc-api-x transforms applied to every batch before it is emitted, in order: "
    '[{"type": NAME, ...options}] (a bare string is a transform without options).',
}


def singer_keys(cls: type[Tap]) -> frozenset[str]:
    """The SDK's built-in setting names for ``cls`` (stream maps, flattening, batch …)."""
    schema: dict[str, Any] = {"properties": {}}
    cls.append_builtin_config(schema)
    return frozenset(schema["properties"])


def adapter_config(cls: type[Tap], config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a tap config that configures the adapter (``adapter`` + its options)."""
    skip = singer_keys(cls) | TAP_KEYS
    return {k: v for k, v in config.items() if k not in skip}


def _input_errors() -> tuple[type[BaseException], ...]:
    """Errors reading the --config/--state/--catalog files: reported in one line too."""
    import json

    import orjson

    errs: list[type[BaseException]] = [
        FileNotFoundError,
        IsADirectoryError,
        PermissionError,
        json.JSONDecodeError,
        orjson.JSONDecodeError,
    ]
    try:
        import simplejson

        errs.append(simplejson.JSONDecodeError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


class _Command(SingerCommand):
    """The SDK command, ending with one line on stderr for dc-api-x errors and unreadable
    input files (no traceback)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except DcApiXError as exc:
            self._fail(str(exc))
        except _input_errors() as exc:
            what = "cannot read an input file" if isinstance(exc, OSError) else "input is not valid JSON"
            self._fail(f"{what}: {type(exc).__name__}: {exc}")

    def _fail(self, message: str) -> t.NoReturn:
        from dc_api_x.logs import redact

        sys.stdout.flush()
        print(f"{self.name}: error: {redact(message)}", file=sys.stderr)
        sys.exit(1)


class TapDcApiX(Tap):
    """Singer tap for any dc-api-x source adapter (SQL, HTTP, files, plugins)."""

    name = "tap-dcapix"
    package_name = "dc-api-x"
    message_writer_class = FastSingerWriter
    dynamic_catalog = True

    capabilities: t.ClassVar[list[CapabilitiesEnum]] = sdk_capabilities(TAP_CAPABILITIES)

    _adapter: Any = None

    # ------------------------------------------------------------------ settings
    @classproperty
    def config_jsonschema(cls) -> dict:  # type: ignore[override]
        """``adapter`` + the union of every registered adapter's options + ``transforms``."""
        from dc_api_x.plugins import get_plugins
        from dc_api_x.singer_settings import adapter_settings_schema

        ps = get_plugins()
        key = id(ps)
        if key not in _SETTINGS_CACHE:
            schema = adapter_settings_schema(plugins=ps)
            schema["properties"]["transforms"] = dict(TRANSFORMS_SCHEMA)
            _SETTINGS_CACHE.clear()
            _SETTINGS_CACHE[key] = schema
        return _SETTINGS_CACHE[key]

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Validate with the adapter's own pydantic model (one error naming the field) instead of
        the union JSON Schema (which would inject other adapters' defaults into the config)."""
        errors: list[str] = []
        try:
            self._adapter_options()
            self._check_transforms()
        except DcApiXError as exc:
            if raise_errors:
                raise
            errors.append(str(exc))
            self.logger.warning("config: %s", exc)
        return errors

    def _adapter_options(self) -> tuple[type, dict[str, Any]]:
        from dc_api_x.factories import check_adapter_options
        from dc_api_x.plugins import get_plugins

        cfg = adapter_config(type(self), self.config)
        name = cfg.get("adapter")
        if not name or not isinstance(name, str):
            raise ConfigError(
                f"{self.name}: setting 'adapter' is required (the dc-api-x adapter to "
                f"read from, e.g. sql, http, parquet)",
                plugin=self.name,
                field="adapter",
            )
        cls = get_plugins().adapters.get(name)
        options = {k: v for k, v in cfg.items() if k != "adapter"}
        check_adapter_options(name, cls, options)
        return cls, options

    # ------------------------------------------------------------------ adapter + transforms
    @property
    def adapter(self) -> Any:
        """The source adapter (created on first use from the config)."""
        if self._adapter is None:
            from dc_api_x.plugins import create_adapter

            self._adapter = create_adapter(adapter_config(type(self), self.config))
        return self._adapter

    def close(self) -> None:
        """Close the adapter (connections, files)."""
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None

    def _check_transforms(self) -> list[Any]:
        specs = self.config.get("transforms")
        if not specs:
            return []
        if not isinstance(specs, Sequence) or isinstance(specs, (str, bytes)):
            raise ConfigError(
                f"{self.name}: setting 'transforms' must be a list of {{type: NAME, ...options}}",
                plugin=self.name,
                field="transforms",
            )
        return list(specs)

    def transform_chain(self, spec: StreamSpec) -> Any:
        """The stream's transform chain from the ``transforms`` setting, or ``None``."""
        specs = self._check_transforms()
        if not specs:
            return None
        try:
            from dc_api_x.ext.transforms import build_transforms  # type: ignore[attr-defined]
        except ImportError:
            raise ConfigError(
                f"{self.name}: setting 'transforms': transforms are not available in this "
                "dc-api-x installation",
                plugin=self.name,
                field="transforms",
            ) from None
        return build_transforms(specs, dict(spec.schema), stream=spec.name)

    # ------------------------------------------------------------------ streams
    def discover_streams(self) -> list[AdapterStream]:  # type: ignore[override]
        """One stream per stream the adapter discovers. A catalog that selects a stream the
        adapter does not have is an error naming that stream."""
        specs = self.adapter.discover()
        streams = [AdapterStream(self, spec, self.transform_chain(spec)) for spec in specs]
        catalog = self.input_catalog
        if catalog is not None:
            known = {s.name for s in streams}
            for entry in catalog.streams:
                sid = entry.tap_stream_id or entry.stream
                if sid in known:
                    continue
                root = entry.metadata.root
                if root.selected is False:
                    self.logger.warning(
                        "catalog stream %r is not provided by adapter %r (not selected)",
                        sid,
                        self.adapter.name,
                    )
                    continue
                raise ConfigError(
                    f"{self.name}: catalog stream {sid!r} is not provided by adapter "
                    f"{self.adapter.name!r}; its streams: {', '.join(sorted(known)) or '(none)'}",
                    plugin=self.name,
                    field="catalog",
                )
        return streams

    # ------------------------------------------------------------------ CLI
    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        command.__class__ = _Command
        return command

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: Any = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        """Run the sync (the SDK's ``Tap.invoke``, plus flushing the writer and closing the adapter)."""
        from singer_sdk.helpers._util import load_json
        from singer_sdk.plugin_base import _ConfigInput

        if about:
            cls.print_about(about_format)
            sys.exit(0)
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        tap = cls(
            config=config.config,
            state=None if state is None else load_json(state.read()),
            catalog=None if catalog is None else load_json(catalog.read()),
            parse_env_config=config.parse_env,
            validate_config=True,
        )
        try:
            tap.sync_all()
            writer = tap.message_writer
            if isinstance(writer, FastSingerWriter):
                writer.flush()
        finally:
            tap.close()


if __name__ == "__main__":  # pragma: no cover
    TapDcApiX.cli()
