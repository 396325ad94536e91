"""JSON Schema ⇄ Arrow conversions used by the batch type and by every columnar adapter.

:mod:`pyarrow` is imported inside the functions, never at module import, so importing this module is
cheap. The JSON Schema conventions (shared by every adapter) are:

=====================================================  =============================================
JSON Schema                                            Arrow
=====================================================  =============================================
``integer``                                            ``int64``
``number``                                             ``float64``
``string`` or ``number`` + ``format: decimal``         ``decimal128(p, s)`` (``string`` when the
(+ ``x-precision``, ``x-scale``)                       precision is unknown: never a float)
``integer`` + ``format: decimal`` (or an ``integer``   ``decimal128(p, 0)``, ``p`` = ``x-precision``
with ``x-precision`` of 19 or more)                    or 38 (``decimal256`` above 38)
``boolean``                                            ``bool``
``string`` + ``format: date-time``                     ``timestamp[us, tz=UTC]``
… + ``x-timezone: false``                              ``timestamp[us]`` (no zone)
``string`` + ``format: date``                          ``date32``
``string`` + ``format: time``                          ``time64[us]``
``string`` + ``contentEncoding: base64``               ``binary``
``object`` with ``properties``                         ``struct`` (recursively)
``object`` without properties / ``x-json: true``       ``string`` holding JSON text (field metadata
                                                       ``dcapix.json = true``)
``array`` with ``items``                               ``list`` (recursively)
``string``                                             ``string``
=====================================================  =============================================

One module per concept, every name importable from here:

=======================  ==========================================================================
:mod:`.schema`           the type table above: JSON Schema ⇄ Arrow fields, ``json_types``, markers
:mod:`.records`          records → Arrow (``records_to_arrow``, ``RecordColumns``, ``ColumnarBatch``)
:mod:`.to_records`       Arrow → records (``arrow_to_records``)
:mod:`.cast`             ``cast_table``: an Arrow table cast to a schema, exactly
:mod:`.exact_numbers`    numbers a float64 / int64 would change: refused, or kept as JSON number text
:mod:`.json_text`        the JSON text of values, every number exact (``json_text``, ``json_bytes``)
:mod:`.inet`             PostgreSQL ``inet`` text forms (``inet_text``)
:mod:`.rebatch`          tables of a fixed number of rows from record batches of any sizes
=======================  ==========================================================================

:mod:`pyarrow` is imported inside the functions, never at module import, so importing this package
is cheap.
"""

from __future__ import annotations

from .cast import cast_table
from .exact_numbers import (
    InexactNumberError,
    exact_float,
    number_text,
    number_text_field,
    number_text_schema,
)
from .inet import inet_text
from .json_text import json_bytes, json_text, json_text_default
from .rebatch import rebatch
from .records import (
    ColumnarBatch,
    ConversionError,
    RecordColumns,
    conversion_message,
    records_to_arrow,
    records_to_arrow_exact,
)
from .records import _column_to_arrow as _column_to_arrow  # (used by the file adapters)
from .records import _record_columns as _record_columns  # (records → column lists)
from .schema import (
    INTEGER_DECIMAL_PRECISION,
    JSON_META,
    NUMBER_META,
    arrow_to_jsonschema,
    decimal_property,
    first_variant,
    is_json_property,
    json_types,
    jsonschema_field,
    jsonschema_to_arrow,
)
from .to_records import arrow_to_records

__all__ = [
    "INTEGER_DECIMAL_PRECISION",
    "JSON_META",
    "NUMBER_META",
    "ColumnarBatch",
    "ConversionError",
    "InexactNumberError",
    "RecordColumns",
    "arrow_to_jsonschema",
    "arrow_to_records",
    "cast_table",
    "conversion_message",
    "decimal_property",
    "exact_float",
    "first_variant",
    "inet_text",
    "is_json_property",
    "json_bytes",
    "json_text",
    "json_text_default",
    "json_types",
    "jsonschema_field",
    "jsonschema_to_arrow",
    "number_text",
    "number_text_field",
    "number_text_schema",
    "rebatch",
    "records_to_arrow",
    "records_to_arrow_exact",
]
