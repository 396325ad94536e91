"""The ``python-ldap`` backend: OpenLDAP's libldap through python-ldap (C).

* **SASL**: ``auth: sasl_external`` binds with SASL EXTERNAL — over ``ldapi://`` the server maps
  the peer's uid/gid to a DN (no password anywhere); over TLS the client certificate.
* **Server controls**: ``controls:`` are sent as python-ldap ``RequestControl`` objects with every
  search (paged results is added by the adapter).
* **LDIF**: the adapter's ``export_ldif`` / ``import_ldif`` use python-ldap's :mod:`ldif` module.
* Writes are pipelined: up to ``write_window`` operations are sent before their results are read.

libldap decodes entries in C, which makes this the fastest backend for large reads.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import ldap
import ldap.controls
import ldap.extop
import ldap.sasl
import ldap.schema
from ldap.controls import RequestControl, SimplePagedResultsControl

from ..schema import AttributeType, ObjectClass, SubSchema
from . import AUTH_METHODS, Backend, Control, Entry, LdapError, WriteOp

__all__ = ["PythonLdapBackend"]

_SCOPES = {"base": ldap.SCOPE_BASE, "one": ldap.SCOPE_ONELEVEL, "sub": ldap.SCOPE_SUBTREE}
_MOD = {"add": ldap.MOD_ADD, "delete": ldap.MOD_DELETE, "replace": ldap.MOD_REPLACE}
_KIND = {0: "STRUCTURAL", 1: "ABSTRACT", 2: "AUXILIARY"}


def _error(exc: Exception, what: str, dn: str | None = None) -> LdapError:
    info: dict[str, Any] = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    if isinstance(exc, ldap.SERVER_DOWN):
        code = 81
    elif isinstance(exc, ldap.CONNECT_ERROR):
        code = 91
    elif isinstance(exc, ldap.TIMEOUT):
        code = 85
    else:
        code = int(info.get("result", getattr(exc, "errnum", -1)))
    message = " ".join(str(x) for x in (info.get("desc", ""), info.get("info", "")) if x)
    if not message:
        message = f"{type(exc).__name__}: {exc}"
    return LdapError(code, message, dn=dn, what=what)


class PythonLdapBackend(Backend):
    name = "python-ldap"
    library = "ldap"
    features = frozenset({"sasl_external", "controls", "ldif", "extended"})
    auth_methods = AUTH_METHODS["python-ldap"]
    pages_ahead = True

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self.conn: Any = None

    # -- session ----------------------------------------------------------------------------------
    def connect(self) -> None:
        if self.conn is not None:
            return
        o = self.options
        try:
            conn = ldap.initialize(" ".join(o.all_urls()))
            conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
            conn.set_option(ldap.OPT_REFERRALS, 0)
            conn.set_option(ldap.OPT_NETWORK_TIMEOUT, float(o.timeout))
            conn.set_option(ldap.OPT_TIMEOUT, float(o.timeout))
            if o.ca_file:
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, o.ca_file)
            if not o.verify_tls:
                conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_NEVER)
            if o.ca_file or not o.verify_tls:
                conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
            if o.start_tls and not o.url.lower().startswith("ldaps:"):
                conn.start_tls_s()
            if o.auth == "simple":
                conn.simple_bind_s(o.bind_dn, o.secret())
            elif o.auth == "sasl_external":
                conn.sasl_interactive_bind_s("", ldap.sasl.external(o.bind_dn or ""))
            else:
                conn.simple_bind_s("", "")
        except ldap.LDAPError as exc:
            raise _error(
                exc, "bind" if not isinstance(exc, ldap.SERVER_DOWN | ldap.CONNECT_ERROR) else "connect"
            ) from None
        self.conn = conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.unbind_s()
            except ldap.LDAPError:
                pass

    # -- reading ----------------------------------------------------------------------------------
    @staticmethod
    def _controls(controls: Sequence[Control]) -> list[Any]:
        return [RequestControl(oid, crit, value) for oid, crit, value in controls]

    def search(
        self,
        base: str,
        scope: str,
        filter: str,
        attributes: Sequence[str] | None,
        *,
        controls: Sequence[Control] = (),
    ) -> list[Entry]:
        self.connect()
        try:
            msgid = self.conn.search_ext(
                base,
                _SCOPES[scope],
                filter,
                list(attributes) if attributes is not None else ["1.1"],
                serverctrls=self._controls(controls) or None,
            )
            _, data, _, _ = self.conn.result3(msgid)
        except ldap.NO_SUCH_OBJECT:
            return []
        except ldap.LDAPError as exc:
            raise _error(exc, "search", base) from None
        return [(dn, attrs) for dn, attrs in data if dn is not None]

    def paged_search(
        self,
        base: str,
        scope: str,
        filter: str,
        attributes: Sequence[str] | None,
        page_size: int,
        *,
        controls: Sequence[Control] = (),
        ahead: bool = False,
    ) -> Generator[list[Entry], None, None]:
        self.connect()
        conn = self.conn
        extra = self._controls(controls)
        attrlist = list(attributes) if attributes is not None else ["1.1"]

        def send(cookie: bytes, size: int = page_size, attrs: list[str] = attrlist) -> int:
            paged = SimplePagedResultsControl(True, size=size, cookie=cookie)
            return int(conn.search_ext(base, _SCOPES[scope], filter, attrs, serverctrls=[paged, *extra]))

        def answer(msgid: int) -> tuple[list[Entry], bytes]:
            _, data, _, sctrls = conn.result3(msgid)
            cookie = b""
            for c in sctrls or ():
                if c.controlType == SimplePagedResultsControl.controlType:
                    cookie = c.cookie
            return [(dn, attrs) for dn, attrs in data if dn is not None], cookie

        cookie: bytes = b""
        done = False
        pending: int | None = None  # the request of the next page, sent but not read
        try:
            try:
                pending = send(b"")
            except ldap.LDAPError as exc:
                raise _error(exc, "search", base) from None
            while True:
                try:
                    entries, cookie = answer(pending)
                    pending = None
                    if not cookie:
                        done = True
                    elif ahead:  # libldap sends without waiting: slapd works while we convert
                        pending = send(cookie)
                except ldap.LDAPError as exc:
                    raise _error(exc, "search", base) from None
                yield entries
                if done:
                    return
                if pending is None:
                    try:
                        pending = send(cookie)
                    except ldap.LDAPError as exc:
                        raise _error(exc, "search", base) from None
        finally:
            if not done and self.conn is not None:
                try:
                    if pending is not None:  # the page asked for ahead: its answer has the cookie
                        _, cookie = answer(pending)
                    if cookie:  # RFC 2696: abandon the paged search (size 0 with the cookie)
                        conn.result3(send(cookie, 0, ["1.1"]))
                except ldap.LDAPError:
                    pass

    def subschema(self, dn: str) -> SubSchema:
        self.connect()
        try:
            entry = self.conn.read_subschemasubentry_s(dn)
        except ldap.LDAPError as exc:
            raise _error(exc, "schema", dn) from None
        if not entry:
            raise LdapError(32, "no subschema subentry", dn=dn, what="schema")
        ss = ldap.schema.SubSchema(entry, check_uniqueness=0)
        ats = []
        for oid in ss.listall(ldap.schema.AttributeType):
            at = ss.get_obj(ldap.schema.AttributeType, oid)
            ats.append(
                AttributeType(
                    oid=at.oid,
                    names=tuple(at.names or ()),
                    syntax=at.syntax.split("{")[0] if at.syntax else None,
                    single_value=bool(at.single_value),
                    no_user_modification=bool(at.no_user_mod),
                    usage="userApplications" if not at.usage else "operational",
                    sup=(at.sup or (None,))[0],
                )
            )
        ocs = []
        for oid in ss.listall(ldap.schema.ObjectClass):
            oc = ss.get_obj(ldap.schema.ObjectClass, oid)
            ocs.append(
                ObjectClass(
                    oid=oc.oid,
                    names=tuple(oc.names or ()),
                    kind=_KIND.get(oc.kind, "STRUCTURAL"),
                    sup=tuple(oc.sup or ()),
                    must=tuple(oc.must or ()),
                    may=tuple(oc.may or ()),
                )
            )
        return SubSchema.build(ats, ocs)

    # -- writing ----------------------------------------------------------------------------------
    def _send(self, op: WriteOp) -> int:
        conn = self.conn
        if op.kind == "add":
            return int(conn.add_ext(op.dn, list(op.attributes.items())))
        if op.kind == "modify":
            mods = [(_MOD[c.op], c.attribute, list(c.values) or None) for c in op.changes]
            return int(conn.modify_ext(op.dn, mods))
        if op.kind == "delete":
            return int(conn.delete_ext(op.dn))
        raise ValueError(f"unknown write operation {op.kind!r}")

    def write(self, ops: Sequence[WriteOp]) -> list[LdapError | None]:
        self.connect()
        out: list[LdapError | None] = []
        window = self.options.write_window
        for start in range(0, len(ops), window):
            chunk = ops[start : start + window]
            ids: list[Any] = []
            for op in chunk:
                try:
                    ids.append(self._send(op))
                except ldap.LDAPError as exc:
                    ids.append(_error(exc, op.kind, op.dn))
            for op, mid in zip(chunk, ids, strict=True):
                if isinstance(mid, LdapError):
                    out.append(mid)
                    continue
                try:
                    self.conn.result3(mid)
                    out.append(None)
                except (ldap.SERVER_DOWN, ldap.CONNECT_ERROR, ldap.TIMEOUT) as exc:
                    raise _error(exc, op.kind, op.dn) from None
                except ldap.LDAPError as exc:
                    out.append(_error(exc, op.kind, op.dn))
        return out

    # -- extended operations ----------------------------------------------------------------------
    def extended(self, oid: str, value: bytes | None = None) -> tuple[str | None, bytes | None]:
        self.connect()
        try:
            name, resp = self.conn.extop_s(ldap.extop.ExtendedRequest(oid, value))
        except ldap.LDAPError as exc:
            raise _error(exc, f"extended operation {oid}") from None
        return name, resp

    def whoami(self) -> str:
        self.connect()
        try:
            return str(self.conn.whoami_s() or "")
        except ldap.LDAPError as exc:
            raise _error(exc, "who am I") from None

    def password_modify(self, user: str | None, old: str | None, new: str | None) -> str | None:
        self.connect()
        try:
            _, resp = self.conn.passwd_s(user, old, new, extract_newpw=True)
        except ldap.LDAPError as exc:
            raise _error(exc, "password modify", user) from None
        generated = getattr(resp, "genPasswd", resp)  # a PasswordModifyResponse when there is one
        if isinstance(generated, bytes):
            return generated.decode("utf-8")
        return generated if isinstance(generated, str) else None
