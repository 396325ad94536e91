"""The ``ldap`` adapter as a sink: records checked against the server's subschema
(:meth:`LdapSink.start_write`), a DN from the record or ``dn_template``, values converted to the
attribute syntaxes, entries added (``append``) or added-or-replaced by DN (``upsert``) with
pipelined operations, every one answered before :meth:`LdapSink.write` returns.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dc_api_x.exceptions import SchemaError
from dc_api_x.types import Batch, StreamSpec, WriteResult

from .backends import ALREADY_EXISTS, Change, WriteOp
from .base import LdapBase
from .schema import to_ldap_values, write_name

__all__ = ["LdapSink"]

log = logging.getLogger("dc_api_x_ldap")


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


class LdapSink(LdapBase):
    """:meth:`start_write`, :meth:`write`, :meth:`finish_write`."""

    def __init__(self, options: Any = None, /, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._writes: dict[str, _WritePlan] = {}

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


def _is_base64(prop: Mapping[str, Any]) -> bool:
    """Whether a stream property carries binary as base64 text (itself or its array items)."""
    items = prop.get("items") if isinstance(prop.get("items"), Mapping) else {}
    return "base64" in (prop.get("contentEncoding"), (items or {}).get("contentEncoding"))


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
