"""The native reader (dc_api_x_ldap.native + the _berpage C extension) against the backends: the
same Arrow tables, bookmarks, subschema and root DSE on the real slapd; the filter encoder against
ldap3's; the decoder's handling of partial and malformed BER; the fallback when the extension is
missing."""

from __future__ import annotations

import sys
import time

import pyarrow as pa
import pytest
from ldap_support import BACKENDS, NATIVE, PEOPLE, admin_config

from dc_api_x import create_adapter
from dc_api_x.exceptions import AdapterError, SchemaError

pytestmark = pytest.mark.skipif(
    not NATIVE, reason="!!! the native reader (dc_api_x_ldap._berpage) is not built"
)

#: the whole directory below the suffix's people: 10,000 people with multi-valued, binary
#: (dcapixBlob, some jpegPhoto-free entries), non-ASCII (cn 'Ñandú'-style) and absent attributes
PEOPLE_STREAM = {"name": "people", "base": PEOPLE, "filter": "(objectClass=inetOrgPerson)", "page_size": 700}


def read_table(adapter, spec, **kw) -> tuple[pa.Table, object, list[int]]:
    batches = list(adapter.read(spec, **kw))
    table = pa.concat_tables([b.to_arrow() for b in batches]).combine_chunks()
    return table, batches[-1].bookmark, [len(b) for b in batches]


@pytest.mark.slapd
@pytest.mark.parametrize("backend", [b for b in ("python-ldap", "ldap3") if b in BACKENDS])
def test_native_tables_equal_the_backends(slapd, backend):
    """Every value of the 10,000-entry stream, typed, equal to what the backend's own reader
    gives (Table.equals: types, nulls, list values in order, binary bytes, UTF-8 text)."""
    # the directory was written moments ago, its 10,000 entries mostly within one second; a read
    # that starts in that second of the server's clock leaves them to the next run (the boundary),
    # a read a second later bookmarks them: both reads start after it, so their bookmarks agree
    time.sleep(1.1)
    tables = {}
    for reader in ("native", "backend"):
        with create_adapter(admin_config(slapd, backend, streams=[PEOPLE_STREAM], reader=reader)) as a:
            spec = a.get_stream("people")
            assert (a.native() is not None) == (reader == "native")
            tables[reader] = read_table(a, spec)
    (native, nbm, nsizes), (backend_t, bbm, bsizes) = tables["native"], tables["backend"]
    assert native.num_rows == 10_000
    assert native.schema == backend_t.schema
    assert native.equals(backend_t)
    assert nbm == bbm and nsizes == bsizes
    # the stream has every kind of value the test directory holds
    rows = native.slice(0, 20).to_pylist()
    assert any(r["dcapixBlob"] for r in rows) and any(r["dcapixBlob"] is None for r in rows)
    assert any(len(r["mail"] or ()) > 1 for r in rows)
    assert any(any(ord(ch) > 127 for v in (r["cn"] or ()) for ch in v) for r in native.to_pylist())


@pytest.mark.slapd
@pytest.mark.parametrize("backend", [b for b in ("python-ldap", "ldap3") if b in BACKENDS])
def test_native_root_dse_and_subschema_equal_the_backends(slapd, backend):
    with (
        create_adapter(admin_config(slapd, backend, reader="native")) as n,
        create_adapter(admin_config(slapd, backend, reader="backend")) as b,
    ):
        assert n.root_dse() == b.root_dse()
        ns, bs = n.subschema(), b.subschema()
        assert ns.attribute_types == bs.attribute_types
        assert ns.object_classes == bs.object_classes
        assert len(ns.attribute_types) > 500
        # discovery (the object classes scanned) gives the same streams, without the backend
        assert [(s.name, s.schema) for s in n.discover()] == [(s.name, s.schema) for s in b.discover()]
        assert n._backend is None


@pytest.mark.slapd
def test_native_read_imports_no_client_library(slapd, tmp_path):
    """``dcapix run`` through the native reader: no ldap/ldap3/ldaptor import at all."""
    import json
    import subprocess
    import textwrap

    cfg = admin_config(slapd, "python-ldap", streams=[{**PEOPLE_STREAM, "filter": "(uid=user00012*)"}])
    code = textwrap.dedent(
        f"""
        import sys, json
        from dc_api_x import create_adapter
        with create_adapter(json.loads({json.dumps(json.dumps(cfg))})) as a:
            rows = sum(len(b) for b in a.read(a.get_stream("people")))
        loaded = [m for m in ("ldap3", "ldap", "ldaptor", "twisted") if m in sys.modules]
        print(rows, ",".join(loaded) or "none")
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["10", "none"]


@pytest.mark.slapd
def test_native_read_stopped_early_closes_its_connection_and_reads_again(slapd, monkeypatch):
    import dc_api_x_ldap.source as ldap_source

    monkeypatch.setattr(ldap_source, "GROUP_ENTRIES", 100)
    stream = {**PEOPLE_STREAM, "page_size": 100}
    with create_adapter(admin_config(slapd, streams=[stream], reader="native")) as a:
        spec = a.get_stream("people")
        batches = a.read(spec)
        first = next(batches)
        assert len(first) == 100
        batches.close()  # the next page was asked for: the connection is closed, ending the search
        assert a.native().sock is None
        table, _, _ = read_table(a, spec)
    assert table.num_rows == 10_000


@pytest.mark.slapd
def test_native_reads_over_ldapi_with_sasl_external(slapd):
    """No password: the native reader binds with SASL EXTERNAL over the ldapi:// socket."""
    stream = {**PEOPLE_STREAM, "filter": "(uid=user00002*)"}
    cfg = {"adapter": "ldap", "url": slapd.ldapi_url, "streams": [stream]}
    with create_adapter({**cfg, "reader": "native"}) as a:
        assert a.options.auth == "sasl_external"
        native, _, _ = read_table(a, a.get_stream("people"))
        assert a._backend is None
    with create_adapter({**cfg, "reader": "backend", "backend": BACKENDS[0]}) as a:
        backend_t, _, _ = read_table(a, a.get_stream("people"))
    assert native.num_rows == 10 and native.equals(backend_t)


@pytest.mark.slapd
def test_native_reconnects_when_the_server_closed_the_kept_connection(slapd):
    """An idle timeout closes the connection kept between operations: the next operation
    reconnects instead of failing (a socket whose peer is gone stands in for it)."""
    import socket

    with create_adapter(admin_config(slapd, streams=[{**PEOPLE_STREAM, "filter": "(uid=user00001*)"}])) as a:
        spec = a.get_stream("people")
        native = a.native()
        for what in ("search", "paged"):
            mine, peer = socket.socketpair()
            peer.close()
            native.sock.close()
            native.sock = mine
            if what == "search":
                assert native.root_dse() == a.root_dse()
            else:
                assert read_table(a, spec)[0].num_rows == 10
            assert native.sock is not mine


@pytest.mark.slapd
def test_native_attribute_outside_the_schema_is_an_error(slapd):
    with create_adapter(admin_config(slapd, streams=[PEOPLE_STREAM], reader="native")) as a:
        spec = a.get_stream("people")
        props = {k: v for k, v in spec.properties.items() if k != "mail"}
        bad = spec.with_(schema={**spec.schema, "properties": props})
        # the search asks for the stream's attributes ('*' is not among them): name it explicitly
        bad = bad.with_(options={**bad.options, "attributes": ["uid", "mail"]})
        with pytest.raises(SchemaError) as err:
            list(a.read(bad))
    assert "'mail'" in str(err.value) and "not in the stream's schema" in str(err.value)
    assert "uid=user" in str(err.value)


def test_reader_native_where_it_cannot_serve_says_why():
    cfg = {"adapter": "ldap", "url": "ldaps://127.0.0.1:1", "reader": "native"}
    with create_adapter(cfg) as a, pytest.raises(AdapterError, match=r"reader.*ldaps://"):
        a.root_dse()
    with create_adapter({**cfg, "reader": "auto"}) as a:
        assert a.native() is None


def test_without_the_extension_auto_falls_back_and_native_names_the_reason(monkeypatch):
    from dc_api_x_ldap import native

    monkeypatch.setitem(sys.modules, "dc_api_x_ldap._berpage", None)
    ok, why = native.status()
    assert not ok and "not built" in why and "C compiler" in why
    with create_adapter({"adapter": "ldap", "url": "ldap://127.0.0.1:1"}) as a:
        assert a.native() is None  # auto: the backend reads
    cfg = {"adapter": "ldap", "url": "ldap://127.0.0.1:1", "reader": "native"}
    with create_adapter(cfg) as a, pytest.raises(AdapterError, match="not built"):
        a.native()


FILTERS = [
    "(objectClass=inetOrgPerson)",
    "(&(uid=a*b*c)(!(cn=x))(|(sn>=3)(sn<=4)(mail=*)))",
    "(cn~=Jon)",
    "(uid=*x)",
    "(uid=x*)",
    "(uid=*x*y*)",
    r"(cn=caf\c3\a9)",
    "(cn=Ñandú)",
    "(cn:caseExactMatch:=Foo)",
    "(:1.2.3:=x)",
    r"(uid=\2a\28\29\5c)",
    "(&(objectClass=*)(modifyTimestamp>=20240101000000Z))",
]


@pytest.mark.parametrize("text", FILTERS)
def test_filter_encoding_equals_ldap3s(text):
    pytest.importorskip("ldap3")
    from dc_api_x_ldap.native import encode_filter
    from ldap3.operation.search import compile_filter, parse_filter
    from pyasn1.codec.ber import encoder

    parsed = parse_filter(text, None, auto_escape=False, auto_encode=False, validator=None, check_names=False)
    assert encode_filter(text) == encoder.encode(compile_filter(parsed.elements[0]))


def test_filter_dn_attributes_is_true_as_ff_and_bad_filters_raise():
    from dc_api_x_ldap.native import encode_filter

    # RFC 4511 5.1: TRUE is encoded as FF (ldap3 sends 01, which servers accept as well)
    assert encode_filter("(cn:dn:2.5.13.5:=Foo)").endswith(b"\x84\x01\xff")
    for bad in ("(uid=x", "uid=x)", "(uid=a**b)", r"(uid=\zz)", "(=x)", "(&(uid=x)"):
        with pytest.raises(ValueError):
            encode_filter(bad)


# ------------------------------------------------------------------------- the decoder itself
def _tlv(tag: int, body: bytes) -> bytes:
    from dc_api_x_ldap.backends import _ber_tlv

    return _ber_tlv(tag, body)


def _entry_msg(msgid: int, dn: bytes, attrs: list[tuple[bytes, list[bytes]]]) -> bytes:
    from dc_api_x_ldap.backends import _ber_int

    pas = b"".join(
        _tlv(0x30, _tlv(0x04, n) + _tlv(0x31, b"".join(_tlv(0x04, v) for v in vs))) for n, vs in attrs
    )
    return _tlv(0x30, _ber_int(msgid) + _tlv(0x64, _tlv(0x04, dn) + _tlv(0x30, pas)))


def test_decoder_columns_partial_messages_unknown_names_and_malformed_input():
    from dc_api_x_ldap import _berpage
    from dc_api_x_ldap.native import group_to_table
    from dc_api_x_ldap.schema import lists_to_table  # noqa: F401  (the conversion it feeds)

    big = bytes(range(256)) * 300  # a value longer than 64 KiB: long-form lengths
    msgs = [
        _entry_msg(5, b"uid=a", [(b"cn", [b"A", "Ñ".encode()]), (b"blob", [big])]),
        _entry_msg(5, b"uid=b", [(b"CN", [b"B"])]),  # another description of the same column
        _entry_msg(5, b"uid=c", []),
    ]
    data = bytearray(b"".join(msgs))
    cols = _berpage.Columns(2)
    cols.add_name(b"cn", 0)
    # one byte at a time: every prefix is 'read more', never a half-decoded entry
    status, pos, _ = cols.feed(data, 0, 1, 5)
    assert (status, pos, cols.n) == (_berpage.MORE, 0, 0)
    status, pos, need = cols.feed(data, 0, len(msgs[0]) - 1, 5)
    assert (status, pos, need, cols.n) == (_berpage.MORE, 0, len(msgs[0]), 0)
    status, pos, (name, dn) = cols.feed(data, 0, len(data), 5)
    assert (status, pos, name, dn) == (_berpage.NAME, 0, b"blob", b"uid=a")
    cols.add_name(b"blob", 1)
    status, pos, _ = cols.feed(data, 0, len(data), 5)
    assert status == _berpage.NAME and pos == len(msgs[0])  # 'CN' is not 'cn' byte for byte
    cols.add_name(b"CN", 0)
    status, pos, need = cols.feed(data, pos, len(data), 5)
    assert (status, pos, need, cols.n) == (_berpage.MORE, len(data), 0, 3)
    schema = {
        "type": "object",
        "properties": {
            "dn": {"type": "string"},
            "cn": {"type": ["array", "null"], "items": {"type": "string"}},
            "blob": {"type": ["string", "null"], "contentEncoding": "base64"},
        },
    }
    from dc_api_x.arrow import jsonschema_to_arrow

    table = group_to_table(cols.take(), schema, jsonschema_to_arrow(schema))
    assert table.to_pylist() == [
        {"dn": "uid=a", "cn": ["A", "Ñ"], "blob": big},
        {"dn": "uid=b", "cn": ["B"], "blob": None},
        {"dn": "uid=c", "cn": None, "blob": None},
    ]
    assert cols.n == 0  # take() starts anew
    # another message id (or operation) stops the decoder at it
    done = _tlv(0x30, b"\x02\x01\x05" + _tlv(0x65, b"\x0a\x01\x00\x04\x00\x04\x00"))
    buf = bytearray(done)
    assert cols.feed(buf, 0, len(buf), 5) == (_berpage.STOP, 0, len(done))
    # malformed: a value that is not an OCTET STRING, an indefinite length, a cut-short element
    bad_value = bytearray(_entry_msg(5, b"uid=x", [(b"cn", [b"v"])]).replace(b"\x04\x01v", b"\x02\x01v"))
    indefinite = bytearray(b"\x30\x80\x02\x01\x05")
    for junk in (bad_value, indefinite):
        with pytest.raises(ValueError, match="malformed"):
            cols.feed(junk, 0, len(junk), 5)
    assert (cols.n, cols.take()[0]) == (0, 0)


def test_reader_receives_trickled_entries_whole_with_and_without_coalescing():
    """``Columns.read`` receives first and, with ``coalesce_us``, waits that long once it has
    caught up before polling: entries written a few at a time (as slapd does) all arrive, in
    order, up to the page's SearchResultDone, with either setting; a bad setting is an error."""
    import socket
    import threading
    import time

    from dc_api_x_ldap import _berpage

    msgs = [_entry_msg(7, f"uid=u{i}".encode(), [(b"cn", [f"n{i}".encode()])]) for i in range(300)]
    done = _tlv(0x30, b"\x02\x01\x07" + _tlv(0x65, b"\x0a\x01\x00\x04\x00\x04\x00"))
    for coalesce in (0, 200):
        mine, peer = socket.socketpair()
        mine.setblocking(False)

        def trickle(peer=peer) -> None:
            for k in range(0, len(msgs), 7):
                peer.sendall(b"".join(msgs[k : k + 7]))
                time.sleep(0.0002)
            peer.sendall(done)

        writer = threading.Thread(target=trickle)
        writer.start()
        try:
            cols = _berpage.Columns(1)
            cols.add_name(b"cn", 0)
            buf = bytearray(1 << 16)
            status, pos, end, extra = cols.read(mine.fileno(), buf, 0, 0, 7, 10_000, 1024, coalesce)
            while status == _berpage.MORE:  # the buffer is full: make room, as native.py does
                buf[0 : end - pos] = buf[pos:end]
                status, pos, end, extra = cols.read(
                    mine.fileno(), buf, 0, end - pos, 7, 10_000, 1024, coalesce
                )
            assert status == _berpage.STOP and bytes(buf[pos:extra]) == done
            n, _, dn_data, _ = cols.take()
            assert n == 300 and bytes(dn_data) == b"".join(f"uid=u{i}".encode() for i in range(300))
        finally:
            writer.join()
            mine.close()
            peer.close()
    with pytest.raises(ValueError, match="coalesce_us"):
        _berpage.Columns(1).read(0, bytearray(16), 0, 0, 1, 10, 1, 1_000_000)


@pytest.mark.skipif(not hasattr(__import__("signal"), "setitimer"), reason="needs signal.setitimer")
def test_reader_returns_at_once_for_a_signal_during_its_coalescing_wait():
    """A signal that arrives while the reader waits before polling (``coalesce_us``) is handed to
    Python at once (status INTR, the handler runs), not after the poll's timeout."""
    import signal
    import socket
    import time

    from dc_api_x_ldap import _berpage

    class Alarm(Exception):
        pass

    def handler(signum, frame):
        raise Alarm

    mine, peer = socket.socketpair()
    mine.setblocking(False)
    old = signal.signal(signal.SIGALRM, handler)
    t = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Alarm):
            while True:  # native.py's loop: INTR -> read again (after the handler ran)
                status, *_ = _berpage.Columns(1).read(
                    mine.fileno(), bytearray(1 << 16), 0, 0, 1, 10_000, 1024, 900_000
                )
                assert status == _berpage.INTR
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        mine.close()
        peer.close()
    assert time.monotonic() - t < 2  # not the 10 s timeout


@pytest.mark.slapd
@pytest.mark.parametrize("in_c", [True, False])
def test_native_pages_asked_for_in_c(slapd, monkeypatch, in_c):
    """``native.PAGE_IN_C``: the C reader asks for the next page itself while a group fills (the
    reading thread needs no GIL between pages), Python only at a group's end; the same table and
    bookmark as when Python asks for every page, and the server served every page (15 of 700)."""
    import dc_api_x_ldap.source as ldap_source
    from dc_api_x_ldap import native as native_mod

    monkeypatch.setattr(ldap_source, "GROUP_ENTRIES", 3000)  # 5 pages of 700 a group
    monkeypatch.setattr(native_mod, "PAGE_IN_C", in_c)
    sent: list[int] = []
    orig = native_mod.NativeReader._send

    def counting(self, op, controls=()):
        sent.append(op[0])
        return orig(self, op, controls)

    monkeypatch.setattr(native_mod.NativeReader, "_send", counting)
    time.sleep(1.1)
    with create_adapter(admin_config(slapd, streams=[PEOPLE_STREAM], reader="native")) as a:
        spec = a.get_stream("people")
        table, bm, sizes = read_table(a, spec)
    searches = sent.count(0x63) - 3  # (the root DSE, the subschema, the server's clock)
    assert table.num_rows == 10_000 and sizes == [3500, 3500, 3000]
    # discovery's scan of the object classes (one group) and the read (3 groups), 15 pages each:
    # Python asks for the first page of each and, with PAGE_IN_C, only after a group's 5th page
    assert searches == (1 + 3 if in_c else 15 + 15)
    with create_adapter(admin_config(slapd, streams=[PEOPLE_STREAM], reader="native")) as b:
        monkeypatch.setattr(native_mod, "PAGE_IN_C", not in_c)
        other, obm, _ = read_table(b, b.get_stream("people"))
    assert table.equals(other) and bm == obm


@pytest.mark.slapd
def test_native_receive_thread_reads_the_same(slapd, monkeypatch):
    """``source.RECEIVE_AHEAD``: the pages received in a thread of their own (the server goes on
    while a group is converted) or in the reading thread: the same table and bookmark; stopped
    early, the receiving thread is stopped and the adapter reads again."""
    import dc_api_x_ldap.source as ldap_source

    monkeypatch.setattr(ldap_source, "GROUP_ENTRIES", 2000)
    time.sleep(1.1)
    out = {}
    with create_adapter(admin_config(slapd, streams=[PEOPLE_STREAM], reader="native")) as a:
        spec = a.get_stream("people")
        for ahead in (0, 1):
            monkeypatch.setattr(ldap_source, "RECEIVE_AHEAD", ahead)
            out[ahead] = read_table(a, spec)
        batches = a.read(spec)
        assert len(next(batches)) == 2100
        batches.close()  # a group in the queue, another being received: stopped at once
        again, _, _ = read_table(a, spec)
    assert out[0][0].equals(out[1][0]) and out[0][1] == out[1][1] and out[0][2] == out[1][2]
    assert again.num_rows == 10_000
