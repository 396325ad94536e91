"""The ``ldap`` adapter: LDAP v3 directories as streams (source) and as a sink, on three clients.

Streams are search bases + filters (``streams:``; default: one per naming context), read page by
page with the simple paged results control (RFC 2696). Their JSON Schema comes from the server's
subschema (:mod:`dc_api_x_ldap.schema`); the key is ``dn``; incremental streams use
``modifyTimestamp`` (or ``entryCSN``) with the toolkit's boundary bookmark
(:class:`dc_api_x.bookmarks.BoundaryBookmark`), see :meth:`LdapAdapter.read`. As a sink it adds
entries (``append``) or adds-or-replaces them by DN (``upsert``). The request side serves
``ApiClient``: GET searches, POST adds, PUT upserts, PATCH modifies, DELETE deletes and EXTENDED
runs an extended operation.

This module imports no LDAP library: the backend named by ``backend:`` is loaded on construction.
"""

from __future__ import annotations

import datetime as _dt
import gc
import io
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dc_api_x.exceptions import AdapterError, ConfigError, SchemaError, TransportError
from dc_api_x.ext.adapters import ProtocolAdapter, Response
from dc_api_x.types import Batch, StreamSpec, WriteResult

from .backends import (
    ALREADY_EXISTS,
    NO_SUCH_OBJECT,
    Backend,
    Change,
    LdapError,
    WriteOp,
    first,
    load_backend,
    values,
)
from .config import LdapOptions, StreamOptions
from .schema import (
    REPLICATION_KEYS,
    SubSchema,
    ValueProblem,
    attribute_property,
    entry_to_json,
    format_generalized_time,
    page_to_arrow,
    parse_generalized_time,
    to_ldap_values,
    write_name,
)

__all__ = ["LdapAdapter"]

log = logging.getLogger("dc_api_x_ldap")

#: operational attributes read with every stream when the server's schema has them
OPERATIONAL = ("entryUUID", "createTimestamp", "modifyTimestamp", "entryCSN")
#: result codes that mean "the data does not fit" (a SchemaError rather than an AdapterError)
DATA_ERRORS = frozenset({16, 17, 19, 20, 21, 34, 64, 65, 67, 69})
#: result codes that mean "the connection failed"
CONNECT_ERRORS = frozenset({-1, 81, 85, 91})
#: LDAP result code → HTTP-like status of the request side
STATUS = {0: 200, 32: 404, 48: 401, 49: 401, 50: 403, 53: 403, 68: 409, 20: 409, 66: 409, 51: 503, 52: 503}


@dataclass
class _WritePlan:
    method: str
    writable: dict[str, Any]  # property → AttributeType
    skipped: list[str]  # operational properties the server sets itself
    base64: dict[str, bool] = field(default_factory=dict)  # property → its strings are base64
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unknown: dict[str, bool] = field(default_factory=dict)


class LdapAdapter(ProtocolAdapter):
    """An LDAP v3 directory through ldap3, python-ldap or ldaptor (``backend:``)."""

    name = "ldap"
    Options = LdapOptions
    load_methods = ("append", "upsert")
    secret_options = ("password",)

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        o: LdapOptions = self.options
        try:
            cls = load_backend(o.backend)
        except ImportError as exc:
            raise ConfigError(
                f"adapter 'ldap': option 'backend': {exc}", plugin="adapter 'ldap'", field="backend"
            ) from None
        if o.auth not in cls.auth_methods:
            raise ConfigError(
                f"adapter 'ldap': option 'auth': backend {o.backend!r} does not support {o.auth!r}; "
                f"it supports: {', '.join(sorted(cls.auth_methods))}",
                plugin="adapter 'ldap'",
                field="auth",
            )
        self.backend: Backend = cls(o)
        self._dse: dict[str, list[bytes]] | None = None
        self._schema: SubSchema | None = None
        self._writes: dict[str, _WritePlan] = {}

    # -- connection, root DSE, schema -----------------------------------------------------------
    @property
    def where(self) -> str:
        return self.options.url

    def _fail(self, exc: LdapError, *, stream: str | None = None, field: str | None = None) -> Exception:
        """An LDAP failure as the toolkit's one-line error naming the adapter, server and stream."""
        msg = f"{exc.describe()} ({self.options.backend} at {self.where})"
        if exc.code in CONNECT_ERRORS:
            where = f"adapter 'ldap'{f', stream {stream!r}' if stream else ''}"
            return TransportError(f"{where}: {msg}", url=self.where)
        if exc.code in DATA_ERRORS:
            err = self.error(msg, stream=stream, field=field)
            return SchemaError(str(err), adapter=self.name, stream=stream)
        return self.error(msg, stream=stream, field=field)

    def _call(self, fn: Any, *args: Any, stream: str | None = None, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LdapError as exc:
            raise self._fail(exc, stream=stream) from None
        except NotImplementedError as exc:
            raise self._unsupported(str(exc)) from None

    def root_dse(self) -> dict[str, list[bytes]]:
        """The server's root DSE (naming contexts, subschema entry, controls …), raw."""
        if self._dse is None:
            self._dse = self._call(self.backend.root_dse)
        return self._dse

    def subschema(self) -> SubSchema:
        """The server's subschema, parsed by the backend's library."""
        if self._schema is None:
            dn = first(self.root_dse(), "subschemaSubentry") or "cn=Subschema"
            self._schema = self._call(self.backend.subschema, dn)
        return self._schema

    def naming_contexts(self) -> list[str]:
        return values(self.root_dse(), "namingContexts")

    def supported_controls(self) -> list[str]:
        return values(self.root_dse(), "supportedControl")

    # -- discovery ------------------------------------------------------------------------------
    def _stream_options(self) -> list[StreamOptions]:
        if self.options.streams:
            return list(self.options.streams)
        out = []
        for nc in self.naming_contexts():
            name = re.sub(r"[^0-9A-Za-z]+", "_", nc).strip("_").lower() or "root"
            out.append(StreamOptions(name=name, base=nc))
        return out

    def discover(self) -> list[StreamSpec]:
        """One stream per configured search (or naming context), schema from the subschema."""
        return [self._spec(s) for s in self._stream_options()]

    def _scan_classes(self, s: StreamOptions) -> list[str]:
        """The object classes of the stream's entries (one paged search for ``objectClass``)."""
        found: dict[str, None] = {}
        pages = self.backend.paged_search(
            s.base, s.scope, s.filter, ["objectClass"], s.page_size or self.options.page_size
        )
        try:
            for page in pages:
                for _, attrs in page:
                    for v in values(attrs, "objectClass"):
                        found.setdefault(v.lower(), None)
        except LdapError as exc:
            raise self._fail(exc, stream=s.name) from None
        finally:
            pages.close()
        return list(found)

    def _spec(self, s: StreamOptions) -> StreamSpec:
        schema = self.subschema()
        request: list[str] | None
        if s.attributes is not None:
            names = []
            for a in s.attributes:
                if schema.attribute(a) is None:
                    raise ConfigError(
                        f"adapter 'ldap', stream {s.name!r}: option 'attributes': the server's schema "
                        f"has no attribute {a!r}",
                        plugin="adapter 'ldap'",
                        field="attributes",
                    )
                names.append(a if ";" in a else schema.canonical(a))
            request = None
        else:
            classes = s.object_classes if s.object_classes is not None else self._scan_classes(s)
            try:
                must, may = schema.class_attributes(classes)
            except KeyError as exc:
                raise ConfigError(
                    f"adapter 'ldap', stream {s.name!r}: the server's schema has no object class "
                    f"{exc.args[0]!r}",
                    plugin="adapter 'ldap'",
                    field="object_classes",
                ) from None
            names = must + may
            # scanned classes: read every user attribute ("*"), so an attribute outside the schema
            # is reported instead of silently not requested
            request = ["*"] if s.object_classes is None else None
        offered = [k for k in REPLICATION_KEYS if schema.attribute(k) is not None]
        rk = s.replication_key
        if rk is not None and rk not in offered:
            if "replication_key" in s.model_fields_set:
                raise ConfigError(
                    f"adapter 'ldap', stream {s.name!r}: option 'replication_key': the server does not "
                    f"offer {rk!r}; it offers: {', '.join(offered) or '(none)'}",
                    plugin="adapter 'ldap'",
                    field="replication_key",
                )
            rk = None
        operational = [a for a in OPERATIONAL if schema.attribute(a) is not None]
        if rk is not None and rk not in operational:
            operational.append(rk)
        seen: set[str] = {"dn"}
        props: dict[str, Any] = {"dn": {"type": "string", "x-ldap-syntax": "1.3.6.1.4.1.1466.115.121.1.12"}}
        for a in [*names, *(operational if s.attributes is None else [])]:
            if a.lower() in seen:
                continue
            seen.add(a.lower())
            props[a] = attribute_property(schema.attribute(a), name=a)
        request = [*request, *operational] if request is not None else list(props)[1:]
        if rk is not None and rk not in props:
            raise ConfigError(
                f"adapter 'ldap', stream {s.name!r}: option 'attributes' must include the replication "
                f"key {rk!r} (or set replication_key: null)",
                plugin="adapter 'ldap'",
                field="attributes",
            )
        return StreamSpec(
            s.name,
            schema={"type": "object", "properties": props, "required": ["dn"]},
            key_properties=("dn",),
            replication_key=rk,
            replication_keys=tuple(k for k in offered if k in props),
            options={
                "base": s.base,
                "filter": s.filter,
                "scope": s.scope,
                "attributes": request,
                "page_size": s.page_size or self.options.page_size,
            },
        )

    def describe_read(self, spec: StreamSpec) -> dict[str, Any]:
        """What :meth:`read` sends (for ``dcapix run --dry-run``)."""
        o = dict(spec.options)
        return {
            "search": f"{o.get('base')} {o.get('scope')} {o.get('filter')}",
            "page_size": o.get("page_size"),
        }

    # -- reading --------------------------------------------------------------------------------
    def _aliases(self) -> dict[str, str]:
        schema = self.subschema()
        out = {}
        for key, at in schema.attribute_types.items():
            if not key[:1].isdigit():
                out[key] = at.name
        return out

    def server_time(self) -> _dt.datetime:
        """The server's clock now (cn=Monitor's current time, or the root DSE's ``currentTime``);
        without either, this machine's clock minus ``clock_skew``."""
        for base, attr in (("cn=Current,cn=Time,cn=Monitor", "monitorTimestamp"), ("", "currentTime")):
            try:
                found = self.backend.search(base, "base", "(objectClass=*)", [attr])
            except (LdapError, NotImplementedError):
                continue
            text = first(found[0][1], attr) if found else None
            if text:
                try:
                    return parse_generalized_time(text)
                except ValueError:
                    continue
        now = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=self.options.clock_skew)
        return now.replace(microsecond=0)

    def read(
        self,
        stream: StreamSpec,
        *,
        state: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """The stream's entries, one batch per page (Arrow, converted column-wise).

        Incremental streams: the search adds ``(rk>=bookmark)``; entries at the bookmark value
        whose DN is listed in ``keys_at_value`` are dropped (the toolkit's boundary semantics).
        A paged search returns entries in the server's order, not by ``rk``, so the new bookmark is
        carried by the **last** batch only; and it only covers entries changed before the read
        began (by the server's clock): an entry changed while the read runs is read again by the
        next run rather than possibly skipped.
        """
        o = dict(stream.options)
        if "base" not in o:
            stream = self.get_stream(stream.name)
            o = dict(stream.options)
        props = stream.properties
        rk = stream.replication_key
        names = ["dn", *[c for c in (columns or props) if c in props and c != "dn"]]
        if rk is not None and rk not in names:
            names.append(rk)
        schema = {"type": "object", "properties": {n: props[n] for n in names}}
        from dc_api_x.arrow import jsonschema_to_arrow

        arrow_schema = jsonschema_to_arrow(schema)
        request = list(o.get("attributes") or names[1:])
        if columns is not None:
            request = names[1:]
        flt = str(o.get("filter") or "(objectClass=*)")
        bm = None
        upper: Any = None
        if rk is not None:
            from dc_api_x.bookmarks import BoundaryBookmark

            try:
                bm = BoundaryBookmark.from_state(
                    state, rk, ("dn",), stream=stream.name, convert=lambda v: _bookmark_value(rk, v)
                )
            except ValueError as exc:
                raise self.error(f"bad bookmark in state: {exc}", stream=stream.name) from None
            if bm.start_value is not None:
                flt = f"(&{flt}({rk}>={_filter_value(rk, bm.start_value)}))"
            now = self.server_time()
            upper = now if rk == "modifyTimestamp" else now.strftime("%Y%m%d%H%M%S.%fZ")
        aliases = self._aliases()
        search = (
            str(o["base"]),
            str(o.get("scope") or "sub"),
            flt,
            request,
            int(o.get("page_size") or self.options.page_size),
        )
        controls = [c.as_tuple() for c in self.options.controls]
        # the next page is fetched (and the server works on it) while this one is converted;
        # with a limit, no page beyond it is asked for
        pages: Any = self.backend.paged_search(*search, controls=controls) if limit is not None else None
        if pages is None:
            pages = PageFetcher(lambda: self.backend.paged_search(*search, controls=controls))
        held: Batch | None = None
        left = limit
        gc_was_on = _pause_gc()
        try:
            while True:
                try:
                    page = next(pages)
                except StopIteration:
                    break
                except LdapError as exc:
                    raise self._fail(exc, stream=stream.name) from None
                try:
                    table = page_to_arrow(page, schema, arrow_schema, aliases)
                except ValueProblem as exc:
                    raise SchemaError(
                        f"adapter 'ldap', stream {stream.name!r}, field {exc.attribute!r}: {exc} "
                        f"(entry {exc.dn!r})",
                        adapter=self.name,
                        stream=stream.name,
                    ) from None
                if bm is not None and bm.has_start:
                    table = _drop_delivered(table, bm, rk)  # type: ignore[arg-type]
                if left is not None:
                    table = table.slice(0, left)
                    left -= table.num_rows
                if bm is not None:
                    _advance(table, bm, rk, upper)  # type: ignore[arg-type]
                if held is not None:
                    yield held
                held = Batch.from_arrow(table, schema=schema)
                if left is not None and left <= 0:
                    break
        finally:
            pages.close()
            if gc_was_on:
                gc.enable()
        bookmark = None
        if bm is not None:
            bookmark = bm.to_state()
            if bookmark is None and state:
                bookmark = None  # nothing delivered before the cut-off: the old state stands
        if held is not None:
            held.bookmark = bookmark
            yield held
        elif bookmark is not None:
            yield Batch.from_records([], schema=schema, bookmark=bookmark)

    # -- writing --------------------------------------------------------------------------------
    def start_write(self, stream: StreamSpec, *, load_method: str | None = None) -> None:
        """Check the stream's fields against the server's schema; operational attributes
        (``modifyTimestamp``, ``entryUUID`` …) are set by the server and not written."""
        super().start_write(stream, load_method=load_method)
        schema = self.subschema()
        writable: dict[str, Any] = {}
        skipped: list[str] = []
        for prop in stream.properties:
            if prop == "dn":
                continue
            at = schema.attribute(prop)
            if at is None:
                raise SchemaError(
                    f"adapter 'ldap', stream {stream.name!r}, field {prop!r}: the server's schema has no "
                    "such attribute (rename or drop it with a transform)",
                    adapter=self.name,
                    stream=stream.name,
                )
            if at.operational:
                skipped.append(prop)
            else:
                writable[prop] = at
        if "dn" not in stream.properties and not self.options.dn_template:
            raise SchemaError(
                f"adapter 'ldap', stream {stream.name!r}: records need a 'dn' field or the option "
                "dn_template (e.g. 'uid={uid},ou=people,dc=example,dc=com')",
                adapter=self.name,
                stream=stream.name,
            )
        b64 = {n: _is_base64(p) for n, p in stream.properties.items()}
        self._writes[stream.name] = _WritePlan(load_method or "upsert", writable, skipped, b64)

    def _dn(self, rec: Mapping[str, Any], stream: StreamSpec) -> str:
        dn = rec.get("dn")
        if dn:
            return str(dn)
        tpl = self.options.dn_template
        if not tpl:
            raise SchemaError(
                f"adapter 'ldap', stream {stream.name!r}, field 'dn': a record has no dn and no "
                "dn_template is set",
                adapter=self.name,
                stream=stream.name,
            )
        try:
            return tpl.format(**{k: _dn_escape(v) for k, v in rec.items()})
        except KeyError as exc:
            raise SchemaError(
                f"adapter 'ldap', stream {stream.name!r}, field {exc.args[0]!r}: dn_template needs it "
                "and a record lacks it",
                adapter=self.name,
                stream=stream.name,
            ) from None

    def _attributes(
        self, rec: Mapping[str, Any], plan: _WritePlan, stream: StreamSpec
    ) -> dict[str, list[bytes]]:
        attrs: dict[str, list[bytes]] = {}
        schema = self.subschema()
        for key, value in rec.items():
            at = plan.writable.get(key)
            if at is None:
                if key == "dn" or key in plan.skipped:
                    continue
                known = plan.unknown.get(key)
                if known is None:
                    t = schema.attribute(key)
                    if t is not None and not t.operational:
                        plan.writable[key] = at = t
                    else:
                        plan.unknown[key] = bool(t is not None)
                        known = plan.unknown[key]
                if at is None:
                    if known:
                        continue  # operational: the server sets it
                    raise SchemaError(
                        f"adapter 'ldap', stream {stream.name!r}, field {key!r}: the server's schema has "
                        "no such attribute",
                        adapter=self.name,
                        stream=stream.name,
                    )
            try:
                attrs[write_name(key, at)] = to_ldap_values(
                    value, at, attribute=key, base64_text=plan.base64.get(key)
                )
            except ValueError as exc:
                raise SchemaError(
                    f"adapter 'ldap', stream {stream.name!r}, field {key!r}: {exc} (dn {rec.get('dn')!r})",
                    adapter=self.name,
                    stream=stream.name,
                ) from None
        has_class = any(k.lower() == "objectclass" and v for k, v in attrs.items())
        if not has_class and self.options.object_classes:
            attrs["objectClass"] = [c.encode() for c in self.options.object_classes]
        return attrs

    def write(self, stream: StreamSpec, batch: Batch) -> WriteResult:
        """Add the batch's entries (``append``) or add-or-replace them by DN (``upsert``): an
        entry that exists gets each field of the record replaced (a null field removes the
        attribute). Operations are pipelined ``write_window`` at a time; all are answered before
        this returns, so the rows are committed."""
        plan = self._writes.get(stream.name)
        if plan is None:
            self.start_write(stream)
            plan = self._writes[stream.name]
        adds: list[WriteOp] = []
        full: list[dict[str, list[bytes]]] = []
        modifies: list[WriteOp] = []
        for rec in batch.records:
            dn = self._dn(rec, stream)
            attrs = self._attributes(rec, plan, stream)
            if any(k.lower() == "objectclass" and v for k, v in attrs.items()) or plan.method == "append":
                full.append(attrs)
                adds.append(WriteOp("add", dn, attributes={k: v for k, v in attrs.items() if v}))
            else:  # no objectClass: it cannot be added, only an existing entry changed
                modifies.append(
                    WriteOp("modify", dn, changes=[Change("replace", k, v) for k, v in attrs.items()])
                )
        results = self._call(self.backend.write, adds, stream=stream.name) if adds else []
        inserted = 0
        for op, attrs, err in zip(adds, full, results, strict=True):
            if err is None:
                inserted += 1
            elif err.code == ALREADY_EXISTS and plan.method == "upsert":
                changes = [Change("replace", k, v) for k, v in attrs.items()]
                modifies.append(WriteOp("modify", op.dn, changes=changes))
            else:
                raise self._fail(err, stream=stream.name)
        if modifies:
            for err in self._call(self.backend.write, modifies, stream=stream.name):
                if err is not None:
                    raise self._fail(err, stream=stream.name)
        rows = len(adds) + len(modifies) - (len(adds) - inserted)
        plan.rows += rows
        plan.inserted += inserted
        plan.updated += len(modifies)
        return WriteResult(rows=rows, committed=True, inserted=inserted, updated=len(modifies))

    def finish_write(self, stream: StreamSpec) -> None:
        self.flush(stream)
        plan = self._writes.pop(stream.name, None)
        if plan is not None:
            log.info(
                "ldap: stream %s: %d entries written (%d added, %d replaced)",
                stream.name,
                plan.rows,
                plan.inserted,
                plan.updated,
            )

    # -- request side (ApiClient) ---------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        """One LDAP operation on the entry ``path`` (a DN):

        * ``GET`` — search: ``params`` ``scope`` (base, one, sub; default base), ``filter``,
          ``attributes`` (comma-separated or a list), ``page_size`` (paged). Base scope answers
          the entry as an object (404 when missing), the others a list of entries.
        * ``POST`` — add the entry ``json`` (``{attribute: value or [values]}``), 201.
        * ``PUT`` — add, or replace the given attributes of an existing entry (upsert).
        * ``PATCH`` — modify: ``json`` ``{"replace": {...}, "add": {...}, "delete": {...}}`` or
          a plain ``{attribute: value}`` (replace).
        * ``DELETE`` — delete the entry, 204.
        * ``EXTENDED`` — an extended operation: ``path`` is its OID, or ``whoami`` /
          ``password_modify`` (``json``: ``user``, ``old``, ``new``); ``json.value`` base64.

        LDAP result codes map to statuses (noSuchObject 404, invalidCredentials 401,
        insufficientAccessRights 403, entryAlreadyExists 409, other failures 400); ``data`` holds
        ``{"result": code, "name": …, "message": …}`` then.
        """
        method = method.upper()
        dn = path.strip()
        if dn.startswith("/"):
            dn = dn[1:]
        params = dict(kwargs.get("params") or {})
        body = kwargs.get("json")
        url = f"{self.where}/{dn}"
        t0 = time.perf_counter()
        try:
            status, data = self._dispatch(method, dn, params, body)
        except LdapError as exc:
            if exc.code in CONNECT_ERRORS:
                raise self._fail(exc) from None
            status = STATUS.get(exc.code, 400)
            data = {"result": exc.code, "name": exc.name, "message": exc.message}
        except NotImplementedError as exc:
            raise self._unsupported(str(exc)) from None
        import orjson

        content = b"" if data is None else orjson.dumps(data)
        return Response(
            status_code=status,
            headers={"content-type": "application/json"},
            content=content,
            url=url,
            method=method,
            data=data,
            elapsed=time.perf_counter() - t0,
        )

    def _dispatch(self, method: str, dn: str, params: dict[str, Any], body: Any) -> tuple[int, Any]:
        b = self.backend
        if method in ("GET", "HEAD"):
            scope = str(params.get("scope") or "base")
            if scope not in ("base", "one", "sub"):
                raise LdapError(2, f"scope must be base, one or sub, got {scope!r}")
            attrs = params.get("attributes") or ["*"]
            if isinstance(attrs, str):
                attrs = [a.strip() for a in attrs.split(",") if a.strip()]
            flt = str(params.get("filter") or "(objectClass=*)")
            page = params.get("page_size")
            if page:
                entries = [e for p in b.paged_search(dn, scope, flt, attrs, int(page)) for e in p]
            else:
                entries = b.search(dn, scope, flt, attrs)
            schema = self.subschema()
            out = [entry_to_json(d, a, schema) for d, a in entries]
            if scope == "base":
                if not out:
                    return 404, {"result": 32, "name": "noSuchObject", "message": ""}
                return 200, out[0]
            return 200, out
        if method == "POST":
            [err] = b.write([WriteOp("add", dn, attributes=self._json_attributes(body))])
            if err is not None:
                raise err
            return 201, {"dn": dn, "created": True}
        if method == "PUT":  # replace the given attributes, or add the entry when it is missing
            attrs = self._json_attributes(body, keep_empty=True)
            [err] = b.write(
                [WriteOp("modify", dn, changes=[Change("replace", k, v) for k, v in attrs.items()])]
            )
            if err is None:
                return 200, {"dn": dn, "created": False}
            if err.code != NO_SUCH_OBJECT:
                raise err
            [err] = b.write([WriteOp("add", dn, attributes={k: v for k, v in attrs.items() if v})])
            if err is not None:
                raise err
            return 201, {"dn": dn, "created": True}
        if method == "PATCH":
            body = dict(body or {})
            changes = []
            if any(k in body for k in ("replace", "add", "delete")):
                for op in ("add", "delete", "replace"):
                    for name, vals in self._json_attributes(body.get(op) or {}, keep_empty=True).items():
                        changes.append(Change(op, name, vals))
            else:
                changes = [
                    Change("replace", k, v) for k, v in self._json_attributes(body, keep_empty=True).items()
                ]
            [err] = b.write([WriteOp("modify", dn, changes=changes)])
            if err is not None:
                raise err
            return 200, {"dn": dn, "modified": len(changes)}
        if method == "DELETE":
            [err] = b.write([WriteOp("delete", dn)])
            if err is not None:
                raise err
            return 204, None
        if method == "EXTENDED":
            body = dict(body or {})
            if dn.lower() in ("whoami", "who_am_i", "1.3.6.1.4.1.4203.1.11.3"):
                return 200, {"authzid": b.whoami()}
            if dn.lower() in ("password_modify", "passwd", "1.3.6.1.4.1.4203.1.11.1"):
                gen = b.password_modify(body.get("user"), body.get("old"), body.get("new"))
                return 200, {"generated": gen} if gen else {"modified": True}
            import base64

            value = base64.b64decode(body["value"]) if body.get("value") else None
            rname, resp = b.extended(dn, value)
            return 200, {"name": rname, "value": base64.b64encode(resp).decode() if resp else None}
        raise NotImplementedError(f"method {method!r} (use GET, POST, PUT, PATCH, DELETE or EXTENDED)")

    def _json_attributes(self, body: Any, *, keep_empty: bool = False) -> dict[str, list[bytes]]:
        if not isinstance(body, Mapping):
            raise LdapError(2, "the request body must be a JSON object of attributes")
        schema = self.subschema()
        out = {}
        for k, v in body.items():
            if k == "dn":
                continue
            at = schema.attribute(k)
            vals = to_ldap_values(v, at, attribute=k)
            if vals or keep_empty:
                out[write_name(k, at)] = vals
        return out

    # -- LDIF (python-ldap's ldif module) -------------------------------------------------------
    def export_ldif(
        self, stream: StreamSpec | str, out: Any, *, state: Mapping[str, Any] | None = None
    ) -> int:
        """Write the stream's entries as LDIF (RFC 2849) to the text file ``out`` (with python-ldap's
        :mod:`ldif` writer, so base64 and line folding follow its rules). Returns the count."""
        ldif = _ldif_module()
        spec = self.get_stream(stream) if isinstance(stream, str) else stream
        o = spec.options
        binary = [n for n, p in spec.properties.items() if _is_base64(p)]
        writer = ldif.LDIFWriter(out, base64_attrs=binary, cols=76)  # binary syntaxes always base64
        n = 0
        flt = str(o.get("filter") or "(objectClass=*)")
        rk = spec.replication_key
        if state and rk and state.get("replication_key_value") is not None:
            value = _bookmark_value(rk, state["replication_key_value"])
            flt = f"(&{flt}({rk}>={_filter_value(rk, value)}))"
        pages = self.backend.paged_search(
            str(o["base"]),
            str(o.get("scope") or "sub"),
            flt,
            list(o.get("attributes") or ["*"]),
            int(o.get("page_size") or self.options.page_size),
        )
        try:
            for page in pages:
                for dn, attrs in page:
                    writer.unparse(dn, {k: list(v) for k, v in attrs.items()})
                    n += 1
        except LdapError as exc:
            raise self._fail(exc, stream=spec.name) from None
        finally:
            pages.close()
        return n

    def import_ldif(self, source: Any, *, load_method: str = "upsert") -> WriteResult:
        """Load LDIF (RFC 2849) from the text file ``source`` with python-ldap's :mod:`ldif`
        parser: entry records are added (``upsert``: an existing entry gets their attributes
        replaced); a file of ``changetype: modify`` records is applied as written."""
        ldif = _ldif_module()
        text = source.read()
        parser = ldif.LDIFRecordList(io.StringIO(text))
        ops: list[WriteOp] = []
        if re.search(r"(?im)^changetype:\s*modify\s*$", text):
            parser.parse_change_records()
            names = {0: "add", 1: "delete", 2: "replace"}
            for dn, modops, _controls in parser.all_modify_changes:
                changes = [Change(names[op], attr, list(vals or ())) for op, attr, vals in modops]
                ops.append(WriteOp("modify", dn, changes=changes))
            results = self._call(self.backend.write, ops)
            for err in results:
                if err is not None:
                    raise self._fail(err)
            return WriteResult(rows=len(ops), committed=True, inserted=0, updated=len(ops))
        parser.parse_entry_records()
        schema = self.subschema()
        for dn, entry in parser.all_records:
            attrs = {}
            for k, v in entry.items():
                at = schema.attribute(k)
                if at is None or not at.operational:  # the server sets operational attributes
                    attrs[write_name(k, at)] = list(v)
            ops.append(WriteOp("add", dn, attributes=attrs))
        inserted = 0
        results = self._call(self.backend.write, ops)
        again = []
        for op, err in zip(ops, results, strict=True):
            if err is None:
                inserted += 1
            elif err.code == ALREADY_EXISTS and load_method == "upsert":
                changes = [Change("replace", k, v) for k, v in op.attributes.items()]
                again.append(WriteOp("modify", op.dn, changes=changes))
            else:
                raise self._fail(err)
        for err in self._call(self.backend.write, again) if again else []:
            if err is not None:
                raise self._fail(err)
        return WriteResult(rows=len(ops), committed=True, inserted=inserted, updated=len(again))

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        if not self._closed:
            self.backend.close()
        super().close()

    def __repr__(self) -> str:
        return f"<LdapAdapter backend={self.options.backend!r} url={self.where!r}>"


def _pause_gc() -> bool:
    """Switch the cyclic garbage collector off while pages are decoded (``True`` if it was on).

    A page is thousands of fresh lists, dicts and bytes; each allocation burst triggers
    collections that scan every live object again (15 % of a 50,000-entry read in a py-spy
    profile). Entries form no cycles, so reference counting frees them all the same; the
    collector is switched back on when the read ends or is closed."""
    was_on = gc.isenabled()
    if was_on:
        gc.disable()
    return was_on


class PageFetcher:
    """Runs a backend's paged search in a thread, one page ahead of the consumer, so the server
    prepares page N+1 while page N is converted. Errors of the search are raised by ``next()``;
    :meth:`close` stops it (the generator is closed in its own thread: an unfinished paged search
    is abandoned on the server)."""

    def __init__(self, make: Callable[[], Iterator[Any]], depth: int = 1) -> None:
        self._q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(make,), name="dcapix-ldap-pages", daemon=True)
        self._thread.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, make: Callable[[], Iterator[Any]]) -> None:
        gen: Any = None
        try:
            gen = make()
            for page in gen:
                if not self._put(("page", page)):
                    return
            self._put(("end", None))
        except BaseException as exc:
            self._put(("error", exc))
        finally:
            close = getattr(gen, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.debug("closing the paged search failed", exc_info=True)

    def __iter__(self) -> PageFetcher:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        kind, value = self._q.get()
        if kind == "page":
            return value
        self._done = True
        if kind == "error":
            raise value
        raise StopIteration

    def close(self) -> None:
        self._stop.set()
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=60)


def _ldif_module() -> Any:
    try:
        import ldif  # python-ldap's
    except ImportError:
        raise AdapterError(
            "adapter 'ldap': LDIF import/export uses python-ldap's ldif module: "
            "pip install 'dc-api-x-ldap[python-ldap]'",
            adapter="ldap",
        ) from None
    return ldif


def _is_base64(prop: Mapping[str, Any]) -> bool:
    """Whether a stream property carries binary as base64 text (itself or its array items)."""
    items = prop.get("items") if isinstance(prop.get("items"), Mapping) else {}
    return "base64" in (prop.get("contentEncoding"), (items or {}).get("contentEncoding"))


def _bookmark_value(rk: str, value: Any) -> Any:
    if rk == "modifyTimestamp":
        if isinstance(value, _dt.datetime):
            return value
        text = str(value)
        if text[4:5] == "-":  # the JSON (ISO) form, not a GeneralizedTime such as 20240101120000-0500
            v = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return v if v.tzinfo else v.replace(tzinfo=_dt.timezone.utc)
        return parse_generalized_time(text)
    return str(value)


def _filter_value(rk: str, value: Any) -> str:
    text = format_generalized_time(value) if isinstance(value, _dt.datetime) else str(value)
    return re.sub(r"([*()\\\x00])", lambda m: f"\\{ord(m.group(1)):02x}", text)


def _dn_escape(value: Any) -> Any:
    """An RFC 4514 escaped attribute value for a DN template."""
    if not isinstance(value, str):
        return value
    out = re.sub(r'([,+"\\<>;=])', r"\\\1", value)
    if out.startswith((" ", "#")):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out


def _drop_delivered(table: Any, bm: Any, rk: str) -> Any:
    """The rows of ``table`` not delivered before (the toolkit's boundary semantics, by DN)."""
    vals = table.column(rk).to_pylist()
    dns = table.column("dn").to_pylist()
    keep = [bm.is_new(v, (dn,)) for v, dn in zip(vals, dns, strict=True)]
    if all(keep):
        return table
    import pyarrow as pa

    return table.filter(pa.array(keep, pa.bool_()))


def _advance(table: Any, bm: Any, rk: str, upper: Any) -> None:
    """Advance the bookmark with the delivered rows changed before ``upper`` (the server's clock
    when the read began; later changes are left for the next run): the largest such value and
    the DNs at it, found column-wise."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(rk)
    if table.num_rows == 0:
        return
    bound = pa.scalar(upper, type=col.type)
    final = table.filter(pc.fill_null(pc.less(col, bound), False))
    if final.num_rows == 0:
        return
    top = pc.max(final.column(rk))
    at = final.filter(pc.equal(final.column(rk), top))
    value = top.as_py()
    for dn in at.column("dn").to_pylist():
        bm.advance(value, (dn,))
