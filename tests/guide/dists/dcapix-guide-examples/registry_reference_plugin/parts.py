"""The entries of ``registry_reference_plugin``."""

import json
import os
import uuid

from dc_api_x.ext.config import ConfigProvider
from dc_api_x.ext.hooks import RequestHook
from dc_api_x.ext.pagination import Paginator, PaginatorOptions
from dc_api_x.ext.schemas import SchemaProvider, SchemaProviderOptions
from dc_api_x.ext.transforms import Transform, TransformOptions


class RequestIdHook(RequestHook):
    """Sends an ``X-Request-Id`` header with every request and remembers the ids it sent."""

    name = "request_id"

    def __init__(self, options=None, /, **kwargs):
        super().__init__(options, **kwargs)
        self.sent = []

    def before_request(self, request):
        request_id = uuid.uuid4().hex
        request.headers["X-Request-Id"] = request_id
        self.sent.append(request_id)


class StaticSchemaOptions(SchemaProviderOptions):
    fields: dict[str, str]


class StaticSchemaProvider(SchemaProvider):
    """The schema written in its options: ``{"fields": {"id": "integer", ...}}``."""

    name = "static_schema"
    Options = StaticSchemaOptions

    def schema(self, **context):
        props = {name: {"type": [kind, "null"]} for name, kind in self.options.fields.items()}
        return {"type": "object", "properties": props}


class SuffixOptions(TransformOptions):
    field: str
    suffix: str


class SuffixTransform(Transform):
    """Appends ``suffix`` to the string field ``field``."""

    name = "suffix"
    Options = SuffixOptions

    def transform_schema(self, schema):
        self.require_fields(schema, [self.options.field])
        return super().transform_schema(schema)

    def apply_records(self, records):
        f, sfx = self.options.field, self.options.suffix
        return [{**r, f: f"{r[f]}{sfx}"} if isinstance(r.get(f), str) else dict(r) for r in records]


class SkipTakeOptions(PaginatorOptions):
    take: int = 4


class SkipTakePaginator(Paginator):
    """``?skip=N&take=M`` pages; a page shorter than ``take`` is the last."""

    name = "skip_take"
    Options = SkipTakeOptions

    def prepare(self, request):
        request.params["skip"] = self.current_value or 0
        request.params["take"] = self.options.take

    def get_next(self, response, records):
        if len(records) < self.options.take:
            return None
        return (self.current_value or 0) + len(records)


class DotfileConfigProvider(ConfigProvider):
    """Settings from the JSON file named by ``GUIDE_DOTFILE`` (above the environment)."""

    name = "dotfile"
    priority = 30

    def load(self):
        path = os.environ.get("GUIDE_DOTFILE")
        if not path or not os.path.exists(path):
            return None
        with open(path) as fh:
            return json.load(fh)
