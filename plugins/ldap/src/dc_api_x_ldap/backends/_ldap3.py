"""The ``ldap3`` backend (the default): pure Python, connection pooling, NTLM, extended operations.

* **Pooling**: ``url`` + ``urls`` form an ldap3 ``ServerPool`` (``pool_strategy`` first,
  round_robin or random; unreachable servers are skipped); ``pool_size > 1`` writes through an
  ldap3 ``REUSABLE`` connection pool of that many connections (otherwise one ``ASYNC`` connection
  pipelines ``write_window`` operations).
* **Auth**: anonymous, simple, SASL EXTERNAL (over ``ldapi://`` or TLS) and NTLM (``bind_dn`` is
  ``DOMAIN\\user``; Active Directory only).
* **Extended operations**: any OID (``extended()``), Who am I? and password modify through
  ``conn.extend.standard``.

Search entries are decoded raw: ldap3's fast BER decoder still parses each message, but the
per-value text decoding ldap3 does for its ``attributes`` view is skipped (the adapter converts
whole columns at once).
"""

from __future__ import annotations

import math
import ssl
import threading
from collections.abc import Generator, Sequence
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPObjectClassError

from ..schema import AttributeType, ObjectClass, SubSchema
from . import AUTH_METHODS, PAGED_RESULTS_OID, Backend, Control, Entry, LdapError, WriteOp

__all__ = ["Ldap3Backend"]

_SCOPES = {"base": ldap3.BASE, "one": ldap3.LEVEL, "sub": ldap3.SUBTREE}
_MOD = {"add": ldap3.MODIFY_ADD, "delete": ldap3.MODIFY_DELETE, "replace": ldap3.MODIFY_REPLACE}


def _entry(msg: bytes, message_id: int) -> dict[str, Any] | None:
    """A searchResEntry of ``message_id`` decoded straight from its BER bytes into the raw
    ``{attribute: [bytes]}`` form (``None``: another kind of message, or one with controls, for
    ldap3's own decoder). Specialised to this one message shape, it is several times faster than
    ldap3's generic BER walk."""

    def tlv(pos: int) -> tuple[int, int, int]:
        tag = msg[pos]
        n = msg[pos + 1]
        pos += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(msg[pos : pos + k], "big")
            pos += k
        return tag, pos, pos + n

    if not msg or msg[0] != 0x30:
        return None
    _, p, end = tlv(0)
    tag, s, e = tlv(p)
    if tag != 0x02 or int.from_bytes(msg[s:e], "big", signed=True) != message_id:
        return None
    tag, s, op_end = tlv(e)
    if tag != 0x64 or op_end != end:  # not an entry, or an entry with controls
        return None
    _, s, e = tlv(s)
    raw_dn = msg[s:e]
    _, p, attrs_end = tlv(e)
    attrs: dict[str, list[bytes]] = {}
    frombytes = int.from_bytes
    while p < attrs_end:  # the hot path: every TLV below is parsed inline
        # PartialAttribute ::= SEQUENCE { type OCTET STRING, vals SET OF OCTET STRING }
        n = msg[p + 1]
        p += 2
        if n & 0x80:
            p += n & 0x7F
        n = msg[p + 1]
        p += 2
        if n & 0x80:
            k = n & 0x7F
            n = frombytes(msg[p : p + k], "big")
            p += k
        name = msg[p : p + n].decode("utf-8")
        p += n
        n = msg[p + 1]
        p += 2
        if n & 0x80:
            k = n & 0x7F
            n = frombytes(msg[p : p + k], "big")
            p += k
        set_end = p + n
        vals = []
        while p < set_end:
            n = msg[p + 1]
            p += 2
            if n & 0x80:
                k = n & 0x7F
                n = frombytes(msg[p : p + k], "big")
                p += k
            vals.append(msg[p : p + n])
            p += n
        attrs[name] = vals
    return {
        "type": "searchResEntry",
        "dn": raw_dn.decode("utf-8"),
        "raw_dn": raw_dn,
        "raw_attributes": attrs,
        "attributes": attrs,
    }


def _raw_entries(strategy: Any) -> None:
    """Make a SYNC ``strategy`` decode search entries into raw ``{attribute: [bytes]}`` only.

    Relies on two names of ldap3's strategy (``receiving``, ``decode_response_fast``; ldap3 is
    pinned below 2.10): ``_get_response`` is ldap3's sync loop with :func:`_entry` tried first;
    every other message goes through ldap3's own decoder unchanged."""
    from ldap3.core.exceptions import LDAPSocketReceiveError
    from ldap3.strategy.base import RESPONSE_COMPLETE, SESSION_TERMINATED_BY_SERVER
    from ldap3.utils.asn1 import decode_message_fast

    decode = strategy.decode_response_fast

    def decode_response_fast(ldap_message: dict[str, Any]) -> dict[str, Any]:
        if ldap_message["protocolOp"] != 4:
            return decode(ldap_message)  # type: ignore[no-any-return]
        payload = ldap_message["payload"]
        attrs: dict[str, list[bytes]] = {}
        for attribute in payload[1][3]:
            a = attribute[3]
            attrs[a[0][3].decode("utf-8")] = [bytes(v[3]) for v in a[1][3]]
        out = {
            "type": "searchResEntry",
            "dn": payload[0][3].decode("utf-8"),
            "raw_dn": payload[0][3],
            "raw_attributes": attrs,
            "attributes": attrs,
        }
        if ldap_message["controls"]:
            out["controls"] = {}
            for control in ldap_message["controls"]:
                oid, value = strategy.decode_control_fast(control[3])
                out["controls"][oid] = value
        return out

    def _get_response(message_id: int, timeout: Any) -> Any:
        out: list[Any] = []
        complete = False
        while not complete:
            responses = strategy.receiving()
            if not responses:
                return SESSION_TERMINATED_BY_SERVER
            for response in responses:
                if not response:
                    continue
                entry = _entry(response, message_id)
                if entry is not None:
                    out.append(entry)
                    continue
                ldap_resp = decode_message_fast(response)
                dict_response = decode_response_fast(ldap_resp)
                mid = int(ldap_resp["messageID"])
                if mid == message_id:
                    out.append(dict_response)
                    if dict_response["type"] not in (
                        "searchResEntry",
                        "searchResRef",
                        "intermediateResponse",
                    ):
                        complete = True
                elif mid == 0:  # unsolicited notification: notice of disconnection
                    return SESSION_TERMINATED_BY_SERVER
                else:
                    raise LDAPSocketReceiveError("invalid messageId received")
        out.append(RESPONSE_COMPLETE)
        return out

    strategy.decode_response_fast = decode_response_fast  # instance attributes: no binding
    strategy._get_response = _get_response


class Ldap3Backend(Backend):
    name = "ldap3"
    library = "ldap3"
    features = frozenset({"pool", "server_pool", "ntlm", "extended", "sasl_external", "controls"})
    auth_methods = AUTH_METHODS["ldap3"]

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self.conn: Any = None
        self._writer: Any = None
        self._lock = threading.Lock()

    # -- session ----------------------------------------------------------------------------------
    def _server(self) -> Any:
        o = self.options
        tls = None
        if o.start_tls or any(u.lower().startswith("ldaps:") for u in o.all_urls()):
            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED if o.verify_tls else ssl.CERT_NONE, ca_certs_file=o.ca_file
            )
        servers = [
            ldap3.Server(u, get_info=ldap3.NONE, connect_timeout=o.timeout, tls=tls) for u in o.all_urls()
        ]
        if len(servers) == 1:
            return servers[0]
        return ldap3.ServerPool(servers, o.pool_strategy.upper(), active=1, exhaust=True)

    def _connection(self, strategy: str, **extra: Any) -> Any:
        o = self.options
        kw: dict[str, Any] = {
            "client_strategy": strategy,
            "raise_exceptions": False,
            "check_names": False,
            "auto_referrals": False,
            "auto_range": False,
            "return_empty_attributes": False,
            "receive_timeout": max(1, math.ceil(o.timeout)),
            **extra,
        }
        if o.auth == "simple":
            kw.update(user=o.bind_dn, password=o.secret(), authentication=ldap3.SIMPLE)
        elif o.auth == "ntlm":
            kw.update(user=o.bind_dn, password=o.secret(), authentication=ldap3.NTLM)
        elif o.auth == "sasl_external":
            # the credentials (an authorization identity, usually empty) must be present: slapd
            # answers saslBindInProgress to an EXTERNAL bind without them
            kw.update(
                authentication=ldap3.SASL, sasl_mechanism=ldap3.EXTERNAL, sasl_credentials=o.bind_dn or ""
            )
        else:
            kw["authentication"] = ldap3.ANONYMOUS
        conn = ldap3.Connection(self._server(), **kw)
        try:
            conn.open()
            if o.start_tls and not o.url.lower().startswith("ldaps:") and not conn.start_tls():
                raise LdapError(_code(conn.result), _msg(conn.result), what="StartTLS")
            if not conn.bind():
                raise LdapError(_code(conn.result), _msg(conn.result), what="bind")
        except LdapError:
            _quiet_unbind(conn)
            raise
        except (LDAPException, OSError) as exc:
            raise LdapError(91, f"{type(exc).__name__}: {exc}", what="connect") from None
        return conn

    def connect(self) -> None:
        if self.conn is None:
            conn = self._connection(ldap3.SYNC)
            _raw_entries(conn.strategy)
            self.conn = conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        writer, self._writer = self._writer, None
        for c in (conn, writer):
            if c is not None:
                _quiet_unbind(c)

    # -- reading ----------------------------------------------------------------------------------
    def _search(
        self,
        base: str,
        scope: str,
        filter: str,
        attributes: Sequence[str] | None,
        controls: Sequence[Control],
        **kw: Any,
    ) -> tuple[list[Entry], dict[str, Any]]:
        self.connect()
        conn = self.conn
        try:
            conn.search(
                base,
                filter,
                _SCOPES[scope],
                dereference_aliases=ldap3.DEREF_NEVER,
                attributes=list(attributes) if attributes is not None else ["1.1"],
                controls=list(controls) or None,
                **kw,
            )
        except LDAPException as exc:
            raise LdapError(-1, f"{type(exc).__name__}: {exc}", dn=base, what="search") from None
        result = conn.result or {}
        code = _code(result)
        if code not in (0,):
            raise LdapError(code, _msg(result), dn=base, what="search")
        entries = [
            (e["dn"], e["raw_attributes"]) for e in conn.response or () if e["type"] == "searchResEntry"
        ]
        return entries, result

    def search(
        self,
        base: str,
        scope: str,
        filter: str,
        attributes: Sequence[str] | None,
        *,
        controls: Sequence[Control] = (),
    ) -> list[Entry]:
        return self._search(base, scope, filter, attributes, controls)[0]

    def paged_search(
        self,
        base: str,
        scope: str,
        filter: str,
        attributes: Sequence[str] | None,
        page_size: int,
        *,
        controls: Sequence[Control] = (),
        ahead: bool = False,  # not offered (pages_ahead is False): pages come one by one
    ) -> Generator[list[Entry], None, None]:
        cookie: bytes | None = b""
        done = False
        try:
            while True:
                entries, result = self._search(
                    base, scope, filter, attributes, controls, paged_size=page_size, paged_cookie=cookie
                )
                ctrl = (result.get("controls") or {}).get(PAGED_RESULTS_OID)
                cookie = ctrl["value"]["cookie"] if ctrl else None
                if not cookie:
                    done = True
                yield entries
                if done:
                    return
        finally:
            if not done and cookie and self.conn is not None:
                # abandon the paged search on the server (RFC 2696: size 0 with the cookie)
                try:
                    self._search(base, scope, filter, ["1.1"], controls, paged_size=0, paged_cookie=cookie)
                except LdapError:
                    pass

    def subschema(self, dn: str) -> SubSchema:
        from ldap3.protocol.rfc4512 import SchemaInfo

        found = self.search(
            dn, "base", "(objectClass=subschema)", ["attributeTypes", "objectClasses", "ldapSyntaxes"]
        )
        if not found:
            raise LdapError(32, "no subschema subentry", dn=dn, what="schema")
        raw = found[0][1]
        text = {k: [v.decode("utf-8") for v in vals] for k, vals in raw.items()}
        info = SchemaInfo(dn, text, raw)
        ats = []
        for at in _unique(info.attribute_types.values()):
            ats.append(
                AttributeType(
                    oid=at.oid,
                    names=tuple(at.name or ()),
                    syntax=at.syntax.split("{")[0] if at.syntax else None,
                    single_value=bool(at.single_value),
                    no_user_modification=bool(at.no_user_modification),
                    usage=_usage(at.usage),
                    sup=(at.superior or [None])[0],
                )
            )
        ocs = []
        for oc in _unique(info.object_classes.values()):
            ocs.append(
                ObjectClass(
                    oid=oc.oid,
                    names=tuple(oc.name or ()),
                    kind=str(oc.kind or "STRUCTURAL"),
                    sup=tuple(oc.superior or ()),
                    must=tuple(oc.must_contain or ()),
                    may=tuple(oc.may_contain or ()),
                )
            )
        return SubSchema.build(ats, ocs)

    # -- writing ----------------------------------------------------------------------------------
    def _write_conn(self) -> Any:
        if self._writer is None:
            if self.options.pool_size > 1:
                self._writer = self._connection(
                    ldap3.REUSABLE,
                    pool_name="dcapix-ldap",
                    pool_size=self.options.pool_size,
                    pool_lifetime=3600,
                )
            else:
                self._writer = self._connection(ldap3.ASYNC)
        return self._writer

    def _send(self, conn: Any, op: WriteOp) -> Any:
        if op.kind == "add":
            return conn.add(op.dn, attributes=op.attributes)
        if op.kind == "modify":
            changes: dict[str, list[tuple[str, list[bytes]]]] = {}
            for c in op.changes:
                changes.setdefault(c.attribute, []).append((_MOD[c.op], list(c.values)))
            return conn.modify(op.dn, changes)
        if op.kind == "delete":
            return conn.delete(op.dn)
        raise ValueError(f"unknown write operation {op.kind!r}")

    def write(self, ops: Sequence[WriteOp]) -> list[LdapError | None]:
        conn = self._write_conn()
        out: list[LdapError | None] = []
        window = self.options.write_window
        for start in range(0, len(ops), window):
            chunk = ops[start : start + window]
            ids: list[Any] = []
            for op in chunk:
                try:
                    ids.append(self._send(conn, op))
                except LDAPObjectClassError as exc:  # ldap3 checks this before sending
                    ids.append(LdapError(65, str(exc), dn=op.dn, what=op.kind))
                except LDAPException as exc:
                    raise LdapError(-1, f"{type(exc).__name__}: {exc}", dn=op.dn, what=op.kind) from None
            for op, mid in zip(chunk, ids, strict=True):
                if isinstance(mid, LdapError):
                    out.append(mid)
                    continue
                try:
                    _, result = conn.get_response(mid, timeout=self.options.timeout)
                except LDAPException as exc:
                    raise LdapError(-1, f"{type(exc).__name__}: {exc}", dn=op.dn, what=op.kind) from None
                code = _code(result)
                out.append(None if code == 0 else LdapError(code, _msg(result), dn=op.dn, what=op.kind))
        return out

    # -- extended operations ----------------------------------------------------------------------
    def extended(self, oid: str, value: bytes | None = None) -> tuple[str | None, bytes | None]:
        self.connect()
        try:
            self.conn.extended(oid, value)
        except LDAPException as exc:
            raise LdapError(-1, f"{type(exc).__name__}: {exc}", what=f"extended operation {oid}") from None
        result = self.conn.result or {}
        code = _code(result)
        if code != 0:
            raise LdapError(code, _msg(result), what=f"extended operation {oid}")
        return result.get("responseName"), result.get("responseValue")

    def whoami(self) -> str:
        self.connect()
        out = self.conn.extend.standard.who_am_i()
        if out is None and _code(self.conn.result) != 0:
            raise LdapError(_code(self.conn.result), _msg(self.conn.result), what="who am I")
        return str(out or "")

    def password_modify(self, user: str | None, old: str | None, new: str | None) -> str | None:
        self.connect()
        out = self.conn.extend.standard.modify_password(user, old, new)
        if out is False or _code(self.conn.result) != 0:
            raise LdapError(_code(self.conn.result), _msg(self.conn.result), dn=user, what="password modify")
        return out if isinstance(out, str) else None


def _code(result: Any) -> int:
    if not result:
        return -1
    return int(result.get("result", -1))


def _msg(result: Any) -> str:
    if not result:
        return "no response"
    return str(result.get("message") or result.get("description") or "")


def _usage(value: Any) -> str:
    from ldap3.protocol.rfc4512 import ATTRIBUTE_USER_APPLICATION

    return "userApplications" if value in (None, ATTRIBUTE_USER_APPLICATION) else "operational"


def _unique(items: Any) -> list[Any]:
    seen: set[int] = set()
    out = []
    for it in items:
        if id(it) not in seen:
            seen.add(id(it))
            out.append(it)
    return out


def _quiet_unbind(conn: Any) -> None:
    try:
        conn.unbind()
    except Exception:
        pass
