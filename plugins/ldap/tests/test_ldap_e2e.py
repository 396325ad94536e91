"""End to end through the installed commands against the real slapd: ``dcapix run`` (LDAP →
Parquet, LDAP → LDAP) and ``tap-dcapix | target-dcapix`` (LDAP as the source and as the
destination), exact counts and values, second runs that move only new or changed entries."""

from __future__ import annotations

import json
import time
from pathlib import Path

import ldap3
import pyarrow.dataset as ds
import pytest
import yaml
from dc_api_x_ldap.testing import ADMIN_DN, ADMIN_PASSWORD, person
from ldap_support import N_PEOPLE, PEOPLE, run_cli, run_pipe

pytestmark = pytest.mark.slapd


def source(srv, *streams, backend="ldap3"):
    return {
        "adapter": "ldap",
        "backend": backend,
        "url": srv.url,
        "bind_dn": ADMIN_DN,
        "password": "${LDAP_TEST_PASSWORD}",  # from the environment, not the file
        "streams": list(streams),
    }


ENV = {"LDAP_TEST_PASSWORD": ADMIN_PASSWORD}


def parquet_rows(out: Path, stream: str) -> list[dict]:
    files = sorted(str(p) for p in (out / stream).rglob("*.parquet")) or sorted(
        str(p) for p in out.rglob(f"*{stream}*.parquet")
    )
    assert files, f"no parquet files for {stream} under {out}: {list(out.rglob('*'))}"
    return ds.dataset(files, format="parquet").to_table().to_pylist()


def _write(tmp: Path, pipeline: dict) -> Path:
    cfg = tmp / "dcapix.yml"
    cfg.write_text(yaml.safe_dump({"state_backend": str(tmp / "state.db"), "pipelines": {"p": pipeline}}))
    return cfg


def dcapix_run(tmp: Path, pipeline: dict, *extra: str) -> dict:
    cfg = _write(tmp, pipeline)
    res = run_cli("dcapix", "run", "-c", str(cfg), "p", "--json", "--no-progress", *extra, cwd=tmp, env=ENV)
    assert res.returncode == 0, res.stderr[-3000:]
    assert ADMIN_PASSWORD not in res.stdout + res.stderr
    return json.loads(res.stdout)


def stream_rows(metrics: dict, name: str) -> int:
    streams = metrics["streams"]
    if isinstance(streams, dict):
        return int(streams[name]["rows"])
    return int(next(s for s in streams if s["stream"] == name)["rows"])


def test_dcapix_run_ldap_to_parquet_exact_then_only_changes(slapd, subtree, tmp_path):
    conn = ldap3.Connection(slapd.url, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    for i in range(30):
        dn, attrs = person(i)
        assert conn.add(dn.replace(PEOPLE, subtree), attributes=attrs), conn.result
    time.sleep(1.05)
    out = tmp_path / "out"
    pipeline = {
        "source": source(
            slapd,
            {"name": "people", "base": PEOPLE, "filter": "(objectClass=inetOrgPerson)"},
            {"name": "recent", "base": subtree, "filter": "(uid=*)"},
        ),
        "destination": {"adapter": "parquet", "path": str(out)},
    }
    plan = run_cli(
        "dcapix", "run", "-c", str(_write(tmp_path, pipeline)), "p", "--dry-run", cwd=tmp_path, env=ENV
    )
    assert plan.returncode == 0, plan.stderr
    assert f"{PEOPLE} sub (objectClass=inetOrgPerson)" in plan.stdout and ADMIN_PASSWORD not in plan.stdout
    first = dcapix_run(tmp_path, pipeline)
    assert stream_rows(first, "people") == N_PEOPLE and stream_rows(first, "recent") == 30
    people = parquet_rows(out, "people")
    assert len(people) == N_PEOPLE and len({r["dn"] for r in people}) == N_PEOPLE
    by_uid = {r["uid"][0]: r for r in people}
    for i in (0, 10, 21, 9999):
        dn, a = person(i)
        got = by_uid[a["uid"]]
        assert got["dn"] == dn and got["uidNumber"] == int(a["uidNumber"]) and got["cn"] == [a["cn"]]
        assert got["dcapixActive"] is (a["dcapixActive"] == "TRUE")
        assert got["dcapixBlob"] == a.get("dcapixBlob")
        assert sorted(got["mail"]) == sorted(a["mail"])
    # change two entries, add one; the second run moves exactly those
    for i in (4, 9):
        assert conn.modify(f"uid=user{i:06d},{subtree}", {"sn": [(ldap3.MODIFY_REPLACE, [f"New{i}"])]})
    dn, attrs = person(77)
    assert conn.add(dn.replace(PEOPLE, subtree), attributes=attrs)
    time.sleep(1.05)
    second = dcapix_run(tmp_path, pipeline)
    assert stream_rows(second, "recent") == 3
    assert stream_rows(second, "people") == 0  # 10,000 entries at the bookmark value, all listed
    recent = parquet_rows(out, "recent")
    assert len(recent) == 33
    newest = {r["uid"][0]: r["sn"] for r in recent if r["sn"][0].startswith("New")}
    assert newest == {"user000004": ["New4"], "user000009": ["New9"]}
    third = dcapix_run(tmp_path, pipeline)
    assert stream_rows(third, "recent") == 0
    conn.unbind()


def test_dcapix_run_ldap_to_ldap_upsert(slapd, empty_slapd, tmp_path):
    flt = "(|(uid=user0000*)(uid=user0001*)(uid=user0002*))"  # 300 people
    pipeline = {
        "source": source(slapd, {"name": "people", "base": PEOPLE, "filter": flt}, backend="python-ldap"),
        "destination": {**source(empty_slapd), "streams": [], "load_method": "upsert"},
    }
    first = dcapix_run(tmp_path, pipeline)
    assert stream_rows(first, "people") == 300
    conn = ldap3.Connection(empty_slapd.url, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    conn.search(PEOPLE, "(uid=*)", attributes=["*"])
    copied = {e["dn"]: e["raw_attributes"] for e in conn.response}
    assert len(copied) == 300
    dn, a = person(20)
    got = copied[dn]
    assert got["dcapixBlob"] == [a["dcapixBlob"]] and got["cn"] == [a["cn"].encode()]
    assert got["dcapixSince"] == [a["dcapixSince"].encode()]
    assert sorted(got["mail"]) == sorted(m.encode() for m in a["mail"])
    # nothing changed at the source: the second run moves nothing
    second = dcapix_run(tmp_path, pipeline)
    assert stream_rows(second, "people") == 0
    conn.unbind()


def test_tap_target_pipe_ldap_to_jsonl_then_ldap_to_ldap(slapd, subtree, empty_slapd, tmp_path):
    conn = ldap3.Connection(slapd.url, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    for i in range(50):
        dn, attrs = person(i)
        assert conn.add(dn.replace(PEOPLE, subtree), attributes=attrs), conn.result
    time.sleep(1.05)
    tap = {
        **source(slapd, {"name": "people", "base": subtree, "filter": "(uid=*)"}),
        "password": ADMIN_PASSWORD,
    }
    out = tmp_path / "jsonl"
    rc_tap, rc_tgt, states, tap_err, tgt_err = run_pipe(
        tmp_path / "p1", tap, {"adapter": "jsonl", "path": str(out)}
    )
    assert (rc_tap, rc_tgt) == (0, 0), tap_err[-2000:] + tgt_err[-2000:]
    lines = [json.loads(x) for p in sorted(out.rglob("*.jsonl*")) for x in p.read_text().splitlines()]
    assert len(lines) == 50
    by_uid = {r["uid"][0]: r for r in lines}
    dn, a = person(10)
    got = by_uid["user000010"]
    assert got["dn"] == dn.replace(PEOPLE, subtree)
    assert got["dcapixScore"] == int(a["dcapixScore"]) and got["dcapixActive"] is False
    assert got["dcapixSince"].startswith("2024-11-11T10:10:10")
    import base64

    assert base64.b64decode(got["dcapixBlob"]) == a["dcapixBlob"]
    state = states[-1]
    assert state["bookmarks"]["people"]["replication_key"] == "modifyTimestamp"

    # LDAP as the destination of the pipe: the same 50 entries into another server
    conn2 = ldap3.Connection(empty_slapd.url, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    ou = subtree.split(",")[0].split("=")[1]
    assert conn2.add(subtree, ["organizationalUnit"], {"ou": ou})
    target = {**source(empty_slapd), "streams": [], "password": ADMIN_PASSWORD, "load_method": "upsert"}
    rc_tap, rc_tgt, states2, tap_err, tgt_err = run_pipe(tmp_path / "p2", tap, target)
    assert (rc_tap, rc_tgt) == (0, 0), tap_err[-2000:] + tgt_err[-2000:]
    conn2.search(subtree, "(uid=*)", attributes=["*"])
    copied = {e["dn"]: e["raw_attributes"] for e in conn2.response}
    assert len(copied) == 50
    got = copied[dn.replace(PEOPLE, subtree)]
    assert got["dcapixBlob"] == [a["dcapixBlob"]] and got["dcapixSince"] == [a["dcapixSince"].encode()]
    assert got["cn"] == [a["cn"].encode()] and got["dcapixActive"] == [b"FALSE"]

    # a second incremental run of the pipe moves only the changed entry: the destination
    # rewrites (and so re-stamps) that entry alone
    def stamps():
        conn2.search(subtree, "(uid=*)", attributes=["entryCSN"])
        return {e["dn"]: e["raw_attributes"]["entryCSN"][0] for e in conn2.response}

    before = stamps()
    assert conn.modify(f"uid=user000005,{subtree}", {"sn": [(ldap3.MODIFY_REPLACE, ["Piped"])]})
    time.sleep(1.05)
    rc_tap, rc_tgt, _, tap_err, tgt_err = run_pipe(tmp_path / "p3", tap, target, state=states2[-1])
    assert (rc_tap, rc_tgt) == (0, 0), tap_err[-2000:] + tgt_err[-2000:]
    after = stamps()
    assert [d for d in after if after[d] != before[d]] == [f"uid=user000005,{subtree}"]
    conn2.search(f"uid=user000005,{subtree}", "(objectClass=*)", attributes=["sn"])
    assert conn2.response[0]["raw_attributes"]["sn"] == [b"Piped"]
    conn.unbind()
    conn2.unbind()
