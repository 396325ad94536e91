"""The request side of the ``ldap`` adapter (what ``ApiClient`` calls): one LDAP operation per
request on the entry named by the path (a DN) — GET searches, POST adds, PUT upserts, PATCH
modifies, DELETE deletes, EXTENDED runs an extended operation — answered as a JSON
:class:`~dc_api_x.ext.adapters.Response` whose status maps the LDAP result code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from dc_api_x.ext.adapters import Response

from .backends import NO_SUCH_OBJECT, Change, LdapError, WriteOp
from .base import CONNECT_ERRORS, LdapBase
from .schema import entry_to_json, to_ldap_values, write_name

__all__ = ["STATUS", "LdapOperations"]

#: LDAP result code → HTTP-like status of the request side
STATUS = {0: 200, 32: 404, 48: 401, 49: 401, 50: 403, 53: 403, 68: 409, 20: 409, 66: 409, 51: 503, 52: 503}


class LdapOperations(LdapBase):
    """:meth:`request`."""

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
