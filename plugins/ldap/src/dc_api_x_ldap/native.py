"""The native reader: a stream's paged search over a plain socket, its entries decoded from BER
straight into Arrow column buffers by the plugin's C extension (:mod:`dc_api_x_ldap._berpage`).

The client libraries turn every entry into Python objects (python-ldap: a dict of lists of bytes
per entry; ldap3 and ldaptor decode in Python) before the adapter turns them into Arrow columns;
that was most of a large read's CPU. This reader speaks the little LDAP a paged read needs itself
(RFC 4511: a simple or SASL EXTERNAL bind, a SearchRequest with the simple paged results control of
RFC 2696, the filter encoded by :func:`encode_filter`), reads the socket in large chunks and lets
the extension decode the SearchResultEntry messages (with the GIL released) into a DN column and
one ``list<binary>`` column per property; the conversion to the stream's types is the same as for
the backends (:func:`dc_api_x_ldap.schema.lists_to_table`).

It serves ``ldap://`` and ``ldapi://`` URLs with anonymous, simple or SASL EXTERNAL binds
(:func:`supports`); everything else (``ldaps://``, StartTLS, several ``urls``, NTLM) and every
other operation goes through the backend. The adapter's ``reader:`` option picks it (``auto``:
whenever the extension is built and the connection qualifies). When the extension could not be
built (no C compiler when the plugin was installed), :func:`status` says so and ``auto`` reads
through the backend.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .backends import (
    PAGED_RESULTS_OID,
    SCOPES,
    Control,
    Entry,
    LdapError,
    _ber_int,
    _ber_read,
    _ber_tlv,
    paged_control_value,
    parse_paged_control_value,
)

if TYPE_CHECKING:  # pragma: no cover
    from .schema import SubSchema

__all__ = ["NativeReader", "encode_filter", "group_to_table", "scan_values", "status", "supports"]


def status() -> tuple[bool, str]:
    """``(available, reason)``: whether the C extension is importable, and why not."""
    import importlib

    try:
        importlib.import_module("dc_api_x_ldap._berpage")
    except ImportError as exc:
        return False, (
            f"the native entry decoder (dc_api_x_ldap._berpage) is not built: {exc}; reinstall "
            "dc-api-x-ldap where a C compiler and the Python headers are present"
        )
    return True, "built"


def supports(options: Any) -> str | None:
    """``None`` when the native reader can serve a connection with ``options``, else the reason."""
    url = options.url.lower()
    if options.urls:
        return "several servers (urls) are given"
    if options.start_tls:
        return "StartTLS is asked for"
    if url.startswith("ldaps:"):
        return "ldaps:// (TLS) is read through the backend"
    if url.startswith("ldapi:") and not _ldapi_path(options.url):
        return "an ldapi:// URL without a socket path"
    if options.auth not in ("anonymous", "simple", "sasl_external"):
        return f"auth {options.auth!r}"
    if options.auth == "sasl_external" and not url.startswith("ldapi:"):
        return "SASL EXTERNAL outside ldapi://"
    return None


def _ldapi_path(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else ""
    return unquote(rest.split("/", 1)[0].split("?", 1)[0])


def _host_port(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[1].split("/", 1)[0]
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    return unquote(host) or "127.0.0.1", int(port or 389)


# ------------------------------------------------------------------------------- filters
def encode_filter(text: str) -> bytes:
    """An RFC 4515 string filter as the BER ``Filter`` of RFC 4511 §4.5.1 (``ValueError`` when it
    does not parse)."""
    out, pos = _filter(text.strip(), 0)
    if pos != len(text.strip()):
        raise ValueError(f"filter {text!r}: unexpected text at {pos}")
    return out


def _filter(s: str, pos: int) -> tuple[bytes, int]:
    if pos >= len(s) or s[pos] != "(":
        raise ValueError(f"filter {s!r}: '(' expected at {pos}")
    pos += 1
    c = s[pos : pos + 1]
    if c in ("&", "|"):
        pos += 1
        parts = []
        while pos < len(s) and s[pos] == "(":
            part, pos = _filter(s, pos)
            parts.append(part)
        body = _ber_tlv(0xA0 if c == "&" else 0xA1, b"".join(parts))
    elif c == "!":
        part, pos = _filter(s, pos + 1)
        body = _ber_tlv(0xA2, part)
    else:
        end = _item_end(s, pos)
        body = _item(s[pos:end], s)
        pos = end
    if pos >= len(s) or s[pos] != ")":
        raise ValueError(f"filter {s!r}: ')' expected at {pos}")
    return body, pos + 1


def _item_end(s: str, pos: int) -> int:
    end = s.find(")", pos)
    if end < 0:
        raise ValueError(f"filter {s!r}: unbalanced parentheses")
    if "(" in s[pos:end]:
        raise ValueError(f"filter {s!r}: unescaped '(' in a value")
    return end


def _unescape(v: str, s: str) -> bytes:
    raw = v.encode("utf-8")
    if b"\\" not in raw:
        return raw
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C:  # backslash + two hex digits
            try:
                out.append(int(raw[i + 1 : i + 3].decode("ascii"), 16))
            except (ValueError, UnicodeDecodeError):
                raise ValueError(f"filter {s!r}: bad escape in {v!r}") from None
            if len(raw[i + 1 : i + 3]) != 2:
                raise ValueError(f"filter {s!r}: bad escape in {v!r}")
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def _octets(tag: int, v: bytes) -> bytes:
    return _ber_tlv(tag, v)


def _item(item: str, s: str) -> bytes:
    eq = item.find("=")
    if eq <= 0 and not item.startswith(":"):
        raise ValueError(f"filter {s!r}: no attribute or operator in {item!r}")
    op = item[eq - 1] if eq > 0 else ""
    if op == ":":  # extensible match: [attr][:dn][:rule]:=value
        left, value = item[: eq - 1], item[eq + 1 :]
        parts = left.split(":")
        attr, rest = parts[0], [p for p in parts[1:]]
        dn_attrs = False
        rule = ""
        for p in rest:
            if p.lower() == "dn":
                dn_attrs = True
            elif p:
                rule = p
        if not attr and not rule:
            raise ValueError(f"filter {s!r}: extensible match needs an attribute or a rule")
        body = b""
        if rule:
            body += _octets(0x81, rule.encode("utf-8"))
        if attr:
            body += _octets(0x82, attr.encode("utf-8"))
        body += _octets(0x83, _unescape(value, s))
        if dn_attrs:
            body += b"\x84\x01\xff"
        return _ber_tlv(0xA9, body)
    if op in ("~", ">", "<"):
        attr, value = item[: eq - 1], item[eq + 1 :]
        tag = {"~": 0xA8, ">": 0xA5, "<": 0xA6}[op]
        return _ber_tlv(tag, _octets(0x04, attr.encode("utf-8")) + _octets(0x04, _unescape(value, s)))
    attr, value = item[:eq], item[eq + 1 :]
    if not attr:
        raise ValueError(f"filter {s!r}: no attribute in {item!r}")
    a = attr.encode("utf-8")
    if value == "*":
        return _octets(0x87, a)
    if "*" not in value:
        return _ber_tlv(0xA3, _octets(0x04, a) + _octets(0x04, _unescape(value, s)))
    pieces = value.split("*")
    subs = b""
    if pieces[0]:
        subs += _octets(0x80, _unescape(pieces[0], s))
    for mid in pieces[1:-1]:
        if not mid:
            raise ValueError(f"filter {s!r}: '**' in {item!r}")
        subs += _octets(0x81, _unescape(mid, s))
    if pieces[-1]:
        subs += _octets(0x82, _unescape(pieces[-1], s))
    return _ber_tlv(0xA4, _octets(0x04, a) + _ber_tlv(0x30, subs))


# ------------------------------------------------------------------------------- messages
def _controls(controls: Sequence[Control]) -> bytes:
    """The Control SEQUENCEs of ``controls``, one after the other."""
    out = b""
    for oid, critical, value in controls:
        c = _octets(0x04, oid.encode("ascii"))
        if critical:
            c += b"\x01\x01\xff"
        if value is not None:
            c += _octets(0x04, value)
        out += _ber_tlv(0x30, c)
    return out


def _message(msgid: int, op: bytes, controls: Sequence[Control] = ()) -> bytes:
    body = _ber_int(msgid) + op
    if controls:
        body += _ber_tlv(0xA0, _controls(controls))
    return _ber_tlv(0x30, body)


def _result(body: bytes) -> tuple[int, str, str]:
    """``(resultCode, matchedDN, diagnosticMessage)`` of an LDAPResult's content."""
    _, code, pos = _ber_read(body, 0)
    _, matched, pos = _ber_read(body, pos)
    _, diag, pos = _ber_read(body, pos)
    return int.from_bytes(code, "big"), matched.decode("utf-8", "replace"), diag.decode("utf-8", "replace")


def _entry(body: bytes) -> Entry:
    """A SearchResultEntry's content as ``(dn, {attribute: [values]})``."""
    _, dn, pos = _ber_read(body, 0)
    _, seq, _ = _ber_read(body, pos)
    attrs: dict[str, list[bytes]] = {}
    p = 0
    while p < len(seq):
        _, pa, p = _ber_read(seq, p)
        _, name, q = _ber_read(pa, 0)
        _, vals, _ = _ber_read(pa, q)
        out: list[bytes] = []
        v = 0
        while v < len(vals):
            _, val, v = _ber_read(vals, v)
            out.append(val)
        attrs[name.decode("utf-8")] = out
    return dn.decode("utf-8"), attrs


def _parse(msg: bytes | memoryview) -> tuple[int, int, bytes, list[Control]]:
    """``(messageID, protocolOp tag, its content, controls)`` of one LDAPMessage."""
    data = bytes(msg)
    tag, body, _ = _ber_read(data, 0)
    if tag != 0x30:
        raise LdapError(84, "an LDAPMessage is not a SEQUENCE", what="search")
    _, raw_id, pos = _ber_read(body, 0)
    op_tag, op, pos = _ber_read(body, pos)
    controls: list[Control] = []
    if pos < len(body):
        ctag, cbody, _ = _ber_read(body, pos)
        if ctag == 0xA0:
            cpos = 0
            while cpos < len(cbody):
                _, c, cpos = _ber_read(cbody, cpos)
                _, oid, p = _ber_read(c, 0)
                critical, value = False, None
                while p < len(c):
                    t, v, p = _ber_read(c, p)
                    if t == 0x01:
                        critical = v != b"\x00"
                    elif t == 0x04:
                        value = v
                controls.append((oid.decode("ascii"), critical, value))
    return int.from_bytes(raw_id, "big"), op_tag, op, controls


#: the receive buffer grows by this much when a message does not fit
CHUNK = 1 << 20
#: free bytes after the unread ones below which the buffer is compacted (or grown) before reading
MIN_ROOM = 1 << 18
#: microseconds the C reader waits, once the decoder has caught up with the server, before it polls
#: the socket: the server writes entry by entry, and the data gathered meanwhile is taken in one
#: receive (50,000 entries: ~7,000 wake-ups of the reading thread -> ~500, less system CPU; at most
#: this much added latency per page, the next page being already asked for)
COALESCE_US = 200


#: the C reader asks for the next page itself as soon as a page ends in success (``pager``): the
#: reading thread needs no GIL between the pages of a group, so pages go on arriving at the
#: server's pace while other threads hold the GIL (start-up imports, conversion, writing)
PAGE_IN_C = True


class NativeReader:
    """One connection and bind for one paged read, decoding with :mod:`._berpage`.

    ``paged_columns`` yields groups of at least ``group`` entries as ``(n, dn_offsets, dn_data,
    columns)`` (see ``_berpage.Columns.take``); ``resolve(description, dn)`` maps an attribute
    description the server returned to a column index (or raises). Closing the generator early
    closes the connection, which ends the paged search on the server."""

    def __init__(self, options: Any) -> None:
        self.options = options
        self.sock: socket.socket | None = None
        self.msgid = 0
        self.buf = bytearray(CHUNK * 2)
        self.view = memoryview(self.buf)
        self.start = 0
        self.end = 0

    # -- connection ---------------------------------------------------------------------------
    def connect(self) -> None:
        o = self.options
        timeout = float(o.timeout)
        try:
            if o.url.lower().startswith("ldapi:"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(_ldapi_path(o.url))
            else:
                sock = socket.create_connection(_host_port(o.url), timeout=timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise LdapError(91, f"cannot connect to {o.url}: {exc}", what="connect") from None
        self.sock = sock
        self.start = self.end = 0
        if o.auth == "simple":
            auth = _octets(0x80, o.secret().encode("utf-8"))
            name = (o.bind_dn or "").encode("utf-8")
        elif o.auth == "sasl_external":
            # the authorization identity as the initial response; an empty one (not an absent
            # one, which makes the server ask for it in a second round) asks for the peer's
            sasl = _octets(0x04, b"EXTERNAL") + _octets(0x04, (o.bind_dn or "").encode("utf-8"))
            auth = _ber_tlv(0xA3, sasl)
            name = b""
        else:
            auth = _octets(0x80, b"")
            name = b""
        msgid = self._send(_ber_tlv(0x60, _ber_int(3) + _octets(0x04, name) + auth))
        got, tag, body, _ = _parse(self._one_message())
        if got != msgid or tag != 0x61:
            raise LdapError(2, f"unexpected answer (tag {tag:#x}) to the bind", what="bind")
        code, _, diag = _result(body)
        if code != 0:
            raise LdapError(code, diag, what="bind")

    def ready(self) -> None:
        """Connect, or reconnect when the kept connection is no longer usable: the server closed
        it (an idle timeout: end of stream) or sent something between operations (a notice of
        disconnection). Checked with one non-blocking poll before each operation."""
        sock = self.sock
        if sock is not None:
            try:
                readable = bool(select.select([sock], [], [], 0)[0])
            except (OSError, ValueError):
                readable = True
            if readable or self.end != self.start:
                self.close()
        if self.sock is None:
            self.start = self.end = 0
            self.connect()

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                self.msgid += 1
                sock.sendall(_message(self.msgid, b"\x42\x00"))  # UnbindRequest
            except OSError:
                pass
            sock.close()

    def _send(self, op: bytes, controls: Sequence[Control] = ()) -> int:
        assert self.sock is not None
        self.msgid += 1
        try:
            self.sock.sendall(_message(self.msgid, op, controls))
        except OSError as exc:
            raise LdapError(81, f"sending to {self.options.url} failed: {exc}", what="search") from None
        return self.msgid

    def _make_room(self, need: int = 0) -> None:
        """Move the unread bytes to the front of the buffer, growing it so that at least
        :data:`MIN_ROOM` bytes are free after them and a message of ``need`` bytes fits."""
        held = self.end - self.start
        if self.start:
            self.view[0:held] = self.view[self.start : self.end]
            self.start, self.end = 0, held
        want = max(need, held + MIN_ROOM)
        if want > len(self.buf):
            new = bytearray(want + CHUNK)
            new[0:held] = self.view[0:held]
            self.view.release()
            self.buf, self.view = new, memoryview(new)

    def _fill(self, need: int = 0) -> None:
        """Read more bytes from the socket after ``end`` (small messages: the bind, small searches)."""
        assert self.sock is not None
        if len(self.buf) - self.end < MIN_ROOM or need > len(self.buf) - self.start:
            self._make_room(need)
        try:
            n = self.sock.recv_into(self.view[self.end :])
        except TimeoutError:
            raise LdapError(85, f"no answer from {self.options.url} within {self.options.timeout}s") from None
        except OSError as exc:
            raise LdapError(81, f"reading from {self.options.url} failed: {exc}") from None
        if n == 0:
            raise LdapError(81, f"{self.options.url} closed the connection")
        self.end += n

    def _one_message(self) -> bytes:
        """The next whole LDAPMessage (small ones: bind response)."""
        while True:
            have = self.end - self.start
            if have >= 2:
                n = self.buf[self.start + 1]
                hdr, length = 2, n
                if n & 0x80:
                    k = n & 0x7F
                    hdr = 2 + k
                    length = (
                        int.from_bytes(self.buf[self.start + 2 : self.start + hdr], "big")
                        if have >= hdr
                        else -1
                    )
                if length >= 0 and have >= hdr + length:
                    msg = bytes(self.view[self.start : self.start + hdr + length])
                    self.start += hdr + length
                    return msg
                self._fill(hdr + length if length >= 0 else 0)
            else:
                self._fill()

    # -- small searches: root DSE, subschema, server time --------------------------------------
    def _request(self, base: str, scope: str, filter: str, attributes: Sequence[str] | None) -> bytes:
        try:
            flt = encode_filter(filter)
        except ValueError as exc:
            raise LdapError(87, str(exc), dn=base, what="search") from None
        attrs = b"".join(_octets(0x04, a.encode("utf-8")) for a in (attributes or ["1.1"]))
        return _ber_tlv(
            0x63,
            _octets(0x04, base.encode("utf-8"))
            + _ber_tlv(0x0A, bytes([SCOPES[scope]]))
            + b"\x0a\x01\x00"  # derefAliases: never (libldap's and ldap3's default)
            + _ber_int(0)  # sizeLimit
            + _ber_int(0)  # timeLimit
            + b"\x01\x01\x00"  # typesOnly FALSE
            + flt
            + _ber_tlv(0x30, attrs),
        )

    def search(
        self,
        base: str,
        scope: str,
        filter: str,
        attributes: Sequence[str] | None,
        *,
        controls: Sequence[Control] = (),
    ) -> list[Entry]:
        """One search, all results at once, decoded in Python (small reads only); a missing base
        is no entries, as with the backends."""
        self.ready()
        msgid = self._send(self._request(base, scope, filter, attributes), controls)
        out: list[Entry] = []
        while True:
            got, tag, body, _ = _parse(self._one_message())
            if got != msgid:
                self.close()
                raise LdapError(2, f"unexpected message (id {got}, tag {tag:#x})", dn=base, what="search")
            if tag == 0x64:
                out.append(_entry(body))
            elif tag == 0x65:
                code, _, diag = _result(body)
                if code == 32:  # noSuchObject
                    return []
                if code != 0:
                    raise LdapError(code, diag, dn=base, what="search")
                return out

    def root_dse(self) -> dict[str, list[bytes]]:
        found = self.search("", "base", "(objectClass=*)", ["*", "+"])
        return found[0][1] if found else {}

    def subschema(self, dn: str) -> SubSchema:
        """The subschema subentry ``dn``, parsed by :mod:`.rfc4512`."""
        from .rfc4512 import parse_subschema

        found = self.search(dn, "base", "(objectClass=*)", ["attributeTypes", "objectClasses"])
        if not found:
            raise LdapError(32, "no subschema subentry", dn=dn, what="schema")
        try:
            return parse_subschema(found[0][1])
        except ValueError as exc:
            raise LdapError(84, f"subschema: {exc}", dn=dn, what="schema") from None

    # -- the paged search ---------------------------------------------------------------------
    def paged_columns(
        self,
        base: str,
        scope: str,
        filter: str,
        attributes: Sequence[str] | None,
        page_size: int,
        *,
        ncols: int,
        resolve: Callable[[str, str], int],
        group: int,
        controls: Sequence[Control] = (),
    ) -> Generator[tuple[int, bytes, bytes, list[Any]], None, None]:
        from . import _berpage

        request = self._request(base, scope, filter, attributes)
        extra = list(controls)

        def send(cookie: bytes) -> int:
            paged = (PAGED_RESULTS_OID, True, paged_control_value(page_size, cookie))
            return self._send(request, [paged, *extra])

        cols = _berpage.Columns(ncols)
        if PAGE_IN_C:  # the next page asked for by the C reader itself (no GIL: no wait for it)
            cols.pager(request, _controls(extra), page_size, group)
        self.ready()
        finished = False
        try:
            msgid = send(b"")
            assert self.sock is not None
            fd = self.sock.fileno()
            timeout_ms = max(1, int(float(self.options.timeout) * 1000))
            while True:
                # receive and decode in C, without the GIL, until the page's end (or a stop)
                try:
                    status, pos, end, more = cols.read(
                        fd, self.buf, self.start, self.end, msgid, timeout_ms, MIN_ROOM, COALESCE_US
                    )
                except ValueError as exc:  # the extension found a malformed message
                    raise LdapError(84, str(exc), dn=base, what="search") from None
                except OSError as exc:
                    raise LdapError(81, f"reading from {self.options.url} failed: {exc}") from None
                self.start, self.end = pos, end
                msgid = self.msgid = cols.msgid  # (pages the C reader asked for: their IDs)
                if status == _berpage.MORE:
                    self._make_room(more)
                    continue
                if status == _berpage.NAME:
                    name, dn = more
                    cols.add_name(name, resolve(name.decode("utf-8"), dn.decode("utf-8", "replace")))
                    continue
                if status == _berpage.INTR:  # a signal: its Python handler runs now
                    continue
                if status == _berpage.TIMEOUT:
                    raise LdapError(85, f"no answer from {self.options.url} within {self.options.timeout}s")
                if status == _berpage.CLOSED:
                    raise LdapError(81, f"{self.options.url} closed the connection")
                # another message: the page's SearchResultDone (or a notice of disconnection)
                got, tag, body, ctrls = _parse(self.view[pos:more])
                self.start = more
                if got != msgid or tag != 0x65:
                    code, _, diag = _result(body) if tag in (0x65, 0x78) else (2, "", "")
                    raise LdapError(
                        code or 2, diag or f"unexpected message (tag {tag:#x})", dn=base, what="search"
                    )
                code, _, diag = _result(body)
                if code != 0:
                    raise LdapError(code, diag, dn=base, what="search")
                cookie = b""
                for oid, _crit, value in ctrls:
                    if oid == PAGED_RESULTS_OID and value is not None:
                        _, cookie = parse_paged_control_value(value)
                if cookie:  # ask for the next page before this group is converted
                    msgid = send(cookie)
                if cols.n >= group or not cookie:
                    yield cols.take()
                if not cookie:
                    finished = True
                    return
        finally:
            if not finished:  # a page may be in flight: closing the connection ends the search
                self.close()


def group_to_table(group: tuple[int, bytes, bytes, list[Any]], schema: Any, arrow_schema: Any) -> Any:
    """A group taken from ``_berpage.Columns`` as the stream's Arrow table: the buffers wrapped as
    Arrow arrays (no copy, no Python object per value), then converted like the backends' pages
    (:func:`dc_api_x_ldap.schema.lists_to_table`)."""
    import pyarrow as pa

    from .schema import ValueProblem, lists_to_table

    n, dn_offsets, dn_data, cols = group
    raw_dn = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(dn_offsets), pa.py_buffer(dn_data)])
    from ._kernels import cast

    try:
        dn = cast(raw_dn, pa.string())
    except pa.ArrowInvalid:
        bad = next(v for v in raw_dn.to_pylist() if not _is_utf8(v))
        raise ValueProblem(f"the DN {bad[:60]!r} is not valid UTF-8", attribute="dn", dn=repr(bad)) from None
    columns: list[Any] = []
    for col in cols:
        if col is None:
            columns.append(None)
            continue
        validity, loff, voff, data, nvals, nulls = col
        values = pa.Array.from_buffers(pa.binary(), nvals, [None, pa.py_buffer(voff), pa.py_buffer(data)])
        columns.append(
            pa.Array.from_buffers(
                pa.list_(pa.binary()),
                n,
                [pa.py_buffer(validity) if nulls else None, pa.py_buffer(loff)],
                null_count=nulls,
                children=[values],
            )
        )
    return lists_to_table(dn, columns, schema, arrow_schema)


def _is_utf8(v: bytes) -> bool:
    try:
        v.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def scan_values(
    reader: NativeReader, base: str, scope: str, filter: str, attribute: str, page_size: int
) -> list[str]:
    """The distinct values (lower-cased, in first-seen order) of ``attribute`` among the entries a
    paged search finds — discovery's scan of the object classes — decoded in C and made unique
    column-wise."""
    import pyarrow as pa

    from ._kernels import call, cast

    want = attribute.lower()

    def resolve(name: str, dn: str) -> int:  # the attribute (any options) or nothing we keep
        return 0 if name.split(";", 1)[0].lower() == want else 1

    found: dict[str, None] = {}
    for _, _, _, cols in reader.paged_columns(
        base, scope, filter, [attribute], page_size, ncols=2, resolve=resolve, group=1 << 16
    ):
        if cols[0] is None:
            continue
        _, _, voff, data, nvals, _ = cols[0]
        vals = pa.Array.from_buffers(pa.binary(), nvals, [None, pa.py_buffer(voff), pa.py_buffer(data)])
        try:
            text = cast(vals, pa.string())
        except pa.ArrowInvalid:
            raise LdapError(
                84, f"a value of {attribute} is not valid UTF-8", dn=base, what="search"
            ) from None
        for v in call("unique", call("utf8_lower", text)).to_pylist():
            found.setdefault(v, None)
    return list(found)
