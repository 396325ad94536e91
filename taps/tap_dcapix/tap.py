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

import contextlib
import json
import sys
import typing as t
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import click
from singer_sdk import Tap

from dc_api_x.exceptions import ConfigError, DcApiXError
from dc_api_x.meltano import TAP_CAPABILITIES, sdk_capabilities
from dc_api_x.singer_settings import SettingsSchema
from dc_api_x.types import StreamSpec

from .streams import AdapterStream
from .writer import FastSingerWriter

if t.TYPE_CHECKING:  # pragma: no cover
    from singer_sdk.helpers.capabilities import CapabilitiesEnum

__all__ = ["TAP_KEYS", "TapDcApiX", "adapter_config", "full_settings", "singer_keys"]

#: Config keys the tap itself consumes (never passed to the adapter).
TAP_KEYS = frozenset({"transforms", "concurrency", "partitions"})

TRANSFORMS_SCHEMA: dict[str, Any] = {
    "type": ["array", "null"],
    "items": {"type": ["object", "string"]},
    "description": "dc-api-x transforms applied to every batch before it is emitted, in order: "
    '[{"type": NAME, ...options}] (a bare string is a transform without options).',
}


CONCURRENCY_SCHEMA: dict[str, Any] = {
    "type": ["integer", "null"],
    "minimum": 1,
    "description": "partitions of a stream read at the same time (docs/scale.md); each STATE covers "
    "only records already emitted",
}
PARTITIONS_SCHEMA: dict[str, Any] = {
    "type": ["integer", "null"],
    "minimum": 1,
    "description": "split a stream into at most this many partitions (default: concurrency)",
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
    except ImportError:  # pragma: no cover - a singer-sdk dependency today
        pass
    return tuple(errs)


@contextlib.contextmanager
def _one_line_errors(name: str) -> Iterator[None]:
    """dc-api-x errors and unreadable input files end the command with one line on stderr and exit
    code 1 (no traceback). Wraps every callback of the SDK's command: the eager ``--config``,
    ``--discover`` and ``--test`` options and the run itself."""
    try:
        yield
    except DcApiXError as exc:
        _fail(name, str(exc))
    except _input_errors() as exc:
        what = "cannot read an input file" if isinstance(exc, OSError) else "input is not valid JSON"
        _fail(name, f"{what}: {type(exc).__name__}: {exc}")


def _fail(name: str, message: str) -> t.NoReturn:
    from dc_api_x.logs import redact

    sys.stdout.flush()
    print(f"{name}: error: {redact(message)}", file=sys.stderr)
    sys.exit(1)


def _run_settings() -> dict[str, Any]:
    """The tap's own settings, documented but never rejected here (the tap's checks name the setting)."""
    return {
        "type": "object",
        "properties": {
            "adapter": {"description": "The dc-api-x adapter to read from"},
            "transforms": {"description": TRANSFORMS_SCHEMA["description"]},
            "concurrency": {"description": CONCURRENCY_SCHEMA["description"]},
            "partitions": {"description": PARTITIONS_SCHEMA["description"]},
        },
    }


def _complete_settings(plugins: Any) -> dict[str, Any]:
    """``adapter`` + the union of every registered adapter's options + ``transforms``."""
    from dc_api_x.singer_settings import adapter_settings_schema

    schema = adapter_settings_schema(plugins=plugins)
    schema["properties"]["transforms"] = dict(TRANSFORMS_SCHEMA)
    schema["properties"]["concurrency"] = dict(CONCURRENCY_SCHEMA)
    schema["properties"]["partitions"] = dict(PARTITIONS_SCHEMA)
    return schema


_SETTINGS = SettingsSchema(_run_settings, _complete_settings)


def full_settings(enabled: bool = True) -> None:
    """Make ``TapDcApiX.config_jsonschema`` the complete schema (``--about``, ``--config ENV``)."""
    _SETTINGS.complete = enabled


class TapDcApiX(Tap):
    """Singer tap for any dc-api-x source adapter (SQL, HTTP, files, plugins)."""

    name = "tap-dcapix"
    package_name = "dc-api-x"
    message_writer_class = FastSingerWriter
    dynamic_catalog = True

    capabilities: t.ClassVar[list[CapabilitiesEnum]] = sdk_capabilities(TAP_CAPABILITIES)

    _adapter: Any = None

    # ------------------------------------------------------------------ settings
    #: ``adapter`` + ``transforms`` (+ every adapter's options for ``--about``: :class:`SettingsSchema`)
    config_jsonschema = _SETTINGS  # type: ignore[assignment]

    def __init__(self, *, parse_env_config: bool = False, **kwargs: Any) -> None:
        if parse_env_config:
            full_settings()  # singer-sdk reads the env vars of the settings it knows
        super().__init__(parse_env_config=parse_env_config, **kwargs)

    @classmethod
    def print_about(cls, output_format: str | None = None) -> None:
        """``--about``: every setting of every registered adapter."""
        full_settings()
        super().print_about(output_format)

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Validate with the adapter's own pydantic model (one error naming the field). singer-sdk's
        validation against ``config_jsonschema`` cannot be used: with ``--config ENV`` that is the
        union of every adapter's options, and its validator would copy other adapters' option
        defaults into the config (e.g. the HTTP adapter's stream defaults into SQL streams)."""
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
        """The adapter class and its options, validated by the adapter's own pydantic model (one
        error naming the setting)."""
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
        from dc_api_x.ext.transforms import build_transforms

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
    # The SDK's command calls these classmethods; each ends a dc-api-x error in one line.
    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> Any:
        with _one_line_errors(cls.name):
            return super().cb_config(ctx, param, value)

    @classmethod
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        with _one_line_errors(cls.name):
            super().cb_discover(ctx, param, value)

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        with _one_line_errors(cls.name):
            super().cb_test(ctx, param, value)

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
        """Run the sync (the SDK's ``Tap.invoke``, plus flushing the writer and closing the adapter).
        ``config`` is what the SDK's ``--config`` callback returned (``.config``, ``.parse_env``)."""
        if about:
            cls.print_about(about_format)
            sys.exit(0)
        with _one_line_errors(cls.name):
            cls.print_version(print_fn=cls.logger.info)
            tap = cls(
                config=dict(getattr(config, "config", None) or {}),
                state=None if state is None else json.loads(state.read(), parse_float=Decimal),
                catalog=None if catalog is None else json.loads(catalog.read(), parse_float=Decimal),
                parse_env_config=bool(getattr(config, "parse_env", False)),
                validate_config=True,
            )
            from .cli import startup_done

            startup_done()  # the console script's start-up without the cyclic GC ends here
            try:
                tap.sync_all()
                writer = tap.message_writer
                if isinstance(writer, FastSingerWriter):
                    writer.flush()
            finally:
                tap.close()


if __name__ == "__main__":  # pragma: no cover
    TapDcApiX.cli()
