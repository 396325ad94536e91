"""The server's subschema as JSON Schema, and LDAP values to and from Python/Arrow values.

Each backend parses the subschema subentry with its own library (ldap3's ``SchemaInfo``,
python-ldap's ``ldap.schema.SubSchema``, ldaptor's ``AttributeTypeDescription``) into the
:class:`SubSchema` below; everything after that is shared:

==========================================  ====================================================
LDAP syntax (OID ``1.3.6.1.4.1.1466.115.121.1.N``)  JSON Schema (Arrow)
==========================================  ====================================================
INTEGER (27)                                ``integer`` (int64)
Boolean (7)                                 ``boolean``
Generalized Time (24), UTC Time (53)        ``string`` + ``format: date-time`` (timestamp UTC)
Octet String (40), JPEG (28), Binary (5),   ``string`` + ``contentEncoding: base64`` (binary)
certificates (8, 9, 10), Audio (4), Fax …
anything else (Directory String, DN, IA5,   ``string``
Numeric String, OID, UUID, CSN …)
==========================================  ====================================================

A multi-valued attribute (no ``SINGLE-VALUE``) is an ``array`` of those; an absent attribute is
``null``. Every property carries ``x-ldap-syntax`` (the OID) so a reader of the catalog sees it.
The stream key is ``dn``. Nothing here imports an LDAP library; :mod:`pyarrow` is imported inside
the Arrow functions only.
"""

from __future__ import annotations

import base64
import datetime as _dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "AttributeType",
    "ObjectClass",
    "SubSchema",
    "attribute_property",
    "column_index",
    "column_of",
    "entry_to_json",
    "format_generalized_time",
    "lists_to_table",
    "page_to_arrow",
    "parse_generalized_time",
    "to_ldap_values",
    "write_name",
]

_S = "1.3.6.1.4.1.1466.115.121.1."
INTEGER_SYNTAXES = frozenset({_S + "27"})
BOOLEAN_SYNTAXES = frozenset({_S + "7"})
TIME_SYNTAXES = frozenset({_S + "24", _S + "53"})
BINARY_SYNTAXES = frozenset(
    _S + n for n in ("4", "5", "8", "9", "10", "23", "28", "40", "49")
)  # audio, binary, certificate (+list, pair), fax, JPEG, octet string, supported algorithm
#: syntaxes transferred with the ``;binary`` option (RFC 4522/4523: certificates and friends)
BINARY_TRANSFER = frozenset(_S + n for n in ("8", "9", "10", "49"))
#: operational attributes used as replication keys
REPLICATION_KEYS = ("modifyTimestamp", "entryCSN")


@dataclass(frozen=True)
class AttributeType:
    """One ``attributeTypes`` value of the subschema (syntax resolved through ``SUP``)."""

    oid: str
    names: tuple[str, ...]
    syntax: str | None = None
    single_value: bool = False
    no_user_modification: bool = False
    usage: str = "userApplications"
    sup: str | None = None

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.oid

    @property
    def operational(self) -> bool:
        return self.usage != "userApplications" or self.no_user_modification


@dataclass(frozen=True)
class ObjectClass:
    """One ``objectClasses`` value: kind, superclasses and attributes."""

    oid: str
    names: tuple[str, ...]
    kind: str = "STRUCTURAL"
    sup: tuple[str, ...] = ()
    must: tuple[str, ...] = ()
    may: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.oid


@dataclass
class SubSchema:
    """Attribute types and object classes by lower-cased name and OID."""

    attribute_types: dict[str, AttributeType] = field(default_factory=dict)
    object_classes: dict[str, ObjectClass] = field(default_factory=dict)

    @classmethod
    def build(
        cls, attribute_types: Iterable[AttributeType], object_classes: Iterable[ObjectClass]
    ) -> SubSchema:
        out = cls()
        for at in attribute_types:
            for key in (at.oid, *at.names):
                out.attribute_types[key.lower()] = at
        for oc in object_classes:
            for key in (oc.oid, *oc.names):
                out.object_classes[key.lower()] = oc
        return out

    def attribute(self, name: str) -> AttributeType | None:
        """The attribute type of ``name`` (an attribute description: options such as ``;binary``
        are ignored), with its syntax inherited from ``SUP`` when it has none of its own."""
        at = self.attribute_types.get(name.split(";", 1)[0].lower())
        if at is None or at.syntax is not None:
            return at
        seen = {at.oid}
        sup = at.sup
        while sup:
            parent = self.attribute_types.get(sup.lower())
            if parent is None or parent.oid in seen:
                break
            seen.add(parent.oid)
            if parent.syntax is not None:
                return AttributeType(
                    at.oid,
                    at.names,
                    parent.syntax,
                    at.single_value,
                    at.no_user_modification,
                    at.usage,
                    at.sup,
                )
            sup = parent.sup
        return at

    def canonical(self, name: str) -> str:
        """The schema's first name for ``name`` (``commonName`` → ``cn``); unknown names unchanged."""
        at = self.attribute(name)
        return at.name if at is not None else name

    def class_attributes(self, classes: Iterable[str]) -> tuple[list[str], list[str]]:
        """``(must, may)`` attribute names of ``classes`` and all their superclasses (canonical
        names, first-seen order). Unknown class names raise ``KeyError``."""
        must: dict[str, None] = {}
        may: dict[str, None] = {}
        todo = list(classes)
        seen: set[str] = set()
        while todo:
            name = todo.pop(0)
            oc = self.object_classes.get(name.lower())
            if oc is None:
                raise KeyError(name)
            if oc.oid in seen:
                continue
            seen.add(oc.oid)
            for a in oc.must:
                must.setdefault(self.canonical(a), None)
            for a in oc.may:
                may.setdefault(self.canonical(a), None)
            todo.extend(oc.sup)
        return list(must), [a for a in may if a not in must]


def attribute_property(at: AttributeType | None, *, name: str = "") -> dict[str, Any]:
    """The JSON Schema property of one attribute (nullable; an array unless single-valued)."""
    syntax = at.syntax if at is not None else None
    binary = name.lower().endswith(";binary")
    if syntax in INTEGER_SYNTAXES:
        item: dict[str, Any] = {"type": "integer"}
    elif syntax in BOOLEAN_SYNTAXES:
        item = {"type": "boolean"}
    elif syntax in TIME_SYNTAXES:
        item = {"type": "string", "format": "date-time"}
    elif syntax in BINARY_SYNTAXES or binary:
        item = {"type": "string", "contentEncoding": "base64"}
    else:
        item = {"type": "string"}
    single = at is not None and at.single_value
    prop: dict[str, Any] = (
        {**item, "type": [item["type"], "null"]} if single else {"type": ["array", "null"], "items": item}
    )
    if syntax:
        prop["x-ldap-syntax"] = syntax
    return prop


def _item(prop: Mapping[str, Any]) -> tuple[str, bool]:
    """``(kind, multi)`` of a JSON Schema property: kind is str/int/bool/time/bin."""
    types = prop.get("type")
    tset = {types} if isinstance(types, str) else set(types or ())
    multi = "array" in tset
    item = (prop.get("items") or {}) if multi else prop
    itypes = item.get("type")
    iset = {itypes} if isinstance(itypes, str) else set(itypes or ())
    if "integer" in iset:
        return "int", multi
    if "boolean" in iset:
        return "bool", multi
    if item.get("format") == "date-time":
        return "time", multi
    if item.get("contentEncoding") == "base64":
        return "bin", multi
    return "str", multi


# ------------------------------------------------------------------------------------ times
_GT = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d+))?(Z|[+-]\d{2}(?:\d{2})?)?$")
_UT = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(Z|[+-]\d{4})$")


def parse_generalized_time(text: str) -> _dt.datetime:
    """A GeneralizedTime (``20240102030405Z``, ``20240102030405.5+0100``, …) or UTCTime value as
    an aware UTC datetime (a time without zone is taken as UTC). Fractions of an hour or minute
    are honoured; precision beyond microseconds raises ``ValueError`` (never rounded)."""
    m = _GT.match(text)
    if m is None:
        u = _UT.match(text)
        if u is None:
            raise ValueError(f"{text!r} is not a GeneralizedTime")
        yy = int(u.group(1))
        return parse_generalized_time(
            f"{1900 + yy if yy >= 50 else 2000 + yy}{u.group(2)}{u.group(3)}{u.group(4)}{u.group(5)}"
            f"{u.group(6) or '00'}{u.group(7)}"
        )
    y, mo, d, h, mi, s, frac, tz = m.groups()
    base = _dt.datetime(int(y), int(mo), int(d), int(h), tzinfo=_dt.timezone.utc)
    extra = _dt.timedelta()
    if frac is not None:
        if len(frac) > 6 + (0 if s else 4):
            raise ValueError(f"{text!r} is more precise than a microsecond")
        fraction = int(frac) / 10 ** len(frac)
        unit = 1 if s else (60 if mi else 3600)
        micros = fraction * unit * 1_000_000
        if micros != int(micros):
            raise ValueError(f"{text!r} is more precise than a microsecond")
        extra = _dt.timedelta(microseconds=int(micros))
    value = base + _dt.timedelta(minutes=int(mi or 0), seconds=int(s or 0)) + extra
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        off = _dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5] or 0))
        value -= sign * off
    return value


def format_generalized_time(value: _dt.datetime) -> str:
    """An aware (or UTC-naive) datetime as GeneralizedTime in UTC (``…Z``), with a fraction only
    when it has microseconds."""
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc)
    text = value.strftime("%Y%m%d%H%M%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


# ---------------------------------------------------------------------------- page → Arrow
class ValueProblem(ValueError):
    """A value the stream's schema cannot hold: ``attribute`` and ``dn`` name it."""

    def __init__(self, message: str, *, attribute: str, dn: str) -> None:
        super().__init__(message)
        self.attribute = attribute
        self.dn = dn


def column_index(properties: Sequence[str]) -> dict[str, int]:
    idx: dict[str, int] = {}
    for i, name in enumerate(properties):
        idx[name] = i
        idx.setdefault(name.lower(), i)
    return idx


def _page_names(
    dns: Sequence[str],
    entries: Sequence[Mapping[str, Sequence[bytes]]],
    properties: Sequence[str],
    aliases: Mapping[str, str] | None,
) -> dict[int, list[str]]:
    """The attribute descriptions of a page's entries by the index of the property they fill.
    Attribute descriptions are matched without case; ``;binary`` is dropped; ``aliases`` maps
    other names (lower-cased) to properties. A returned attribute that is not a property raises
    :class:`ValueProblem` (never dropped)."""
    idx = column_index(properties)
    by_column: dict[int, list[str]] = {}
    for name in set().union(*[e.keys() for e in entries]) if entries else ():
        j = idx.get(name)
        if j is None:
            j = column_of(
                name,
                idx,
                aliases,
                lambda n=name: next(d for d, e in zip(dns, entries, strict=True) if n in e),
            )
        by_column.setdefault(j, []).append(name)
    return by_column


def column_of(name: str, idx: dict[str, int], aliases: Mapping[str, str] | None, dn: Any) -> int:
    """The index of the property an attribute description fills (``idx`` from
    :func:`column_index`); one that is not a property raises :class:`ValueProblem` naming the
    entry (``dn``: the DN, or a function finding it)."""
    j = idx.get(name)
    if j is None:
        j = _resolve(name, idx, aliases)
    if j is None:
        raise ValueProblem(
            f"the server returned attribute {name!r}, which is not in the stream's schema "
            "(list it in the stream's 'attributes' to read it)",
            attribute=name,
            dn=dn() if callable(dn) else dn,
        )
    return j


def _merged(entries: Sequence[Mapping[str, Sequence[bytes]]], names: Sequence[str]) -> list[Any]:
    """One property's values per entry when the page holds it under several descriptions (e.g.
    with and without ``;binary``): all of them, in that order; ``None`` where there are none."""
    out: list[Any] = []
    for e in entries:
        vals = [v for n in names for v in e.get(n) or ()]
        out.append(vals or None)
    return out


def split_page(
    page: Sequence[tuple[str, Mapping[str, Sequence[bytes]]]],
    properties: Sequence[str],
    aliases: Mapping[str, str] | None = None,
) -> tuple[list[str], list[list[Any] | None]]:
    """Distribute a page of ``(dn, {attribute: [raw values]})`` over one list per property
    (``None`` where an entry lacks the attribute; the whole list ``None`` when no entry of the
    page has it), with the name rules of :func:`_page_names`. :func:`page_to_arrow` does the same
    in Arrow without the lists."""
    dns = [dn for dn, _ in page]
    entries = [attrs for _, attrs in page]
    cols: list[list[Any] | None] = [None] * len(properties)
    for j, names in _page_names(dns, entries, properties, aliases).items():
        cols[j] = [e.get(names[0]) for e in entries] if len(names) == 1 else _merged(entries, names)
    return dns, cols


def _resolve(name: str, idx: dict[str, int], aliases: Mapping[str, str] | None) -> int | None:
    low = name.lower()
    j = idx.get(low)
    if j is None and low.endswith(";binary"):
        j = idx.get(low[: -len(";binary")])
    if j is None and aliases:
        target = aliases.get(low.split(";", 1)[0] if low.endswith(";binary") else low)
        if target is not None:
            j = idx.get(target) if target in idx else idx.get(target.lower())
    return j


def page_to_arrow(
    page: Sequence[tuple[str, Mapping[str, Sequence[bytes]]]],
    schema: Mapping[str, Any],
    arrow_schema: pa.Schema,
    aliases: Mapping[str, str] | None = None,
    cache: dict[str, Any] | None = None,
) -> pa.Table:
    """One page of raw entries as an Arrow table of ``arrow_schema`` (built from the stream's
    JSON ``schema``), converted column-wise. ``dn`` must be the first property. Values that do not
    fit (bad UTF-8, a non-integer INTEGER, two values in a single-valued attribute) raise
    :class:`ValueProblem` naming the attribute and the entry.

    The entries' dicts go to Arrow in one call (a struct array with one ``list<binary>`` field
    per attribute description the page holds: Arrow walks the dicts in C++), then every column is
    converted whole (:func:`_convert_column`); no value becomes a Python object on the way.
    ``cache`` (a dict kept across the pages of one read) keeps the page's attribute descriptions
    for the next page, which is checked against them instead of scanning every entry's keys."""
    import pyarrow as pa

    attr_names = list(schema["properties"])[1:]
    dns = [dn for dn, _ in page]
    entries = [attrs for _, attrs in page]
    cache = {} if cache is None else cache
    struct: Any = None
    by_column: dict[int, list[str]] | None = cache.get("by_column")
    if by_column is not None and cache.get("struct_type") is not None:
        # the attribute descriptions of the previous page: right when the struct holds every
        # value of the page's dicts (an unknown description would be missing from its fields)
        struct = pa.array(entries, cache["struct_type"])
        if _field_count(struct) != sum(map(len, entries)):
            by_column, struct = None, None
    if by_column is None:
        by_column = _page_names(dns, entries, attr_names, aliases)
        cache["by_column"] = by_column
        fields = [ns[0] for ns in by_column.values() if len(ns) == 1]
        cache["struct_type"] = pa.struct([(n, pa.list_(pa.binary())) for n in fields]) if fields else None
    single = {j: ns[0] for j, ns in by_column.items() if len(ns) == 1}
    if single and struct is None:
        struct = pa.array(entries, cache["struct_type"])
    columns: list[pa.Array | None] = []
    for j in range(len(attr_names)):
        if j in single:
            columns.append(struct.field(single[j]))
        elif j in by_column:
            columns.append(pa.array(_merged(entries, by_column[j]), pa.list_(pa.binary())))
        else:  # no entry of the page has the attribute (most of a wide schema)
            columns.append(None)
    return lists_to_table(pa.array(dns, pa.string()), columns, schema, arrow_schema, dns)


def lists_to_table(
    dn: pa.Array,
    columns: Sequence[pa.Array | None],
    schema: Mapping[str, Any],
    arrow_schema: pa.Schema,
    dns: Sequence[str] | None = None,
) -> pa.Table:
    """The Arrow table of ``arrow_schema`` from a page's ``dn`` column and one raw
    ``list<binary>`` column per property after ``dn`` (``None``: no entry has it), converted
    column-wise (:func:`_convert_column`). ``dns`` (the DNs as a list) is only needed for error
    messages and is taken from ``dn`` when not given. Shared by :func:`page_to_arrow` (the
    backends' entries) and the native reader (:mod:`dc_api_x_ldap.native`)."""
    import pyarrow as pa

    props = schema["properties"]
    attr_names = list(props)[1:]
    names: Sequence[str] = dns if dns is not None else _LazyDns(dn)
    arrays: list[pa.Array] = [dn]
    for name, f, lists in zip(attr_names, list(arrow_schema)[1:], columns, strict=True):
        if lists is None:
            arrays.append(pa.nulls(len(dn), f.type))
            continue
        kind, multi = _item(props[name])
        arrays.append(_convert_column(name, lists, kind, multi, f.type, names))
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


class _LazyDns(Sequence[str]):
    """The DNs of a ``dn`` column as a sequence, made Python strings only when an error message
    needs one."""

    def __init__(self, dn: pa.Array) -> None:
        self.dn = dn

    def __len__(self) -> int:
        return len(self.dn)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.dn[i].to_pylist()
        return self.dn[i].as_py()


def _bad(name: str, col: Sequence[Any], dns: Sequence[str], check: Any, what: str) -> ValueProblem:
    """Find the first value of ``col`` that ``check`` rejects, for the error message."""
    for i, vals in enumerate(col):
        for v in vals or ():
            try:
                check(v)
            except Exception:
                shown = v[:60] if isinstance(v, bytes | str) else v
                return ValueProblem(f"value {shown!r} is not {what}", attribute=name, dn=dns[i])
    return ValueProblem(f"a value is not {what}", attribute=name, dn=dns[0] if dns else "")


def _utf8(v: bytes) -> str:
    return v.decode("utf-8")


def _int(v: bytes) -> int:
    text = v.decode("ascii")
    out = int(text)
    if not -(2**63) <= out < 2**63:
        raise ValueError("beyond 64 bits")
    return out


def _bool(v: bytes) -> bool:
    if v == b"TRUE":
        return True
    if v == b"FALSE":
        return False
    raise ValueError("not TRUE/FALSE")


def _time(v: bytes) -> _dt.datetime:
    return parse_generalized_time(v.decode("ascii"))


def _field_count(struct: pa.StructArray) -> int:
    """How many attributes the entries of a struct array of lists hold (non-null fields)."""
    return sum(len(f) - f.null_count for f in struct.flatten())


def _convert_column(
    name: str, lists: pa.Array, kind: str, multi: bool, typ: pa.DataType, dns: Sequence[str]
) -> pa.Array:
    """One property's ``list<binary>`` column (null: the entry lacks it) as ``typ``."""
    import pyarrow as pa

    from ._kernels import call, cast, is_in

    errors = (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, OverflowError)
    if multi:
        raw = lists
    else:
        if len(lists) and call("max", call("list_value_length", lists)).as_py() > 1:
            col = lists.to_pylist()
            i = next(i for i, v in enumerate(col) if v is not None and len(v) > 1)
            raise ValueProblem(
                f"{len(col[i])} values in a single-valued attribute", attribute=name, dn=dns[i]
            )
        raw = call("list_element", lists, pa.scalar(0, pa.int64()))
    offsets: Any = None
    if multi:  # the flat binary values and the lists' offsets into them (from 0)
        offsets, values = _flat(raw)
    else:
        values = raw
    try:
        if kind == "bin":
            out = values
        elif kind == "str":
            out = cast(values, pa.string())
        elif kind == "int":
            out = cast(cast(values, pa.string()), pa.int64())
        elif kind == "bool":
            ok = is_in(values, pa.array([b"TRUE", b"FALSE"], pa.binary()))
            if not call("all", call("or_kleene", ok, call("is_null", values))).as_py():
                raise ValueError("not TRUE/FALSE")
            out = call("equal", values, pa.scalar(b"TRUE", pa.binary()))
        else:  # time
            out = _time_array(values)
    except errors:
        check = {"str": _utf8, "int": _int, "bool": _bool, "time": _time}[kind]
        what = {
            "str": "valid UTF-8",
            "int": "a 64-bit integer",
            "bool": "TRUE or FALSE",
            "time": "a GeneralizedTime",
        }[kind]
        raise _bad(name, lists.to_pylist(), dns, check, what) from None
    if multi:  # the lists again, nulls where raw has them (from_arrays(mask=) imports pyarrow.compute)
        nulls = raw.null_count
        validity = call("is_valid", raw).buffers()[1] if nulls else None
        out = pa.Array.from_buffers(
            pa.list_(out.type), len(raw), [validity, offsets.buffers()[1]], null_count=nulls, children=[out]
        )
    return out if out.type == typ else cast(out, typ)


def _flat(lists: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``(offsets, values)`` of a ``list<binary>`` array: the values its lists span and offsets
    into them starting at 0 (a struct's field is a slice of its child array when the struct is
    one, so its offsets need not start at 0)."""
    import pyarrow as pa

    from ._kernels import call

    offsets = lists.offsets
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    values = lists.values.slice(start, end - start)
    if start or offsets.offset:  # offsets from 0, in an array of their own
        offsets = call("subtract", offsets, pa.scalar(start, offsets.type))
    return offsets, values


def _time_array(values: pa.Array) -> pa.Array:
    """GeneralizedTime values as ``timestamp[us, UTC]``: the common ``YYYYmmddHHMMSSZ`` form is
    parsed by Arrow, any other form (fractions, offsets, minutes only) value by value."""
    import pyarrow as pa

    from ._kernels import call, cast, strptime

    text = cast(values, pa.string())
    try:
        parsed = strptime(text, "%Y%m%d%H%M%SZ", "us")
        if call(
            "all",
            call(
                "or_kleene",
                call("equal", call("utf8_length", text), pa.scalar(15, pa.int32())),
                call("is_null", text),
            ),
        ).as_py():
            return cast(parsed, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    py = [None if v is None else parse_generalized_time(v) for v in text.to_pylist()]
    return pa.array(py, pa.timestamp("us", tz="UTC"))


def entry_to_json(dn: str, attrs: Mapping[str, Sequence[bytes]], schema: SubSchema) -> dict[str, Any]:
    """One raw entry as a JSON object by the schema (the request side's answer): integers,
    booleans, ISO date-times, base64 for binary syntaxes, arrays for multi-valued attributes."""
    out: dict[str, Any] = {"dn": dn}
    for name, vals in attrs.items():
        at = schema.attribute(name)
        kind, multi = _item(attribute_property(at, name=name))
        conv = [_json_value(kind, bytes(v)) for v in vals]
        key = at.name if at is not None and ";" not in name else name
        out[key] = conv if multi else (conv[0] if conv else None)
    return out


def _json_value(kind: str, v: bytes) -> Any:
    if kind == "int":
        return int(v)
    if kind == "bool":
        return v == b"TRUE"
    if kind == "time":
        return parse_generalized_time(v.decode("ascii")).isoformat()
    if kind == "bin":
        return base64.b64encode(v).decode("ascii")
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:  # a string syntax with bytes that are not text: keep them, base64
        return base64.b64encode(v).decode("ascii")


# ------------------------------------------------------------------------ Python → LDAP bytes
def to_ldap_values(
    value: Any, at: AttributeType | None, *, attribute: str, base64_text: bool | None = None
) -> list[bytes]:
    """A record value as the list of raw LDAP values of ``attribute`` (``None``: no value).

    ``bytes`` stay bytes; a ``str`` is base64-decoded when ``base64_text`` says so (the stream's
    schema has ``contentEncoding: base64``: the JSON form of binary) or, when it is ``None``, when
    the attribute has a binary syntax; otherwise it is UTF-8 text. Booleans become
    ``TRUE``/``FALSE``; date-times (or ISO strings for a time syntax) GeneralizedTime in UTC;
    numbers their decimal text. Anything else raises ``ValueError``.
    """
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    syntax = at.syntax if at is not None else None
    binary = (
        (syntax in BINARY_SYNTAXES or attribute.lower().endswith(";binary"))
        if base64_text is None
        else base64_text
    )
    out: list[bytes] = []
    for v in items:
        if v is None:
            continue
        if isinstance(v, bytes | bytearray | memoryview):
            out.append(bytes(v))
        elif isinstance(v, bool):
            out.append(b"TRUE" if v else b"FALSE")
        elif isinstance(v, int):
            out.append(str(v).encode())
        elif isinstance(v, _dt.datetime):
            out.append(format_generalized_time(v).encode())
        elif isinstance(v, str):
            if binary:
                try:
                    out.append(base64.b64decode(v, validate=True))
                except ValueError:
                    raise ValueError(f"attribute {attribute!r}: {v[:40]!r} is not base64") from None
            elif syntax in TIME_SYNTAXES and ("-" in v or "T" in v):
                out.append(format_generalized_time(_parse_iso(v)).encode())
            elif syntax in BOOLEAN_SYNTAXES and v.lower() in ("true", "false"):
                out.append(v.upper().encode())
            else:
                out.append(v.encode("utf-8"))
        elif isinstance(v, float):
            if syntax in INTEGER_SYNTAXES:
                if not v.is_integer():
                    raise ValueError(f"attribute {attribute!r}: {v!r} is not an integer")
                out.append(str(int(v)).encode())
            else:
                out.append(repr(v).encode())
        else:
            from decimal import Decimal

            if isinstance(v, Decimal):
                out.append(format(v, "f").encode())
            elif isinstance(v, _dt.date):
                out.append(v.isoformat().encode())
            else:
                raise ValueError(f"attribute {attribute!r}: cannot write a {type(v).__name__} value")
    return out


def write_name(name: str, at: AttributeType | None) -> str:
    """The attribute description to write: certificate syntaxes need ``;binary`` (RFC 4522)."""
    if at is not None and at.syntax in BINARY_TRANSFER and ";binary" not in name.lower():
        return f"{name};binary"
    return name


def _parse_iso(text: str) -> _dt.datetime:
    value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=_dt.timezone.utc)
