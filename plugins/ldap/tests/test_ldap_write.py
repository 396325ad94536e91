"""Writing to a real slapd (the sink: append / upsert by DN), the request side through ApiClient,
SASL EXTERNAL over ldapi://, LDIF, pooling."""

from __future__ import annotations

import base64
import io

import ldap3
import pytest
from dc_api_x_ldap.testing import ADMIN_DN, ADMIN_PASSWORD, SUFFIX
from ldap_support import BACKENDS, PEOPLE, admin_config

from dc_api_x import ApiClient, Batch, create_adapter
from dc_api_x.exceptions import AdapterError, SchemaError

pytestmark = pytest.mark.slapd

SUBSET = "(|(uid=user0000*)(uid=user0001*))"  # 200 people
OPERATIONAL = {"entryUUID", "createTimestamp", "modifyTimestamp", "entryCSN"}


def read_people(srv, flt=SUBSET, backend="ldap3"):
    cfg = admin_config(srv, backend, streams=[{"name": "people", "base": PEOPLE, "filter": flt}])
    with create_adapter(cfg) as a:
        spec = a.get_stream("people")
        return spec, [r for b in a.read(spec) for r in b.records]


def user_view(rec):
    return {k: (sorted(v) if isinstance(v, list) else v) for k, v in rec.items() if k not in OPERATIONAL}


@pytest.mark.parametrize("backend", BACKENDS)
def test_upsert_copies_entries_exactly_and_replaces_changed_ones(slapd, empty_slapd, backend):
    spec, rows = read_people(slapd)
    assert len(rows) == 200
    with create_adapter(admin_config(empty_slapd, backend)) as dst:
        dst.start_write(spec, load_method="upsert")
        res = dst.write(spec, Batch.from_records(rows, schema=spec.schema))
        dst.finish_write(spec)
        assert (res.rows, res.inserted, res.updated, res.committed) == (200, 200, 0, True)
        _, copied = read_people(empty_slapd)
        assert sorted(map(str, map(user_view, copied))) == sorted(map(str, map(user_view, rows)))
        # the source changes: new values, an attribute removed (null), a new multi-value
        changed = [dict(r) for r in rows[:5]]
        for r in changed:
            r["sn"] = ["Renamed"]
            r["dcapixScore"] = 42
            r["mail"] = None
            r["dcapixTag"] = ["a", "b", "c"]
        dst.start_write(spec, load_method="upsert")
        res = dst.write(spec, Batch.from_records(changed, schema=spec.schema))
        dst.finish_write(spec)
    assert (res.inserted, res.updated) == (0, 5)
    _, after = read_people(empty_slapd)
    by_dn = {r["dn"]: r for r in after}
    for r in changed:
        got = by_dn[r["dn"]]
        assert got["sn"] == ["Renamed"] and got["dcapixScore"] == 42
        assert got["mail"] is None and sorted(got["dcapixTag"]) == ["a", "b", "c"]
    assert len(after) == 200


def test_append_refuses_an_existing_entry_naming_it(slapd, empty_slapd):
    spec, rows = read_people(slapd, "(uid=user000001)")
    with create_adapter(admin_config(empty_slapd)) as dst:
        dst.start_write(spec, load_method="append")
        dst.write(spec, Batch.from_records(rows, schema=spec.schema))
        with pytest.raises(AdapterError) as err:
            dst.write(spec, Batch.from_records(rows, schema=spec.schema))
    msg = str(err.value)
    assert "entryAlreadyExists (68)" in msg and "uid=user000001" in msg and "\n" not in msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_records_without_dn_use_the_template_and_json_forms(empty_slapd, backend):
    """Records as a CSV or a Singer tap gives them: JSON forms (ISO times, base64, "true") and
    no dn or objectClass: dn_template and object_classes fill them in."""
    schema = {
        "type": "object",
        "properties": {
            "uid": {"type": "string"},
            "cn": {"type": "string"},
            "sn": {"type": "string"},
            "dcapixScore": {"type": "integer"},
            "dcapixActive": {"type": "boolean"},
            "dcapixSince": {"type": "string", "format": "date-time"},
            "dcapixBlob": {"type": "string", "contentEncoding": "base64"},
            "mail": {"type": "array", "items": {"type": "string"}},
            "userPassword": {"type": "string"},  # an octet-string attribute given as plain text
        },
    }
    from dc_api_x.types import StreamSpec

    spec = StreamSpec("csv_people", schema=schema, key_properties=("uid",))
    blob = bytes(range(256))
    recs = [
        {
            "uid": "a,b+c",  # escaped into the DN
            "cn": "Ann",
            "sn": "Ample",
            "dcapixScore": 7,
            "dcapixActive": True,
            "dcapixSince": "2024-05-06T07:08:09.250000+02:00",
            "dcapixBlob": base64.b64encode(blob).decode(),
            "mail": ["a@x.org", "b@x.org"],
            "userPassword": "s3cret",
        }
    ]
    cfg = admin_config(
        empty_slapd,
        backend,
        dn_template=f"uid={{uid}},{PEOPLE}",
        object_classes=["inetOrgPerson", "dcapixRecord"],
    )
    with create_adapter(cfg) as dst:
        dst.start_write(spec, load_method="upsert")
        dst.write(spec, Batch.from_records(recs, schema=schema))
        dst.finish_write(spec)
    conn = ldap3.Connection(empty_slapd.url, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    conn.search(PEOPLE, "(uid=a,b+c)", attributes=["*"])
    [e] = conn.response
    raw = e["raw_attributes"]
    assert raw["uid"] == [b"a,b+c"] and e["dn"].endswith(f",{PEOPLE}")  # slapd writes \2C, \2B
    assert raw["dcapixSince"] == [b"20240506050809.25Z"]
    assert raw["dcapixActive"] == [b"TRUE"]
    assert raw["dcapixBlob"] == [blob]
    assert raw["dcapixScore"] == [b"7"]
    assert sorted(raw["mail"]) == [b"a@x.org", b"b@x.org"]
    assert raw["userPassword"] == [b"s3cret"]  # text in the stream's schema: not base64-decoded
    conn.unbind()


def test_a_field_the_server_does_not_know_is_a_schema_error(empty_slapd):
    from dc_api_x.types import StreamSpec

    spec = StreamSpec(
        "x",
        schema={"type": "object", "properties": {"dn": {"type": "string"}, "shoeSize": {"type": "integer"}}},
    )
    with (
        create_adapter(admin_config(empty_slapd)) as dst,
        pytest.raises(SchemaError, match="field 'shoeSize'"),
    ):
        dst.start_write(spec, load_method="upsert")


def test_a_rejected_entry_is_one_line_naming_the_dn_and_the_server_reason(empty_slapd):
    from dc_api_x.types import StreamSpec

    spec = StreamSpec(
        "x", schema={"type": "object", "properties": {"dn": {"type": "string"}, "cn": {"type": "string"}}}
    )
    rec = {"dn": f"cn=nobody,{PEOPLE}", "cn": "nobody", "objectClass": ["inetOrgPerson"]}  # no sn
    with create_adapter(admin_config(empty_slapd)) as dst:
        dst.start_write(spec, load_method="upsert")
        with pytest.raises(SchemaError) as err:
            dst.write(spec, Batch.from_records([rec]))
    assert "objectClassViolation (65)" in str(err.value) and "cn=nobody" in str(err.value)


# ------------------------------------------------------------------------------- request side
@pytest.mark.parametrize("backend", BACKENDS)
def test_api_client_crud_and_extended_operations(empty_slapd, backend):
    dn = f"uid=carol,{PEOPLE}"
    with ApiClient(
        empty_slapd.url,
        adapter="ldap",
        adapter_options={"backend": backend, "bind_dn": ADMIN_DN, "password": ADMIN_PASSWORD},
    ) as api:
        r = api.post(
            dn,
            json={
                "objectClass": ["inetOrgPerson", "dcapixRecord"],
                "uid": "carol",
                "cn": "Carol",
                "sn": "C",
                "dcapixScore": 5,
                "dcapixActive": False,
            },
        )
        assert r.status_code == 201
        assert api.post(dn, json={"objectClass": ["inetOrgPerson"], "cn": "C", "sn": "C"}).status_code == 409
        got = api.get(dn).raise_for_status().data
        assert (
            got["dn"] == dn
            and got["dcapixScore"] == 5
            and got["dcapixActive"] is False
            and got["cn"] == ["Carol"]
        )
        assert (
            api.patch(dn, json={"replace": {"sn": "Changed"}, "add": {"mail": ["c@x.org"]}}).status_code
            == 200
        )
        assert api.put(dn, json={"dcapixScore": 6}).status_code == 200
        got = api.get(dn, params={"attributes": "sn,mail,dcapixScore"}).data
        assert got == {"dn": dn, "sn": ["Changed"], "mail": ["c@x.org"], "dcapixScore": 6}
        found = api.get(PEOPLE, params={"scope": "one", "filter": "(sn=Changed)", "attributes": "uid"}).data
        assert found == [{"dn": dn, "uid": ["carol"]}]
        assert api.request("EXTENDED", "whoami").data == {"authzid": f"dn:{ADMIN_DN}"}
        assert api.delete(dn).status_code == 204
        missing = api.get(dn)
        assert missing.status_code == 404 and missing.data["name"] == "noSuchObject"


@pytest.mark.parametrize("backend", BACKENDS)
def test_password_modify_extended_operation(empty_slapd, backend):
    dn = f"uid=dave,{PEOPLE}"
    opts = {"backend": backend, "bind_dn": ADMIN_DN, "password": ADMIN_PASSWORD}
    with ApiClient(empty_slapd.url, adapter="ldap", adapter_options=opts) as api:
        api.post(
            dn, json={"objectClass": ["inetOrgPerson"], "uid": "dave", "cn": "D", "sn": "D"}
        ).raise_for_status()
        r = api.request("EXTENDED", "password_modify", json={"user": dn, "new": "n3w-pass"})
        assert r.status_code == 200
        generated = api.request("EXTENDED", "password_modify", json={"user": dn}).data["generated"]
    assert generated and generated != "n3w-pass"  # the server made one up (RFC 3062 genPasswd)
    with ApiClient(
        empty_slapd.url, adapter="ldap", adapter_options={"bind_dn": dn, "password": generated}
    ) as api:
        assert api.request("EXTENDED", "whoami").data == {"authzid": f"dn:{dn}"}


# -------------------------------------------------------------------------------- auth, pooling
@pytest.mark.parametrize("backend", BACKENDS)
def test_sasl_external_over_ldapi(slapd, backend):
    """No password anywhere: slapd maps the socket peer's uid/gid to the admin DN."""
    cfg = {"adapter": "ldap", "url": slapd.ldapi_url, "backend": backend}
    with create_adapter(cfg) as a:
        assert a.options.auth == "sasl_external"
        assert a.backend.whoami() == f"dn:{ADMIN_DN}"
        assert a.naming_contexts() == [SUFFIX]


def test_ntlm_is_offered_by_ldap3_and_refused_cleanly_by_slapd(slapd):
    """slapd has no NTLM (an Active Directory mechanism): the bind fails in one line."""
    cfg = {"adapter": "ldap", "url": slapd.url, "auth": "ntlm", "bind_dn": "EXAMPLE\\admin", "password": "x"}
    with create_adapter(cfg) as a, pytest.raises(AdapterError) as err:
        a.discover()
    assert "bind" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(Exception, match="does not support 'ntlm'"):
        create_adapter({**cfg, "backend": "python-ldap"})


def test_server_pool_skips_a_dead_server_and_pooled_writes(slapd, empty_slapd):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"ldap://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    spec, rows = read_people(slapd, "(uid=user0000*)")
    cfg = admin_config(empty_slapd, url=dead, urls=[empty_slapd.url], pool_size=4, timeout=3, write_window=7)
    with create_adapter(cfg) as dst:
        dst.start_write(spec, load_method="upsert")
        res = dst.write(spec, Batch.from_records(rows, schema=spec.schema))
        dst.finish_write(spec)
    assert res.inserted == 100
    _, copied = read_people(empty_slapd, "(uid=user0000*)")
    assert len(copied) == 100


# ------------------------------------------------------------------------------------------ LDIF
def test_ldif_export_and_import(slapd, empty_slapd):
    pytest.importorskip("ldap", reason="LDIF uses python-ldap's ldif module")
    cfg = admin_config(slapd, streams=[{"name": "p", "base": PEOPLE, "filter": "(uid=user00002*)"}])
    out = io.StringIO()
    with create_adapter(cfg) as a:
        n = a.export_ldif("p", out)
    text = out.getvalue()
    assert n == 10 and text.count("\ndn: ") + text.startswith("dn: ") == 10
    assert "dcapixBlob:: " in text and "cn:: " in text  # binary and non-ASCII values are base64
    with create_adapter(admin_config(empty_slapd, "python-ldap")) as b:
        res = b.import_ldif(io.StringIO(text))
        again = b.import_ldif(io.StringIO(text))
    assert (res.inserted, res.updated, again.inserted, again.updated) == (10, 0, 0, 10)
    _, src = read_people(slapd, "(uid=user00002*)")
    _, dst = read_people(empty_slapd, "(uid=user00002*)")
    assert sorted(map(str, map(user_view, src))) == sorted(map(str, map(user_view, dst)))
    change = f"dn: uid=user000021,{PEOPLE}\nchangetype: modify\nreplace: sn\nsn: Modified\n-\n\n"
    with create_adapter(admin_config(empty_slapd, "python-ldap")) as b:
        assert b.import_ldif(io.StringIO(change)).updated == 1
    _, dst = read_people(empty_slapd, "(uid=user000021)")
    assert dst[0]["sn"] == ["Modified"]
