"""The ``hash`` and ``mask`` transforms: a field's value replaced by a string made from its canonical
text (:func:`.columns.canonical_text`): its salted SHA-256, or a mask."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import Field

from ..ext.transforms import Transform, TransformOptions, schema_properties, with_properties
from ..types import JSONSchema, Record
from ..values import json_form
from .casting import declared_scale, with_scale
from .columns import canonical_text, is_json_column, plain, set_column, text_column

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["HashOptions", "HashTransform", "MaskOptions", "MaskTransform"]


class HashOptions(TransformOptions):
    #: The fields to replace by the hex SHA-256 of their text.
    fields: list[str] = Field(min_length=1)
    #: Prepended to the text before hashing (keep it secret; it is never logged).
    salt: str = ""


class _TextFieldsTransform(Transform):
    """Base of ``hash`` and ``mask``: each listed field becomes a nullable string made from its value
    by :meth:`text_of` (nulls stay null)."""

    def transform_schema(self, schema: JSONSchema) -> JSONSchema:
        self.require_fields(schema, self.options.fields)
        props = schema_properties(schema)
        if props is None:
            return dict(schema)
        out = dict(props)
        for f in self.options.fields:
            out[f] = {"type": ["string", "null"]}
        return with_properties(schema, out)

    def text_of(self, value: Any) -> str | None:
        raise NotImplementedError

    def apply_records(self, records: list[Record]) -> list[Record]:
        out = [dict(r) for r in records]
        in_props = schema_properties(self.input_schema) or {}
        for f in self.options.fields:
            fn: Callable[[Any], Any] = self.text_of
            scale = declared_scale(in_props.get(f))
            if scale is not None:
                fn = with_scale(fn, scale)
            for rec in out:
                if f in rec:
                    rec[f] = fn(rec[f])
        return out


class HashTransform(_TextFieldsTransform):
    """Replace values by ``sha256(salt + text)`` as 64 hex digits (nulls stay null). The text of a
    value is its canonical form: strings as they are, ``true``/``false``, integers in decimal,
    ISO dates, decimals without exponent, objects as sorted-key JSON."""

    name = "hash"
    Options = HashOptions

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        if self.options.salt:
            from ..logs import register_secret

            register_secret(self.options.salt)
        self._salt = self.options.salt.encode()

    def digest(self, value: Any) -> str | None:
        """The hex digest of one value (``None`` for ``None``)."""
        if value is None:
            return None
        text = canonical_text(value)
        data = text if isinstance(text, bytes) else text.encode()
        return hashlib.sha256(self._salt + data).hexdigest()

    text_of = digest

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        salt = self._salt
        sha = hashlib.sha256
        for f in self.options.fields:
            if f not in table.column_names:
                continue
            texts = text_column(table, f)
            digests = [
                None if t is None else sha(salt + (t if isinstance(t, bytes) else t.encode())).hexdigest()
                for t in texts
            ]
            table = set_column(table, f, pa.array(digests, type=pa.string()), {"type": ["string", "null"]})
        return table


class MaskOptions(TransformOptions):
    #: The fields to mask.
    fields: list[str] = Field(min_length=1)
    #: The constant that replaces each non-null value (when ``keep_last`` is not set).
    value: str = "****"
    #: Keep the last N characters and replace the others by ``mask_char`` (values of N characters
    #: or fewer are masked entirely).
    keep_last: int | None = Field(default=None, ge=1)
    #: The character used with ``keep_last``.
    mask_char: str = Field(default="*", min_length=1, max_length=1)


class MaskTransform(_TextFieldsTransform):
    """Mask values: a constant, or all but the last ``keep_last`` characters. Nulls stay null."""

    name = "mask"
    Options = MaskOptions

    def mask(self, value: Any) -> str | None:
        o: MaskOptions = self.options
        if value is None:
            return None
        if o.keep_last is None:
            return o.value
        text = self._text_for_mask(value)
        assert text is not None
        n = o.keep_last
        if len(text) <= n:
            return o.mask_char * len(text)
        return o.mask_char * (len(text) - n) + text[-n:]

    text_of = mask

    def apply_arrow(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.types as pt

        o: MaskOptions = self.options
        prop = {"type": ["string", "null"]}
        for f in self.options.fields:
            if f not in table.column_names:
                continue
            col = plain(table.column(f))
            if o.keep_last is None:
                result = pc.if_else(pc.is_valid(col), pa.scalar(o.value), pa.scalar(None, pa.string()))
            else:
                if is_json_column(table.schema.field(f)):
                    text = pa.array(
                        [
                            None if v is None else self._text_for_mask(orjson.loads(v))
                            for v in col.to_pylist()
                        ],
                        type=pa.string(),
                    )
                elif pt.is_string(col.type) or pt.is_large_string(col.type):
                    text = col
                elif pt.is_integer(col.type) or pt.is_boolean(col.type):
                    text = pc.cast(col, pa.string())
                else:
                    text = pa.array([self._text_for_mask(v) for v in col.to_pylist()], type=pa.string())
                n = o.keep_last
                length = pc.utf8_length(text)
                reveal = pc.greater(length, n)
                stars = pc.binary_repeat(
                    pa.scalar(o.mask_char),
                    pc.fill_null(pc.if_else(reveal, pc.subtract(length, n), length), 0),
                )
                tail = pc.if_else(reveal, pc.utf8_slice_codeunits(text, start=-n), pa.scalar(""))
                result = pc.if_else(
                    pc.is_valid(text),
                    pc.binary_join_element_wise(stars, tail, ""),
                    pa.scalar(None, pa.string()),
                )
            table = set_column(table, f, result, prop)
        return table

    @staticmethod
    def _text_for_mask(value: Any) -> str | None:
        if value is None:
            return None
        text = canonical_text(value)
        return json_form(text) if isinstance(text, bytes) else text  # bytes: base64
