"""The ``ldaptor`` backend: Twisted's asynchronous LDAP client.

* **Asynchronous operations**: every operation is a Deferred on a Twisted reactor that runs in one
  daemon thread of the process (started on first use). Writes are pipelined: the ``write_window``
  operations of a chunk are all on the wire before the first answer is awaited. Twisted code can use
  the Deferred API directly (:meth:`LdaptorBackend.deferred_search`,
  :meth:`LdaptorBackend.deferred_write`), calling it in the reactor thread.
* **Schema awareness**: the subschema is parsed with ldaptor's own ``AttributeTypeDescription`` and
  ``ObjectClassDescription``.
* Auth: anonymous, simple, and SASL EXTERNAL (over ``ldapi://``, i.e. a UNIX socket).

ldaptor decodes BER in pure Python, so it is the slowest backend for large reads.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Generator, Sequence
from typing import Any

from ldaptor import ldapfilter
from ldaptor import schema as ldaptor_schema
from ldaptor.protocols import pureber, pureldap
from ldaptor.protocols.ldap import ldapclient
from twisted.internet import defer, endpoints, threads

from ..schema import AttributeType, ObjectClass, SubSchema
from . import (
    AUTH_METHODS,
    PAGED_RESULTS_OID,
    Backend,
    Control,
    Entry,
    LdapError,
    WriteOp,
    paged_control_value,
    parse_paged_control_value,
)

__all__ = ["LdaptorBackend"]

_SCOPES = {
    "base": pureldap.LDAP_SCOPE_baseObject,
    "one": pureldap.LDAP_SCOPE_singleLevel,
    "sub": pureldap.LDAP_SCOPE_wholeSubtree,
}
_MOD = {"add": 0, "delete": 1, "replace": 2}

_lock = threading.Lock()
_thread: threading.Thread | None = None


def _reactor() -> Any:
    """The Twisted reactor, running in a daemon thread of this process (started once)."""
    global _thread
    from twisted.internet import reactor as _installed

    reactor: Any = _installed

    with _lock:
        if _thread is None and not reactor.running:
            ready = threading.Event()
            reactor.callWhenRunning(ready.set)
            _thread = threading.Thread(
                target=lambda: reactor.run(installSignalHandlers=False),
                name="dcapix-ldaptor",
                daemon=True,
            )
            _thread.start()
            ready.wait(10)
    return reactor


class _SaslBind(pureldap.LDAPBindRequest):  # type: ignore[misc]
    """A SASL bind that always sends its credentials, even empty: slapd answers an EXTERNAL bind
    without them with saslBindInProgress (ldaptor leaves empty credentials out)."""

    def toWire(self) -> bytes:
        mech, creds = self.auth
        auth = pureber.BERSequence(
            [pureber.BEROctetString(mech), pureber.BEROctetString(creds or b"")],
            tag=pureber.CLASS_CONTEXT | 3,
        )
        return bytes(
            pureber.BERSequence(
                [pureber.BERInteger(self.version), pureber.BEROctetString(self.dn), auth], tag=self.tag
            ).toWire()
        )


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class LdaptorBackend(Backend):
    name = "ldaptor"
    library = "ldaptor"
    features = frozenset({"async", "schema", "controls", "sasl_external"})
    auth_methods = AUTH_METHODS["ldaptor"]

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self.client: Any = None

    # -- the reactor bridge -----------------------------------------------------------------------
    def _run(self, fn: Any, *args: Any) -> Any:
        """Call ``fn`` (which returns a Deferred) in the reactor thread and wait for its result,
        at most ``timeout`` seconds."""
        reactor = _reactor()
        timeout = float(self.options.timeout)

        def start() -> Any:
            d = defer.maybeDeferred(fn, *args)
            d.addTimeout(timeout, reactor)
            return d

        try:
            return threads.blockingCallFromThread(reactor, start)
        except LdapError:
            raise
        except defer.TimeoutError:
            raise LdapError(85, f"no answer within {timeout:g}s") from None
        except ldapclient.LDAPClientConnectionLostException:
            raise LdapError(81, "connection lost") from None
        except Exception as exc:
            code = getattr(exc, "resultCode", None)
            if code is not None:
                raise LdapError(int(code), _text(getattr(exc, "message", "") or "")) from None
            raise LdapError(91, f"{type(exc).__name__}: {exc}") from None

    # -- session ----------------------------------------------------------------------------------
    def _endpoint(self, reactor: Any) -> Any:
        url = urllib.parse.urlsplit(self.options.url)
        t = int(max(1, self.options.timeout))
        if url.scheme == "ldapi":
            path = urllib.parse.unquote(url.netloc or url.path)
            return endpoints.UNIXClientEndpoint(reactor, path, timeout=t)
        host = url.hostname or "127.0.0.1"
        if url.scheme == "ldaps":
            from twisted.internet import ssl

            ctx = ssl.optionsForClientTLS(host, trustRoot=self._trust_root())
            tcp: Any = endpoints.TCP4ClientEndpoint(reactor, host, url.port or 636, timeout=t)
            return endpoints.wrapClientTLS(ctx, tcp)
        return endpoints.TCP4ClientEndpoint(reactor, host, url.port or 389, timeout=t)

    def _trust_root(self) -> Any:
        from twisted.internet import ssl

        if self.options.ca_file:
            with open(self.options.ca_file, "rb") as f:
                return ssl.Certificate.loadPEM(f.read())
        return None

    @defer.inlineCallbacks
    def _connect(self) -> Any:
        reactor = _reactor()
        client = yield endpoints.connectProtocol(self._endpoint(reactor), ldapclient.LDAPClient())
        o = self.options
        if o.start_tls and self.options.url.lower().startswith("ldap:"):
            from twisted.internet import ssl

            url = urllib.parse.urlsplit(o.url)
            yield client.startTLS(ssl.optionsForClientTLS(url.hostname or "", trustRoot=self._trust_root()))
        if o.auth == "simple":
            req = pureldap.LDAPBindRequest(dn=o.bind_dn, auth=o.secret())
        elif o.auth == "sasl_external":
            req = _SaslBind(dn="", auth=("EXTERNAL", (o.bind_dn or "").encode()), sasl=True)
        else:
            req = pureldap.LDAPBindRequest(dn="", auth="")
        resp = yield client.send(req)
        if resp.resultCode != 0:
            client.transport.loseConnection()
            raise LdapError(resp.resultCode, _text(resp.errorMessage), what="bind")
        return client

    def connect(self) -> None:
        if self.client is None:
            try:
                self.client = self._run(self._connect)
            except LdapError as exc:
                if not exc.what:
                    exc = LdapError(
                        exc.code, exc.message, what="connect" if exc.code in (81, 85, 91) else "bind"
                    )
                raise exc from None

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None and client.connected:
            try:
                threads.blockingCallFromThread(_reactor(), lambda: defer.maybeDeferred(client.unbind))
            except Exception:
                pass

    # -- reading ----------------------------------------------------------------------------------
    def deferred_search(
        self,
        base: str,
        scope: str,
        filter: str,
        attributes: Sequence[str] | None,
        controls: Sequence[Control] = (),
    ) -> Any:
        """A Deferred firing with ``(entries, response controls)`` of one search (reactor thread)."""
        req = pureldap.LDAPSearchRequest(
            baseObject=base,
            scope=_SCOPES[scope],
            derefAliases=pureldap.LDAP_DEREF_neverDerefAliases,
            sizeLimit=0,
            timeLimit=0,
            typesOnly=0,
            filter=ldapfilter.parseFilter(filter),
            attributes=list(attributes) if attributes is not None else ["1.1"],
        )
        d: defer.Deferred[Any] = defer.Deferred()
        entries: list[Entry] = []

        def handler(msg: Any, ctrls: Any) -> bool:
            if isinstance(msg, pureldap.LDAPSearchResultEntry):
                attrs: dict[str, list[bytes]] = {}
                for name, vals in msg.attributes:
                    attrs.setdefault(_text(name), []).extend(vals)
                entries.append((_text(msg.objectName), attrs))
                return False
            if isinstance(msg, pureldap.LDAPSearchResultReference):
                return False
            if msg.resultCode == 32:  # noSuchObject: no entries
                d.callback(([], ctrls))
            elif msg.resultCode != 0:
                d.errback(LdapError(msg.resultCode, _text(msg.errorMessage), dn=base, what="search"))
            else:
                d.callback((entries, ctrls))
            return True

        self.client.send_multiResponse_ex(req, list(controls) or None, handler)
        return d

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
        entries, _ = self._run(self.deferred_search, base, scope, filter, attributes, controls)
        return entries  # type: ignore[no-any-return]

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
        self.connect()
        cookie = b""
        done = False
        try:
            while True:
                paged = (PAGED_RESULTS_OID, True, paged_control_value(page_size, cookie))
                entries, ctrls = self._run(
                    self.deferred_search, base, scope, filter, attributes, [paged, *controls]
                )
                cookie = b""
                for oid, _crit, value in ctrls or ():
                    if _text(oid) == PAGED_RESULTS_OID and value:
                        cookie = parse_paged_control_value(value)[1]
                if not cookie:
                    done = True
                yield entries
                if done:
                    return
        finally:
            if not done and cookie and self.client is not None:
                paged = (PAGED_RESULTS_OID, True, paged_control_value(0, cookie))
                try:
                    self._run(self.deferred_search, base, scope, filter, ["1.1"], [paged, *controls])
                except LdapError:
                    pass

    def subschema(self, dn: str) -> SubSchema:
        found = self.search(dn, "base", "(objectClass=subschema)", ["attributeTypes", "objectClasses"])
        if not found:
            raise LdapError(32, "no subschema subentry", dn=dn, what="schema")
        attrs = {k.lower(): v for k, v in found[0][1].items()}
        ats = []
        for text in attrs.get("attributetypes", []):
            at = ldaptor_schema.AttributeTypeDescription(bytes(text))
            ats.append(
                AttributeType(
                    oid=_text(at.oid),
                    names=tuple(_text(n) for n in at.name or ()),
                    syntax=_text(at.syntax).split("{")[0] if at.syntax else None,
                    single_value=bool(at.single_value),
                    no_user_modification=bool(at.no_user_modification),
                    usage=_text(at.usage) if at.usage else "userApplications",
                    sup=_text(at.sup) if at.sup else None,
                )
            )
        ocs = []
        for text in attrs.get("objectclasses", []):
            oc = ldaptor_schema.ObjectClassDescription(bytes(text))
            ocs.append(
                ObjectClass(
                    oid=_text(oc.oid),
                    names=tuple(_text(n) for n in oc.name or ()),
                    kind=_text(oc.type or b"STRUCTURAL"),
                    sup=tuple(_text(s) for s in oc.sup or ()),
                    must=tuple(_text(a) for a in oc.must or ()),
                    may=tuple(_text(a) for a in oc.may or ()),
                )
            )
        return SubSchema.build(ats, ocs)

    # -- writing ----------------------------------------------------------------------------------
    @staticmethod
    def _request(op: WriteOp) -> Any:
        if op.kind == "add":
            return pureldap.LDAPAddRequest(
                entry=op.dn,
                attributes=[
                    (
                        pureldap.LDAPAttributeDescription(name),
                        pureber.BERSet([pureldap.LDAPAttributeValue(v) for v in vals]),
                    )
                    for name, vals in op.attributes.items()
                ],
            )
        if op.kind == "modify":
            mods = [
                pureber.BERSequence(
                    [
                        pureber.BEREnumerated(_MOD[c.op]),
                        pureber.BERSequence(
                            [
                                pureldap.LDAPAttributeDescription(c.attribute),
                                pureber.BERSet([pureldap.LDAPAttributeValue(v) for v in c.values]),
                            ]
                        ),
                    ]
                )
                for c in op.changes
            ]
            return pureldap.LDAPModifyRequest(object=op.dn, modification=mods)
        if op.kind == "delete":
            return pureldap.LDAPDelRequest(entry=op.dn)
        raise ValueError(f"unknown write operation {op.kind!r}")

    def deferred_write(self, ops: Sequence[WriteOp]) -> Any:
        """A Deferred firing with one result per op (``None`` or :class:`LdapError`): all ops are
        sent at once (pipelined) and answered in any order (reactor thread)."""
        sent = [self.client.send(self._request(op)) for op in ops]

        def result(resp: Any, op: WriteOp) -> LdapError | None:
            if resp.resultCode == 0:
                return None
            return LdapError(resp.resultCode, _text(resp.errorMessage), dn=op.dn, what=op.kind)

        for d, op in zip(sent, ops, strict=True):
            d.addCallback(result, op)
        return defer.gatherResults(sent, consumeErrors=True)

    def write(self, ops: Sequence[WriteOp]) -> list[LdapError | None]:
        self.connect()
        out: list[LdapError | None] = []
        window = self.options.write_window
        for start in range(0, len(ops), window):
            out.extend(self._run(self.deferred_write, list(ops[start : start + window])))
        return out

    # -- extended operations ----------------------------------------------------------------------
    def extended(self, oid: str, value: bytes | None = None) -> tuple[str | None, bytes | None]:
        self.connect()

        def send() -> Any:
            return self.client.send(pureldap.LDAPExtendedRequest(requestName=oid, requestValue=value))

        resp = self._run(send)
        if resp.resultCode != 0:
            raise LdapError(resp.resultCode, _text(resp.errorMessage), what=f"extended operation {oid}")
        name = _text(resp.responseName) if resp.responseName is not None else None
        return name, resp.response

    def password_modify(self, user: str | None, old: str | None, new: str | None) -> str | None:
        self.connect()

        def send() -> Any:
            return self.client.send(
                pureldap.LDAPPasswordModifyRequest(userIdentity=user, oldPasswd=old, newPasswd=new)
            )

        resp = self._run(send)
        if resp.resultCode != 0:
            raise LdapError(resp.resultCode, _text(resp.errorMessage), dn=user, what="password modify")
        if resp.response:  # PasswdModifyResponseValue ::= SEQUENCE { genPasswd [0] OCTET STRING OPTIONAL }
            raw = bytes(resp.response)
            if len(raw) > 4 and raw[2] == 0x80:
                return raw[4 : 4 + raw[3]].decode("utf-8")
        return None
