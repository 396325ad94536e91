"""Base class of schema providers: plugins that produce a stream's JSON Schema.

A schema provider answers one question — *what is the JSON Schema of this stream?* — from some
source of truth: SQL reflection, Arrow/Parquet metadata, sample records, a JSON Schema file, a
registry service … Providers are registered by plugins (``register_schema_providers``) and created
from config like every ``{type: NAME, …}`` plugin::

    from dc_api_x import create_plugin

    provider = create_plugin("schema_providers", {"type": "infer", "sample_size": 500})
    schema = provider.schema(records=sample)

Writing one::

    class RegistrySchemaProvider(SchemaProvider):
        name = "my_registry"

        class Options(SchemaProvider.Options):
            url: str

        def schema(self, **context):
            return fetch_schema(self.options.url, context["stream"])

The contract is small on purpose:

* ``Options`` is a pydantic model (unknown options are errors); the validated options are
  ``self.options``.
* :meth:`SchemaProvider.schema` takes keyword *context* and returns a JSON Schema object
  (``{"type": "object", "properties": {…}}``) following the type conventions of
  :mod:`dc_api_x.arrow`. Well-known context keys (a provider uses the ones it needs and raises
  :class:`~dc_api_x.exceptions.ConfigError` naming itself when a required one is missing):

  ======================  ====================================================================
  ``stream``              the stream name (``str``)
  ``records``             sample records (an iterable of dicts)
  ``arrow_schema``        a :class:`pyarrow.Schema`
  ``path``                a file path or URL
  ``table``               a table name; ``connection``/``engine``: a live SQL connection/engine
  ======================  ====================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from ..config import OptionsModel, merge_options, validate_options
from ..exceptions import ConfigError
from ..types import JSONSchema

__all__ = ["SchemaProvider", "SchemaProviderOptions"]


class SchemaProviderOptions(OptionsModel):
    """Base options model of a schema provider (no options)."""


class SchemaProvider:
    """Produces a stream's JSON Schema. Subclasses set :attr:`name`, :attr:`Options` and implement
    :meth:`schema`."""

    #: The registry name (``type:`` in config).
    name: ClassVar[str] = ""
    #: The pydantic model of this provider's options.
    Options: ClassVar[type[BaseModel]] = SchemaProviderOptions

    def __init__(self, options: Mapping[str, Any] | BaseModel | None = None, /, **kwargs: Any) -> None:
        merged = merge_options(options, kwargs)
        self.options: Any = validate_options(self.Options, merged, plugin=f"schema provider {self.name!r}")

    def schema(self, **context: Any) -> JSONSchema:
        """The JSON Schema (an ``object`` schema with ``properties``) for this context."""
        raise NotImplementedError(f"schema provider {self.name!r} does not implement schema()")

    def require(self, context: Mapping[str, Any], key: str) -> Any:
        """``context[key]``, or a :class:`ConfigError` naming this provider and the missing key."""
        if context.get(key) is None:
            raise ConfigError(
                f"schema provider {self.name!r}: {key!r} is required",
                plugin=f"schema provider {self.name!r}",
                field=key,
            )
        return context[key]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} schema provider={self.name!r}>"
