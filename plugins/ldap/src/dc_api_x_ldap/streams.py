"""Schema mapping of the ``ldap`` adapter: which streams a directory has (the configured searches,
else one per naming context) and their JSON Schema, built from the server's subschema
(:mod:`dc_api_x_ldap.schema`): the attributes of the entries' object classes (or the configured
ones), the operational attributes, the replication keys the server offers; the key is ``dn``.
"""

from __future__ import annotations

import re
from typing import Any

from dc_api_x.exceptions import ConfigError
from dc_api_x.types import StreamSpec

from .backends import LdapError, values
from .base import LdapBase
from .config import StreamOptions
from .schema import REPLICATION_KEYS, attribute_property

__all__ = ["OPERATIONAL", "LdapStreams"]

#: operational attributes read with every stream when the server's schema has them
OPERATIONAL = ("entryUUID", "createTimestamp", "modifyTimestamp", "entryCSN")


class LdapStreams(LdapBase):
    """Discovery: :meth:`discover` and :meth:`describe_read`."""

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
        if self._specs_ahead is not None:  # found ahead (ahead.py), with the same options
            specs, self._specs_ahead = self._specs_ahead, None
            return specs
        return [self._spec(s) for s in self._stream_options()]

    def _scan_classes(self, s: StreamOptions) -> list[str]:
        """The object classes of the stream's entries (one paged search for ``objectClass``)."""
        native = self.native()
        if native is not None:
            from .native import scan_values

            try:
                return scan_values(
                    native, s.base, s.scope, s.filter, "objectClass", s.page_size or self.options.page_size
                )
            except LdapError as exc:
                raise self._fail(exc, stream=s.name) from None
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
        options: dict[str, Any] = {
            "base": s.base,
            "filter": s.filter,
            "scope": s.scope,
            "attributes": request,
            "page_size": s.page_size or self.options.page_size,
        }
        if s.object_classes is not None and s.attributes is None:
            # every attribute the classes allow is a property: the native reader asks for "*" and
            # these operational attributes (the server matches each of an entry's attributes
            # against a list of ~60 names otherwise: +35 % of its CPU) and drops an attribute of
            # another class, as the server does when the list is sent
            options["operational"] = [a for a in operational if a in props]
        return StreamSpec(
            s.name,
            schema={"type": "object", "properties": props, "required": ["dn"]},
            key_properties=("dn",),
            replication_key=rk,
            replication_keys=tuple(k for k in offered if k in props),
            options=options,
        )

    def describe_read(self, spec: StreamSpec) -> dict[str, Any]:
        """What :meth:`read` sends (for ``dcapix run --dry-run``)."""
        o = dict(spec.options)
        return {
            "search": f"{o.get('base')} {o.get('scope')} {o.get('filter')}",
            "page_size": o.get("page_size"),
        }
