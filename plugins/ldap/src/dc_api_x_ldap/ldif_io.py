"""LDIF (RFC 2849) export and import of the ``ldap`` adapter, with python-ldap's :mod:`ldif`
module (its writer's base64 and line-folding rules, its parser for entry and change records).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

from dc_api_x.exceptions import AdapterError
from dc_api_x.types import StreamSpec, WriteResult

from .backends import ALREADY_EXISTS, Change, LdapError, WriteOp
from .base import LdapBase
from .schema import write_name
from .sink import _is_base64
from .source import _bookmark_value, _filter_value

__all__ = ["LdapLdif"]


class LdapLdif(LdapBase):
    """:meth:`export_ldif` and :meth:`import_ldif`."""

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
