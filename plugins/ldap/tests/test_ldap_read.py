"""Reading from a real slapd: schema, paging seen from the server's side, exact values,
incremental reads with the toolkit's boundary semantics, errors."""

from __future__ import annotations

import base64
import datetime as dt
import time

import dc_api_x_ldap.source as ldap_source
import ldap3
import pytest
from dc_api_x_ldap.testing import ADMIN_DN, ADMIN_PASSWORD, SUFFIX, person
from ldap_support import BACKENDS, N_PEOPLE, PEOPLE, READER_IDS, READERS, admin_config

from dc_api_x import create_adapter
from dc_api_x.exceptions import AdapterError, ConfigError, SchemaError, TransportError

pytestmark = pytest.mark.slapd

STREAM = {"name": "people", "base": PEOPLE, "filter": "(objectClass=inetOrgPerson)"}


def read_all(adapter, spec, **kw):
    batches = list(adapter.read(spec, **kw))
    rows = [r for b in batches for r in b.records]
    return rows, batches


def expected(i: int) -> dict:
    """The values person(i) was loaded with, in the adapter's Python forms."""
    dn, a = person(i)
    out = {"dn": dn}
    for k, v in a.items():
        out[k] = v
    out["uidNumber"] = int(a["uidNumber"])
    out["gidNumber"] = int(a["gidNumber"])
    out["dcapixActive"] = a["dcapixActive"] == "TRUE"
    out["dcapixScore"] = int(a["dcapixScore"])
    s = a["dcapixSince"]
    out["dcapixSince"] = dt.datetime.strptime(s, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    if "dcapixCounts" in a:
        out["dcapixCounts"] = [int(x) for x in a["dcapixCounts"]]
    for multi in ("cn", "uid", "sn", "givenName", "description"):
        if multi in a:
            out[multi] = [a[multi]]
    return out


def test_discover_maps_the_subschema(slapd):
    with create_adapter(admin_config(slapd, streams=[STREAM])) as a:
        [spec] = a.discover()
    p = spec.properties
    assert spec.key_properties == ("dn",)
    assert spec.replication_key == "modifyTimestamp"
    assert set(spec.replication_keys) == {"modifyTimestamp", "entryCSN"}
    assert p["dn"]["type"] == "string"
    assert p["uidNumber"]["type"] == ["integer", "null"]  # INTEGER, SINGLE-VALUE (nis.schema)
    assert p["dcapixActive"]["type"] == ["boolean", "null"]
    assert p["dcapixSince"] == {
        "type": ["string", "null"],
        "format": "date-time",
        "x-ldap-syntax": "1.3.6.1.4.1.1466.115.121.1.24",
    }
    assert p["dcapixBlob"]["contentEncoding"] == "base64"
    assert p["jpegPhoto"]["items"]["contentEncoding"] == "base64"  # multi-valued binary
    assert p["mail"]["type"] == ["array", "null"] and p["mail"]["items"]["type"] == "string"
    assert p["dcapixCounts"]["items"]["type"] == "integer"
    assert p["modifyTimestamp"]["format"] == "date-time"
    # the classes found under the base (inetOrgPerson + posixAccount + the auxiliary class)
    assert {"uid", "homeDirectory", "dcapixTag", "telephoneNumber"} <= set(p)


def test_default_streams_are_the_naming_contexts(slapd):
    with create_adapter(admin_config(slapd)) as a:
        specs = a.discover()
    assert [s.name for s in specs] == ["dc_example_dc_com"]
    assert specs[0].options["base"] == SUFFIX


#: ldaptor decodes BER in pure Python (~1,000 entries/s): it reads a 2,000-entry slice
FULL = {"filter": "(objectClass=inetOrgPerson)", "n": N_PEOPLE, "pages": [700] * 14 + [200]}
SLICE = {"filter": "(|(uid=user000*)(uid=user001*))", "n": 2000, "pages": [700, 700, 600]}
CASES = [(b, r, SLICE if b == "ldaptor" and r == "backend" else FULL) for b, r in READERS]


def grouped(pages: list[int], size: int) -> list[int]:
    """Batch sizes of a read: whole pages joined until a group holds ``size`` entries."""
    out, n = [], 0
    for p in pages:
        n += p
        if n >= size:
            out, n = [*out, n], 0
    return [*out, n] if n else out


@pytest.mark.parametrize(("backend", "reader", "case"), CASES, ids=READER_IDS)
def test_reads_every_entry_with_exact_values_and_pages_seen_by_the_server(
    slapd, backend, reader, case, monkeypatch
):
    # pages are converted in groups of >= GROUP_ENTRIES entries: small groups, several batches
    monkeypatch.setattr(ldap_source, "GROUP_ENTRIES", 1000)
    streams = [{**STREAM, "filter": case["filter"], "page_size": 700}]
    cfg = admin_config(slapd, backend, streams=streams, reader=reader)
    with create_adapter(cfg) as a:
        spec = a.get_stream("people")
        mark = slapd.log_mark()
        rows, batches = read_all(a, spec)
    assert len(rows) == case["n"]
    assert len({r["dn"] for r in rows}) == case["n"]
    # the server answered ceil(n / 700) searches on the base, each a page of <= 700 entries
    ops = [o for o in slapd.search_ops(PEOPLE, since=mark) if o.filter == case["filter"]]
    assert [o.nentries for o in ops] == case["pages"]
    assert len({o.conn for o in ops}) == 1  # one connection, one paged search
    assert [len(b) for b in batches] == grouped(case["pages"], 1000)
    assert len(batches) > 1
    by_dn = {r["dn"]: r for r in rows}
    for i in (0, 1, 7, 10, 15, 30, 70, 1999, 4999, 9999):
        if i >= case["n"]:
            continue
        want = expected(i)
        got = by_dn[want["dn"]]
        for k, v in want.items():
            if k == "objectClass":
                assert sorted(got[k]) == sorted(v)
            else:
                assert got[k] == v, (i, k)
        absent = {"telephoneNumber", "description"} if i % 7 else set()
        absent |= {"dcapixBlob"} if i % 10 else set()
        absent |= {"dcapixTag"} if i % 4 == 0 else set()
        for k in absent:
            assert got[k] is None, (i, k)
        assert got["jpegPhoto"] is None and got["entryUUID"]
        assert isinstance(got["modifyTimestamp"], dt.datetime)
    assert batches[-1].bookmark["replication_key"] == "modifyTimestamp"
    assert all(b.bookmark is None for b in batches[:-1])  # not sorted by time: only the end counts


def test_arrow_view_has_the_schema_types(slapd):
    import pyarrow as pa

    with create_adapter(admin_config(slapd, streams=[STREAM])) as a:
        spec = a.get_stream("people")
        batch = next(iter(a.read(spec, limit=50)))
    t = batch.to_arrow()
    assert t.schema.field("uidNumber").type == pa.int64()
    assert t.schema.field("dcapixActive").type == pa.bool_()
    assert t.schema.field("dcapixSince").type == pa.timestamp("us", tz="UTC")
    assert t.schema.field("dcapixBlob").type == pa.binary()
    assert t.schema.field("mail").type == pa.list_(pa.string())
    assert t.num_rows == 50


def test_limit_and_columns(slapd):
    with create_adapter(admin_config(slapd, streams=[{**STREAM, "page_size": 30}])) as a:
        spec = a.get_stream("people")
        mark = slapd.log_mark()
        rows, _ = read_all(a, spec, columns=["uid", "mail"], limit=75)
    assert len(rows) == 75
    assert set(rows[0]) == {"dn", "uid", "mail", "modifyTimestamp"}  # + the replication key
    # the third page was cut short and the paged search abandoned (size 0 sent with the cookie)
    ops = [o for o in slapd.search_ops(PEOPLE, since=mark) if o.filter == "(objectClass=inetOrgPerson)"]
    assert [o.nentries for o in ops] == [30, 30, 30, 0]


@pytest.mark.skipif("python-ldap" not in BACKENDS, reason="python-ldap not installed")
def test_pages_asked_for_ahead_are_abandoned_when_the_read_stops_early(slapd):
    # python-ldap sends the request of page N+1 before it yields page N; a read stopped after
    # the second page reads the page already asked for, then abandons (size 0 with its cookie)
    cfg = admin_config(slapd, "python-ldap", streams=[{**STREAM, "page_size": 40}])
    with create_adapter(cfg) as a:
        mark = slapd.log_mark()
        pages = a.backend.paged_search(PEOPLE, "sub", STREAM["filter"], ["uid"], 40, ahead=True)
        assert [len(next(pages)), len(next(pages))] == [40, 40]
        pages.close()
        ops = [o for o in slapd.search_ops(PEOPLE, since=mark) if o.filter == STREAM["filter"]]
        assert [o.nentries for o in ops] == [40, 40, 40, 0]
        assert len({o.conn for o in ops}) == 1
        # the connection is usable afterwards: a new paged search starts from the beginning
        again = list(a.backend.paged_search(PEOPLE, "sub", "(uid=user00001*)", ["uid"], 4, ahead=True))
    assert [len(p) for p in again] == [4, 4, 2]


def test_json_forms_through_the_records_of_a_singer_style_consumer(slapd):
    from dc_api_x.arrow import arrow_to_records

    with create_adapter(admin_config(slapd, streams=[{**STREAM, "filter": "(uid=user000010)"}])) as a:
        spec = a.get_stream("people")
        [batch] = list(a.read(spec))
    [rec] = arrow_to_records(batch.to_arrow(), spec.schema)
    assert rec["dcapixBlob"] == bytes((10 + k) % 256 for k in range(24))
    assert base64.b64encode(rec["dcapixBlob"]).decode() == "CgsMDQ4PEBESExQVFhcYGRobHB0eHyAh"


def _add_people(conn, base, ids):
    for i in ids:
        _, attrs = person(i)
        assert conn.add(f"uid=user{i:06d},{base}", attributes=attrs), conn.result


@pytest.mark.parametrize(("backend", "reader"), READERS, ids=READER_IDS)
def test_incremental_reads_only_new_or_changed_entries(slapd, subtree, backend, reader):
    conn = ldap3.Connection(slapd.url, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    _add_people(conn, subtree, range(40))
    time.sleep(1.05)  # modifyTimestamp has one-second steps: the first run starts a second later
    streams = [{"name": "inc", "base": subtree, "filter": "(uid=*)"}]
    cfg = admin_config(slapd, backend, streams=streams, reader=reader)
    with create_adapter(cfg) as a:
        spec = a.get_stream("inc")
        rows, batches = read_all(a, spec)
        assert len(rows) == 40
        state = batches[-1].bookmark
        assert state["replication_key"] == "modifyTimestamp"
        assert len(state["keys_at_value"]) >= 1
        # nothing changed: nothing read
        rows, batches = read_all(a, spec, state=state)
        assert rows == []
        # change three, add two
        for i in (3, 17, 31):
            assert conn.modify(
                f"uid=user{i:06d},{subtree}", {"sn": [(ldap3.MODIFY_REPLACE, [f"Changed{i}"])]}
            )
        _add_people(conn, subtree, (100, 101))
        time.sleep(1.05)
        rows, batches = read_all(a, spec, state=state)
        assert sorted(r["uid"][0] for r in rows) == [
            "user000003",
            "user000017",
            "user000031",
            "user000100",
            "user000101",
        ]
        assert {r["sn"][0] for r in rows if r["uid"][0] in ("user000003", "user000017", "user000031")} == {
            "Changed3",
            "Changed17",
            "Changed31",
        }
        state2 = batches[-1].bookmark
        assert rows == [] or state2["replication_key_value"] >= state["replication_key_value"]
        rows, _ = read_all(a, spec, state=state2)
        assert rows == []
    conn.unbind()


def test_boundary_keys_at_value_drop_only_the_listed_entries(slapd, subtree):
    """Entries at the bookmark's value are dropped only when their DN is listed (no loss, no
    duplicate), like every built-in adapter."""
    conn = ldap3.Connection(slapd.url, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    _add_people(conn, subtree, range(6))
    cfg = admin_config(slapd, streams=[{"name": "b", "base": subtree, "filter": "(uid=*)"}])
    with create_adapter(cfg) as a:
        spec = a.get_stream("b")
        rows, _ = read_all(a, spec)
        stamps = {r["modifyTimestamp"] for r in rows}
        top = max(stamps)
        at_top = sorted(r["dn"] for r in rows if r["modifyTimestamp"] == top)
        listed = at_top[: len(at_top) // 2]
        state = {
            "replication_key": "modifyTimestamp",
            "replication_key_value": top.isoformat(),
            "keys_at_value": [[d] for d in listed],
        }
        again, _ = read_all(a, spec, state=state)
    assert sorted(r["dn"] for r in again) == sorted(set(at_top) - set(listed))
    conn.unbind()


def test_entry_csn_as_replication_key(slapd, subtree):
    conn = ldap3.Connection(slapd.url, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    _add_people(conn, subtree, range(10))
    time.sleep(1.05)
    stream = {"name": "csn", "base": subtree, "filter": "(uid=*)", "replication_key": "entryCSN"}
    with create_adapter(admin_config(slapd, streams=[stream])) as a:
        spec = a.get_stream("csn")
        assert spec.replication_key == "entryCSN"
        rows, batches = read_all(a, spec)
        state = batches[-1].bookmark
        assert len(rows) == 10 and state["replication_key"] == "entryCSN"
        assert state["replication_key_value"] == max(r["entryCSN"] for r in rows)
        assert conn.modify(f"uid=user000004,{subtree}", {"sn": [(ldap3.MODIFY_REPLACE, ["X"])]})
        time.sleep(1.05)
        rows, _ = read_all(a, spec, state=state)
    assert [r["uid"] for r in rows] == [["user000004"]]
    conn.unbind()


def test_server_time_comes_from_cn_monitor(slapd):
    with create_adapter(admin_config(slapd)) as a:
        now = a.server_time()
    assert abs((dt.datetime.now(dt.timezone.utc) - now).total_seconds()) < 5


# ---------------------------------------------------------------------------------------- errors
def test_size_limit_is_an_error_not_a_truncated_read(slapd):
    """Anonymous users have slapd's sizelimit (500): the read fails loudly instead of stopping."""
    cfg = {"adapter": "ldap", "url": slapd.url, "streams": [{**STREAM, "page_size": 100}]}
    with create_adapter(cfg) as a, pytest.raises(AdapterError) as err:
        read_all(a, a.get_stream("people"))
    assert "sizeLimitExceeded (4)" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("backend", "reader"), READERS, ids=READER_IDS)
def test_wrong_password_is_one_line_naming_the_result(slapd, backend, reader):
    cfg = {**admin_config(slapd, backend, reader=reader), "password": "wrong-secret"}
    with create_adapter(cfg) as a, pytest.raises(AdapterError) as err:
        a.discover()
    msg = str(err.value)
    assert "invalidCredentials (49)" in msg and "adapter 'ldap'" in msg
    assert "wrong-secret" not in msg and "\n" not in msg


@pytest.mark.parametrize(("backend", "reader"), READERS, ids=READER_IDS)
def test_unreachable_server_is_a_transport_error(backend, reader):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cfg = {
        "adapter": "ldap",
        "url": f"ldap://127.0.0.1:{port}",
        "timeout": 2,
        "backend": backend,
        "reader": reader,
    }
    with create_adapter(cfg) as a, pytest.raises(TransportError) as err:
        a.discover()
    assert f"127.0.0.1:{port}" in str(err.value)


def test_bad_filter_and_unknown_attribute(slapd):
    cfg = admin_config(slapd, streams=[{**STREAM, "attributes": ["uid", "noSuchAttr"]}])
    with create_adapter(cfg) as a, pytest.raises(ConfigError, match="noSuchAttr"):
        a.discover()
    with pytest.raises(ConfigError, match="unbalanced"):
        create_adapter(admin_config(slapd, streams=[{**STREAM, "filter": "(uid=x"}]))


def test_an_attribute_outside_an_explicit_list_is_not_read(slapd):
    stream = {**STREAM, "attributes": ["uid", "mail", "modifyTimestamp"], "filter": "(uid=user000003)"}
    with create_adapter(admin_config(slapd, streams=[stream])) as a:
        spec = a.get_stream("people")
        assert list(spec.properties) == ["dn", "uid", "mail", "modifyTimestamp"]
        rows, _ = read_all(a, spec)
    assert rows[0]["mail"] == ["user000003@example.com", "user000003.alt@example.org"]


@pytest.mark.parametrize(("backend", "reader"), READERS, ids=READER_IDS)
def test_server_controls_manage_dsa_it(slapd, backend, reader):
    """The referral object comes back as an entry only with the ManageDsaIT control."""
    base = {
        "name": "refs",
        "base": SUFFIX,
        "filter": "(ou=elsewhere)",
        "attributes": ["ou", "ref"],
        "replication_key": None,
    }
    with create_adapter(admin_config(slapd, backend, streams=[base], reader=reader)) as a:
        plain, _ = read_all(a, a.get_stream("refs"))
    manage_dsa_it = [{"oid": "2.16.840.1.113730.3.4.2", "critical": True}]
    cfg = admin_config(slapd, backend, streams=[base], controls=manage_dsa_it, reader=reader)
    with create_adapter(cfg) as a:
        managed, _ = read_all(a, a.get_stream("refs"))
    assert plain == []
    assert [r["ref"] for r in managed] == [[f"ldap://127.0.0.1:1/ou=elsewhere,{SUFFIX}"]]


def test_a_value_that_does_not_fit_is_a_schema_error_naming_it(slapd, subtree):
    """Two values in an attribute declared single-valued cannot be an Arrow scalar: an error that
    names the attribute and the entry, never a silently dropped value."""
    from dc_api_x_ldap.schema import SubSchema

    conn = ldap3.Connection(slapd.url, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    _add_people(conn, subtree, [3])
    with create_adapter(
        admin_config(slapd, streams=[{"name": "s", "base": subtree, "filter": "(uid=*)"}])
    ) as a:
        spec = a.get_stream("s")
        props = dict(spec.properties)
        props["mail"] = {"type": ["string", "null"]}  # pretend mail were single-valued
        bad = spec.with_(schema={**spec.schema, "properties": props})
        with pytest.raises(SchemaError) as err:
            read_all(a, bad)
    assert "field 'mail'" in str(err.value) and "user000003" in str(err.value)
    assert isinstance(SubSchema(), SubSchema)
    conn.unbind()
