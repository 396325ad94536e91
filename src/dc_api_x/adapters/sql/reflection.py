"""The ``sql_reflection`` schema provider: a table's (or a custom query's) JSON Schema by SQL reflection,
through the ``sql`` adapter's discovery (registered by :mod:`dc_api_x.schemas`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ...config import OptionsModel
from ...exceptions import ConfigError
from ...ext.schemas import SchemaProvider
from ...types import JSONSchema
from .adapter import SQLAdapter

__all__ = ["SQLReflectionOptions", "SQLReflectionSchemaProvider"]


class SQLReflectionOptions(OptionsModel):
    """Options of the ``sql_reflection`` schema provider."""

    url: str | None = Field(default=None, json_schema_extra={"secret": True})
    schema_: str | None = Field(default=None, alias="schema")
    engine_options: dict[str, Any] = Field(default_factory=dict)


class SQLReflectionSchemaProvider(SchemaProvider):
    """The JSON Schema of a table (or a custom query) from SQL reflection.

    Context: ``table`` (or ``stream``) and optionally ``schema``, or ``query``; the database is the
    ``url`` option, or an ``engine``/``connection``/``url`` passed in the context.
    """

    name = "sql_reflection"
    Options = SQLReflectionOptions

    def schema(self, **context: Any) -> JSONSchema:
        url = context.get("url") or self.options.url
        engine = context.get("engine")
        connection = context.get("connection")
        if engine is not None or connection is not None:
            bind: Any = connection if connection is not None else engine
            url = str(bind.engine.url.render_as_string(hide_password=False))
        if not url:
            raise ConfigError(
                "schema provider 'sql_reflection': needs the 'url' option (or an engine)",
                plugin="schema provider 'sql_reflection'",
                field="url",
            )
        table = context.get("table") or context.get("stream")
        query = context.get("query")
        if not table and not query:
            raise ConfigError(
                "schema provider 'sql_reflection': needs 'table' (or 'query') in the context",
                plugin="schema provider 'sql_reflection'",
                field="table",
            )
        schema = context.get("schema") or self.options.schema_
        stream: dict[str, Any] = (
            {"name": str(context.get("stream") or "query"), "query": query}
            if query
            else {"name": str(context.get("stream") or table), "table": table, "schema": schema}
        )
        opts = {"url": url, "streams": [stream], "engine_options": self.options.engine_options}
        with SQLAdapter(opts) as ad:
            spec = ad.discover()[0]
        return dict(spec.schema)
