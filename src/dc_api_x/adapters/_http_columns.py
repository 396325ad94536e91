"""Pages of JSON records decoded straight into columns (no Python dict per record), for a stream
whose JSON Schema is simple: integer, number, boolean, string (dates and times included) and
free-form JSON properties.

A :class:`PagePlan` holds one :class:`msgspec.json.Decoder` of the page envelope (``{"records":
[...], "total": …}``): the records are structs typed by the schema, so the decode itself is the
type check, and every other top-level key of the envelope is decoded as any JSON (what a paginator
reads: ``total``, ``next``, …). :meth:`PagePlan.decode` gives a :class:`PageColumns` — the page's
records transposed into columns right after the decode, hot in cache — or ``None`` when the page
must go the ordinary way (``orjson`` into dicts), which then decides and names what is wrong:

* a number or JSON column of the page holds a long number (16+ digits in a row or a 3-digit
  exponent, :func:`~dc_api_x.values.has_long_digit_run` of the column's texts): the ordinary decode
  keeps every digit (integer columns are exact in msgspec, and refused beyond int64, string
  columns are texts: their digits change nothing; the envelope's other keys are decoded as the
  ordinary decode does, :func:`~dc_api_x.values.json_loads`, from their texts);
* msgspec refuses the body: not JSON, a value of another type than the schema's, a field the
  schema does not declare, an envelope key not seen on the first page, a missing records key.

Values: integers, strings and booleans are exact in msgspec as in orjson. A ``number`` (float64)
column is kept as the values' texts (:class:`msgspec.Raw`) and parsed by Arrow — correctly
rounded, as orjson parses them — after a check that refuses anything but plain numbers, ``-0``
(the integer 0 for orjson) and, in a non-nullable field, ``null``. A free-form JSON column is kept
as the values' texts when they are exactly what ``orjson.dumps`` of their decode gives (one check
per column); otherwise the decoded values are converted as the dict path converts them. A batch
that does not convert so is converted from its records (the dict path), which raise the
dict path's error naming the field.

When the compiled scanner is built (``dc_api_x.arrow._recordscan``, :mod:`dc_api_x.arrow.native`), a
page is first read by its ``scan_page``: one pass over the body, without the GIL, straight into one
Arrow buffer per column (no Python object per value), by the same rules as the RECORD-line scanner
of target-dcapix; it refuses anything it cannot tell exactly (a long number, a lone surrogate, a key
with an escape, a duplicate or unknown key, a value of another type, invalid JSON), and the msgspec
decode above reads the page. The Arrow view of scanned pages joins their buffers (``join``);
their fingerprint text is written from the sampled records' texts (``canonical_records``).

The dict view of a :class:`PageColumnsBatch` (``batch.records``, e.g. for a stream map or the
Singer output) is made on first use by decoding the held page bodies the ordinary way: it is the
same list of dicts the dict path gives.

Near 800 lines because it is one representation — a page held as columns — with its two decoders
(compiled scan, msgspec), its fingerprint and its Arrow view, which must agree value for value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..ext.pagination import fingerprint_sample
from ..types import Batch, JSONSchema, Record

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["PageColumns", "PageColumnsBatch", "PagePlan", "page_plan"]


class _Refused(Exception):
    """A column the page-column conversion does not take (the dict path then decides)."""


_INT, _BOOL, _STR, _NUMBER, _JSON = "int", "bool", "str", "number", "json"


def _kind(prop: Any) -> str | None:
    """How one property is decoded, or ``None`` when the plan cannot take it."""
    import pyarrow as pa

    from ..arrow.schema import JSON_META, json_types, jsonschema_field

    if not isinstance(prop, Mapping) or "anyOf" in prop or "oneOf" in prop:
        return None
    field = jsonschema_field("x", prop)
    meta = field.metadata or {}
    if meta.get(JSON_META) == b"true":
        return _JSON
    if meta:  # number text, decimal text …
        return None
    types, _ = json_types(prop)
    t = field.type
    if t == pa.int64() and types == {"integer"}:
        return _INT
    if t == pa.float64() and types and types <= {"integer", "number"}:
        return _NUMBER
    if t == pa.bool_() and types == {"boolean"}:
        return _BOOL
    if types == {"string"} and (
        pa.types.is_string(t) or pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t)
    ):
        return _STR
    return None


class PageColumns:
    """One page's records as columns (``columns[i]`` holds the values of ``names[i]``: Python
    values, :class:`msgspec.Raw` texts for number and JSON columns, ``None`` where a record lacks
    the field), with the envelope's other keys (``data``) and the page body (for the dict view).

    A sequence of the page's records for a paginator: ``len()``, slices (``page[:n]``), ``page[i]``
    (the record as the dict path decodes it) and ``canonical_json_at(indexes)``, the canonical JSON
    text of some of its records (:func:`dc_api_x.ext.pagination.canonical_json`, what a page
    fingerprint hashes), made from the decoded structs: the same text as the dict path's records give."""

    __slots__ = (
        "canonical",
        "columns",
        "content",
        "data",
        "gaps",
        "json_sample",
        "key",
        "n",
        "plan",
        "rows",
        "scanned",
        "start",
    )

    def __init__(
        self,
        content: bytes,
        key: str,
        data: dict[str, Any],
        columns: list[Sequence[Any]],
        n: int,
        plan: PagePlan,
        rows: Sequence[Any] = (),
    ) -> None:
        self.plan = plan
        self.rows = rows  # the decoded structs (for canonical_json_at; dropped once fingerprinted)
        self.content = content
        self.key = key
        self.data = data
        self.columns = columns
        self.n = n
        self.start = 0  # the records of the body this page holds: [start, start + n)
        #: the JSON columns whose texts are what orjson.dumps of their decode gives (checked per page)
        self.canonical: frozenset[int] = frozenset()
        #: a record lacks a field (``None`` in the columns); else no column holds ``None``
        self.gaps = True
        #: JSON column -> the texts orjson writes (keys sorted) of its values in the records a page
        #: fingerprint samples (``fingerprint_sample(n)``; from the page's check); dropped with ``rows``
        self.json_sample: dict[int, list[bytes]] = {}
        #: a page read by the compiled scanner (``_recordscan.scan_page``): ``(columns, spans)``, the
        #: column buffers of all the body's records and each record's (start, end) in ``content``
        #: (int64 pairs); ``columns`` is then empty: the rows are ``[start, start + n)`` of the buffers
        self.scanned: tuple[list[Any], Any] | None = None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            start, stop, step = i.indices(self.n)
            if step != 1:
                raise ValueError("PageColumns slices take no step")
            stop = max(start, stop)
            page = PageColumns(
                self.content,
                self.key,
                self.data,
                [c[start:stop] for c in self.columns],
                stop - start,
                self.plan,
                self.rows[start:stop],
            )
            page.canonical = self.canonical
            page.gaps = self.gaps
            page.start = self.start + start
            page.scanned = self.scanned
            return page
        return self.records()[i]

    def canonical_json_at(self, indexes: Sequence[int]) -> bytes | None:
        """``canonical_json([self[i] for i in indexes])``, from the decoded structs (a scanned page:
        from the sampled records' texts — written by the scanner's ``canonical_records`` when each is
        spelled as orjson writes it but for the order of the keys, else decoded as the dict path
        decodes them and written by :func:`~dc_api_x.ext.pagination.canonical_json`)."""
        if self.scanned is not None:
            from array import array

            from ..ext.pagination import canonical_json
            from ..values import json_loads

            content, spans = self.content, self.scanned[1]
            assert self.plan._canonical_records is not None
            text = self.plan._canonical_records(content, spans, self.start, tuple(indexes))
            if text is not None:
                return text  # type: ignore[no-any-return]
            spans, at = array("q", spans), 2 * self.start
            texts = [content[spans[at + 2 * i] : spans[at + 2 * i + 1]] for i in indexes]
            # (no scan for long numbers: the scanner refused every number a float64 or an int64
            # would change, so orjson's values are the exact decode's)
            return canonical_json(json_loads(b"[" + b",".join(texts) + b"]", suspect=False))
        if len(self.rows) != self.n:  # (the structs were dropped): from the dicts
            from ..ext.pagination import canonical_json

            records = self.records()
            return canonical_json([records[i] for i in indexes])
        return self.plan.canonical_json_at(self, indexes)

    def records(self) -> list[Record]:
        """The page's records as the dict path decodes them."""
        from ..ext.pagination import extract_records
        from ..values import json_loads

        records = extract_records(json_loads(self.content), self.key)
        return records[self.start : self.start + self.n]


class PagePlan:
    """The msgspec decoder of one stream's pages (see the module docstring).

    The record struct's fields are in the schema's order (the order records usually come in: msgspec
    decodes them fastest so). Every field is required: a page whose records
    all have every field is decoded once; a page where one lacks a field is decoded again by a
    second struct whose missing fields are ``UNSET`` (left out when written, as the dict path's
    record has no such key; ``None`` in the columns)."""

    def __init__(self, names: list[str], kinds: list[str], key: str, envelope: Sequence[str]) -> None:
        import msgspec

        self.names = names
        self.kinds = kinds
        self.key = key
        attrs = [f"f{i}" for i in range(len(names))]
        from typing import Annotated

        # an integer beyond int64 (exact in msgspec up to uint64) is refused: the dict path decides
        int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
        anns = {_INT: int64, _BOOL: bool, _STR: str, _NUMBER: msgspec.Raw, _JSON: msgspec.Raw}
        anns_of: list[Any] = []
        for kind in kinds:
            ann: Any = anns[kind]
            anns_of.append(ann if ann is msgspec.Raw else ann | None)
        others = [k for k in envelope if k != key]
        env_attrs = [f"e{i}" for i in range(len(others))]
        self._others = list(zip(env_attrs, others, strict=True))
        self._attrs = attrs
        self._rename = dict(zip(attrs, names, strict=True))
        self._env: list[Any] = [(a, msgspec.Raw, msgspec.UNSET) for a in env_attrs]
        self._env_rename = {"records": key, **dict(zip(env_attrs, others, strict=True))}
        self._anns = anns_of
        # every field required: the usual page (every record has every field) is decoded once
        self._decode = self._decoder([(a, t) for a, t in zip(attrs, anns_of, strict=True)])
        self._decode_missing: Any = None  # made when a page first lacks a field
        self._json_columns = [i for i, kind in enumerate(kinds) if kind == _JSON]
        self._number_columns = [i for i, kind in enumerate(kinds) if kind == _NUMBER]
        #: (column, writer) of the number and JSON texts: written as orjson writes their values
        self._raw_fields: list[tuple[int, Any]] = []
        import orjson

        for i, kind in enumerate(kinds):
            if kind == _NUMBER:
                self._raw_fields.append((i, orjson.dumps))
            elif kind == _JSON:
                self._raw_fields.append((i, _dumps_sorted))
        # a record written with its keys in sorted order (canonical_json_at): the fields by name
        self._sorted = sorted(range(len(names)), key=names.__getitem__)
        self._canonical_record = msgspec.defstruct(
            "CanonicalRecord",
            [attrs[i] for i in self._sorted],
            gc=False,
            rename={attrs[i]: names[i] for i in self._sorted},
        )
        self._encode = msgspec.json.encode
        self._errors = (msgspec.DecodeError, msgspec.ValidationError)
        self._invalid = msgspec.ValidationError
        self._unset = msgspec.UNSET
        self._raw = msgspec.Raw
        from msgspec.structs import astuple

        self._astuple = astuple
        self._scan: Callable[..., Any] | None = None
        self._scan_args: tuple[Any, ...] = ()
        self._join: Callable[..., Any] | None = None
        self._canonical_records: Callable[..., Any] | None = None
        self._scan_kinds = b""
        self._scanner(names, kinds, key, others)

    def _scanner(self, names: list[str], kinds: list[str], key: str, others: list[str]) -> None:
        """The compiled page scanner's arguments (``dc_api_x.arrow._recordscan.scan_page``), when it
        is built and every name is spelled in JSON without an escape."""
        from ..arrow.native import load

        ext = load()
        if ext is None or not hasattr(ext, "scan_page"):
            return
        for name in (*names, key, *others):
            if any(c in name for c in '"\\') or any(ord(c) < 0x20 for c in name):
                return
        any_json = ext.F_OBJECT | ext.F_ARRAY | ext.F_STRING | ext.F_INT | ext.F_FLOAT | ext.F_BOOL
        letters = {_INT: "i", _BOOL: "b", _STR: "s", _NUMBER: "n", _JSON: "j"}
        # every field may be null or left out (None in the columns), as in the msgspec structs
        flags = bytes(ext.F_NULL | (any_json if kind == _JSON else 0) for kind in kinds)
        self._scan_kinds = "".join(letters[k] for k in kinds).encode()
        self._scan_args = (
            key.encode(),
            tuple(n.encode() for n in names),
            self._scan_kinds,
            flags,
            tuple(o.encode() for o in others),
        )
        self._scan = ext.scan_page
        self._join = ext.join
        self._canonical_records = ext.canonical_records

    def _scanned(self, content: bytes, got: tuple[int, list[Any], tuple[Any, ...], bytes]) -> PageColumns:
        """The :class:`PageColumns` of a page the compiled scanner read."""
        from ..values import json_loads

        n, columns, texts, spans = got
        data: dict[str, Any] = {self.key: None}  # (the records are the PageColumns, not data)
        for (_, name), text in zip(self._others, texts, strict=True):
            if text is not None:
                data[name] = json_loads(text)  # as the dict path decodes it (every digit kept)
        out = PageColumns(content, self.key, data, [], n, self)
        out.scanned = (columns, spans)
        out.gaps = False
        return out

    def _decoder(self, fields: list[Any]) -> Any:
        import msgspec

        record = msgspec.defstruct(
            "PageRecord", fields, kw_only=True, forbid_unknown_fields=True, gc=False, rename=self._rename
        )
        page = msgspec.defstruct(
            "Page",
            [("records", list[record]), *self._env],  # type: ignore[valid-type]
            kw_only=True,
            forbid_unknown_fields=True,
            gc=False,
            rename=self._env_rename,
        )
        return msgspec.json.Decoder(page).decode

    def _decoder_missing(self) -> Any:
        """The decoder whose missing fields are ``UNSET``."""
        if self._decode_missing is None:
            import msgspec

            unset = msgspec.UNSET
            fields = [(a, t | msgspec.UnsetType, unset) for a, t in zip(self._attrs, self._anns, strict=True)]
            self._decode_missing = self._decoder(fields)
        return self._decode_missing

    def canonical_json_at(self, page: PageColumns, indexes: Sequence[int]) -> bytes | None:
        """:func:`~dc_api_x.ext.pagination.canonical_json` of the records ``indexes`` of ``page``,
        written by msgspec from the decoded structs' values as structs whose fields are in the sorted
        order of the names: a missing field (``UNSET``) left out, strings escaped as orjson escapes
        them (the same bytes for every string), and each number or JSON text as orjson writes its
        value (a text that is not — a ``1.50``, a ``1E5``, an object with keys out of order — is
        replaced by that)."""
        import orjson

        pick = _picker(tuple(indexes))
        columns: list[Sequence[Any]] = list(zip(*map(self._astuple, pick(page.rows)), strict=True))
        dumps, raw, unset = orjson.dumps, self._raw, self._unset
        for col, write in self._raw_fields:
            texts = columns[col]
            gaps = unset in texts  # a field left out
            present = [t for t in texts if t is not unset] if gaps else texts
            written = page.json_sample.get(col) if indexes is fingerprint_sample(page.n) else None
            if written is not None:  # a JSON column's sampled texts, written by the page's check
                fixed: list[Any] = list(map(raw, written))
                columns[col] = (
                    [t if t is unset else f for t, f in zip(texts, fixed, strict=True)] if gaps else fixed
                )
                continue
            joined = b"[" + b",".join(present) + b"]"
            values = orjson.loads(joined)
            if write is not _dumps_sorted and dumps(values) == joined:
                continue  # numbers written as orjson writes them already (the usual case)
            # (a JSON text is rewritten without a check: orjson's text with sorted keys seldom is it)
            fixed = (
                [raw(dumps(v, option=_SORT_KEYS)) for v in values]
                if write is _dumps_sorted
                else [raw(write(v)) for v in values]
            )
            if gaps:
                it = iter(fixed)
                fixed = [t if t is unset else next(it) for t in texts]
            columns[col] = fixed
        return self._encode(list(map(self._canonical_record, *[columns[i] for i in self._sorted])))  # type: ignore[no-any-return]

    def decode(self, content: bytes) -> PageColumns | None:
        """The page's columns, or ``None`` when the dict path must decode it."""
        from ..values import has_long_digit_run, json_loads

        if self._scan is not None and type(content) is bytes:
            got = self._scan(content, *self._scan_args)
            if got is not None:
                return self._scanned(content, got)
        missing = False
        json_sample: dict[int, list[bytes]] = {}
        try:
            page = self._decode(content)
        except self._invalid as exc:
            if not str(exc).startswith("Object missing required field"):
                return None
            try:
                page = self._decoder_missing()(content)
            except self._errors:
                return None
            missing = True
        except self._errors:
            return None
        rows = page.records  # type: ignore[attr-defined]
        n = len(rows)
        canonical: frozenset[int] = frozenset()
        if n:
            sample = _picker(fingerprint_sample(n))
            dumps = _orjson_dumps()
            columns: list[Sequence[Any]] = list(zip(*map(self._astuple, rows), strict=True))
            if missing:  # a missing field is None in the columns, as the dict path reads it
                unset = self._unset
                columns = [[None if v is unset else v for v in c] for c in columns]
            # a long number (16+ digits, a 3-digit exponent) can only change a value in a number
            # or JSON column (integers are exact, strings are texts): such a page goes the dict path
            for i in self._number_columns:
                if has_long_digit_run(b",".join([r for r in columns[i] if r is not None])):
                    return None
            ok = []
            for i in self._json_columns:
                joined = b"[" + b",".join([_NULL if r is None else r for r in columns[i]]) + b"]"
                if has_long_digit_run(joined):
                    return None
                values = _loads(joined)
                if values is not None:
                    # (the sampled values' texts for the page's fingerprint: bytes, no object kept)
                    json_sample[i] = [dumps(v, option=_SORT_KEYS) for v in sample(values)]
                    if _dumps(values) == joined:
                        ok.append(i)
            canonical = frozenset(ok)
        else:
            columns = [() for _ in self.names]
        unset = self._unset
        data: dict[str, Any] = {self.key: None}  # (the records are the PageColumns, not data)
        for attr, name in self._others:
            value = getattr(page, attr)
            if value is not unset:
                data[name] = json_loads(bytes(value))  # as the dict path decodes it (every digit kept)
        out = PageColumns(content, self.key, data, columns, n, self, rows)
        out.canonical = canonical
        out.gaps = missing
        out.json_sample = json_sample
        return out


def _orjson_dumps() -> Callable[..., bytes]:
    import orjson

    return orjson.dumps


def _dumps_sorted(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@lru_cache(maxsize=64)
def _picker(indexes: tuple[int, ...]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """``seq -> [seq[i] for i in indexes]`` in one C call."""
    if len(indexes) == 1:
        i = indexes[0]
        return lambda seq: (seq[i],)
    return itemgetter(*indexes) if indexes else (lambda seq: ())


def page_plan(
    schema: JSONSchema | None, records_key: str, envelope: Any, *, paths: Sequence[str | None] = ()
) -> PagePlan | None:
    """The page plan of a stream, or ``None`` when it cannot have one: msgspec is not installed,
    the schema has a property that needs more than a type check, the body (``envelope``, the first
    page as decoded) is no object holding ``records_key``, or a paginator path in ``paths`` reads
    inside the records."""
    try:
        import msgspec  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:  # pragma: no cover - an optional speed-up (and no Arrow view without pyarrow)
        return None
    if not schema or not isinstance(envelope, dict) or records_key not in envelope:
        return None
    if not records_key or "." in records_key:
        return None
    for path in paths:
        if path and path.split(".", 1)[0] == records_key:
            return None
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        return None
    names = list(props)
    if not all(map(_plain_name, [*names, *envelope])):
        return None
    kinds = []
    for name in names:
        kind = _kind(props[name])
        if kind is None:
            return None
        kinds.append(kind)
    return PagePlan(names, kinds, records_key, list(envelope))


_NOT_PLAIN = re.compile(r'["\\\x00-\x1f]')


def _plain_name(name: Any) -> bool:
    """A field or envelope key msgspec can rename a struct field to (no ``"``, ``\\`` or control
    character): a stream with another name in its schema or envelope is read the dict way."""
    return isinstance(name, str) and _NOT_PLAIN.search(name) is None


class PageColumnsBatch(Batch):
    """A :class:`~dc_api_x.types.Batch` of pages: ``parts`` are :class:`PageColumns` or the records
    of a page decoded to dicts (the first page of a read, a page the plan did not take). Its Arrow
    view is built from the pages' columns (the dict parts as any records are), its dict view (made on
    first use only) by decoding the page bodies as the dict path does."""

    __slots__ = ("_n", "_parts")

    def __init__(
        self,
        *,
        parts: list[PageColumns | list[Record]],
        schema: JSONSchema | None = None,
        bookmark: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(records=None, arrow=None, schema=schema, bookmark=bookmark)
        self._records = None
        self._parts = parts
        self._n = sum(map(len, parts))

    @property
    def has_records(self) -> bool:
        return self._records is not None

    @property
    def records(self) -> list[Record]:
        if self._records is None:
            out: list[Record] = []
            for p in self._parts:
                out.extend(p.records() if isinstance(p, PageColumns) else p)
            self._records = out
        return self._records

    def __len__(self) -> int:
        return self._n

    def to_arrow(self, schema: pa.Schema | None = None) -> pa.Table:
        if self._arrow is None:
            import pyarrow as pa

            from ..arrow.schema import jsonschema_to_arrow

            arrow_schema = schema if schema is not None else jsonschema_to_arrow(self.schema or {})
            tables = [self._group_to_arrow(g, arrow_schema) for g in _groups(self._parts)]
            self._arrow = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        return super().to_arrow(schema)

    def _group_to_arrow(self, group: list[Any], arrow_schema: pa.Schema) -> pa.Table:
        from ..arrow.records import records_to_arrow

        if type(group[0]) is PageColumns:
            try:
                return _pages_to_arrow(group, arrow_schema)
            except Exception:  # the dict path decides (and names the field of a value that does not fit)
                records: list[Record] = []
                for p in group:
                    records.extend(p.records())
        else:
            records = [r for p in group for r in p]
        return records_to_arrow(records, self.schema, arrow_schema=arrow_schema)


def _groups(parts: list[PageColumns | list[Record]]) -> list[list[Any]]:
    """Consecutive parts of one kind: pages of columns of one plan (scanned or decoded by msgspec),
    or dict pages."""
    groups: list[list[Any]] = []
    key: Any = None
    for p in parts:
        k = (p.plan, p.scanned is None) if type(p) is PageColumns else list  # type: ignore[union-attr]
        if groups and k == key:
            groups[-1].append(p)
        else:
            groups.append([p])
            key = k
    return groups


def _pages_to_arrow(pages: list[PageColumns], arrow_schema: pa.Schema) -> pa.Table:
    """The Arrow table of pages of one plan (raises when a column must go the dict path)."""
    import pyarrow as pa

    from ..arrow.records import _column_to_arrow

    if pages[0].scanned is not None:
        return _scanned_to_arrow(pages, arrow_schema)
    plan = pages[0].plan
    n = sum(p.n for p in pages)
    gaps = any(p.gaps for p in pages)  # a page where a record lacks a field: None in its columns
    int64 = pa.int64()

    index = {name: i for i, name in enumerate(plan.names)}
    arrays = []
    for f in arrow_schema:
        i = index.get(f.name)
        if i is None:
            arrays.append(_column_to_arrow([None] * n, f))
            continue
        values: list[Any] = []
        for p in pages:
            values.extend(p.columns[i])
        kind = plan.kinds[i]
        if kind == _NUMBER:
            if f.type != pa.float64():
                raise _Refused(f"field {f.name!r} is {f.type}")
            arrays.append(_number_column(values, nullable=True, gaps=gaps))
        elif kind == _JSON:
            if _is_json_text(f) and all(i in p.canonical for p in pages):
                arrays.append(_texts(*_with_nulls(values, gaps)))  # checked page by page as they came
            else:
                arrays.append(_json_column(values, f))
        elif kind == _INT and f.type == int64:
            # integers msgspec checked to fit int64 (or None): no type inference pass first
            arrays.append(pa.array(values, type=int64, from_pandas=False))
        else:
            arrays.append(_column_to_arrow(values, f))
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


def _scanned_to_arrow(pages: list[PageColumns], arrow_schema: pa.Schema) -> pa.Table:
    """The Arrow table of pages the compiled scanner read (one plan): the column buffers of the
    pages joined in C and taken by Arrow as they are — no Python value per record. Date and
    date-time columns are parsed from that string array by the dict path's own cast
    (:func:`~dc_api_x.arrow.records._cast_strings`); a column whose field is of another type than
    the plan's kind is converted from its Python values as the msgspec pages' are (raises when a
    column must go the dict path)."""
    import pyarrow as pa
    import pyarrow.types as pt

    from ..arrow.native import arrays_of
    from ..arrow.records import _cast_strings, _column_to_arrow

    plan = pages[0].plan
    assert plan._join is not None
    n = sum(p.n for p in pages)
    joined = plan._join([(p.scanned[0], p.start, p.n) for p in pages], plan._scan_kinds)  # type: ignore[index]
    raw = arrays_of(joined, plan._scan_kinds, n)
    index = {name: i for i, name in enumerate(plan.names)}
    arrays = []
    for f in arrow_schema:
        i = index.get(f.name)
        if i is None:
            arrays.append(_column_to_arrow([None] * n, f))
            continue
        kind, arr, typ = plan.kinds[i], raw[i], f.type
        if kind == _NUMBER:
            if typ != pa.float64():
                raise _Refused(f"field {f.name!r} is {typ}")
            arrays.append(arr)  # parsed correctly rounded in C, as orjson parses (long numbers refused)
        elif kind == _JSON:
            if _is_json_text(f) and not joined[i][4]:  # every text spelled as orjson writes it
                arrays.append(arr)
            else:
                texts = [None if v is None else v.encode() for v in arr.to_pylist()]
                arrays.append(_json_column(texts, f))
        elif f.metadata:
            arrays.append(_column_to_arrow(arr.to_pylist(), f))
        elif kind == _STR and (pt.is_timestamp(typ) or pt.is_date(typ)):
            cast = _cast_strings(arr, typ)
            if cast is None:
                raise _Refused(f"field {f.name!r}: a value Arrow does not parse as {typ}")
            arrays.append(cast)
        elif arr.type == typ:  # int64, boolean, string
            arrays.append(arr)
        else:
            arrays.append(_column_to_arrow(arr.to_pylist(), f))
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


_NULL = b"null"
_SORT_KEYS = 1 << 5  # orjson.OPT_SORT_KEYS (checked by the tests)


def _texts(raws: Sequence[Any], valid: list[bool] | None) -> pa.Array:
    """A string array of the texts ``raws`` (bytes-like, none ``None``), null where ``valid`` is false."""
    from array import array
    from itertools import accumulate

    import pyarrow as pa

    data = b"".join(raws)
    if len(data) >= 1 << 31:
        raise _Refused("more than 2 GiB of text in one column")
    offsets = array("i", accumulate(map(len, raws), initial=0))  # int32, in one C pass
    bitmap = None
    nulls = 0
    if valid is not None:
        nulls = valid.count(False)
        bitmap = pa.array(valid, type=pa.bool_()).buffers()[1] if nulls else None
    return pa.StringArray.from_buffers(
        len(raws), pa.py_buffer(offsets), pa.py_buffer(data), bitmap, nulls if bitmap is not None else 0
    )


def _with_nulls(raws: list[Any], gaps: bool = True) -> tuple[list[Any], list[bool] | None]:
    """``raws`` with a missing field (``None``) as the text ``null``, and which are not null.
    ``gaps``: ``raws`` may hold ``None`` (else they hold texts only: no scan for it)."""
    if gaps and None in raws:
        raws = [_NULL if r is None else r for r in raws]
    if 4 not in map(len, raws):  # no text of 4 bytes: no null (C-level, no generator per value)
        return raws, None
    return raws, [bytes(r) != _NULL if len(r) == 4 else True for r in raws]


def _number_column(raws: list[Any], nullable: bool, gaps: bool = True) -> pa.Array:
    """A float64 column from JSON number texts, decoded by orjson as the dict path decodes them (one
    decode of the texts as a JSON array: correctly rounded; ``-0`` the integer 0, as there) and
    converted as the dict path converts its values. Anything but a plain number or ``null`` (a
    string, a boolean, an object) is refused: the dict path decides. ``gaps``: ``raws`` may hold
    ``None`` (a missing field)."""
    import orjson
    import pyarrow as pa

    if gaps and None in raws:
        raws = [_NULL if r is None else r for r in raws]
    joined = b",".join(raws)
    for bad in (b'"', b"t", b"f", b"{", b"["):
        if bad in joined:
            raise _Refused(f"{bad!r} in a number column")
    values = orjson.loads(b"[" + joined + b"]")
    if not nullable and None in values:
        raise _Refused("null in a non-nullable number field")
    return pa.array(values, type=pa.float64(), from_pandas=False)


def _canonical(raws: Sequence[Any]) -> bool:
    """Whether the JSON texts ``raws`` (``None``: a field left out) are each what ``orjson.dumps``
    of their decode gives — the JSON text the dict path stores (one round trip of the page's column,
    hot in cache; its array text equal means every element's is, a JSON array splitting one way)."""
    return _canonical_text(b"[" + b",".join(_NULL if r is None else r for r in raws) + b"]")


def _canonical_text(joined: bytes) -> bool:
    """:func:`_canonical` of the JSON array text ``joined``."""
    values = _loads(joined)
    return values is not None and _dumps(values) == joined


def _loads(joined: bytes) -> list[Any] | None:
    """The values of the JSON array text ``joined`` as orjson decodes them (``None``: it does not)."""
    import orjson

    try:
        return orjson.loads(joined)  # type: ignore[no-any-return]
    except orjson.JSONDecodeError:
        return None


def _dumps(values: Any) -> bytes | None:
    import orjson

    try:
        return orjson.dumps(values)
    except orjson.JSONEncodeError:
        return None


def _is_json_text(f: pa.Field) -> bool:
    import pyarrow as pa

    from ..arrow.schema import JSON_META

    return pa.types.is_string(f.type) and (f.metadata or {}).get(JSON_META) == b"true"


def _json_column(raws: list[Any], f: pa.Field) -> pa.Array:
    """A JSON-text column from the values' own texts when they are what ``orjson.dumps`` of the
    decoded values gives (checked for the whole column at once); else from the decoded values, as
    the dict path converts them."""
    import orjson
    import pyarrow as pa

    from ..arrow.records import _column_to_arrow
    from ..arrow.schema import JSON_META

    raws, valid = _with_nulls(raws)
    joined = b"[" + b",".join(raws) + b"]"
    values = orjson.loads(joined)
    if (
        not (pa.types.is_string(f.type) and (f.metadata or {}).get(JSON_META) == b"true")
        or orjson.dumps(values) != joined
    ):
        return _column_to_arrow(values, f)
    return _texts(raws, valid)
