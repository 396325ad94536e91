"""The read begun ahead (dc_api_x_ldap.ahead, ``LdapAdapter.open_ahead``): taken by the adapter the
run creates with the same options, it gives exactly what a read without it gives (same table, same
bookmark, one paged search instead of two); a read it does not fit (a bookmark in the state, a
column selection) cancels it and reads exactly as before; what nobody takes is closed."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest
from ldap_support import NATIVE, PEOPLE, admin_config

from dc_api_x import create_adapter

pytestmark = [
    pytest.mark.skipif(not NATIVE, reason="!!! the native reader (dc_api_x_ldap._berpage) is not built"),
    pytest.mark.slapd,
]

CLASSES = ["inetOrgPerson", "posixAccount", "dcapixRecord"]
STREAM = {
    "name": "people",
    "base": PEOPLE,
    "filter": "(objectClass=inetOrgPerson)",
    "page_size": 700,
    "object_classes": CLASSES,
}


def _config(slapd, **more):
    return admin_config(slapd, "python-ldap", streams=[STREAM], **more)


def _read(adapter, spec, **kw):
    batches = list(adapter.read(spec, **kw))
    table = pa.concat_tables([b.to_arrow() for b in batches]).combine_chunks()
    return table, batches[-1].bookmark


@pytest.fixture
def searches(monkeypatch):
    """The paged searches the native reader sends (their filters)."""
    from dc_api_x_ldap.native import NativeReader

    sent: list[str] = []
    orig = NativeReader.paged_columns

    def counting(self, base, scope, filter, *a, **kw):
        sent.append(filter)
        return orig(self, base, scope, filter, *a, **kw)

    monkeypatch.setattr(NativeReader, "paged_columns", counting)
    return sent


def _ahead_adapter(slapd, **more):
    from dc_api_x_ldap.adapter import LdapAdapter

    cfg = _config(slapd, **more)
    close = LdapAdapter.open_ahead(cfg)
    assert close is not None
    return close, create_adapter(cfg)


def test_read_ahead_taken_equals_a_plain_read(slapd, searches):
    time.sleep(1.1)  # (the directory's entries a second behind the server's clock: one bookmark)
    with create_adapter(_config(slapd)) as plain:
        want, want_bm = _read(plain, plain.get_stream("people"))
    assert len(searches) == 1
    close, a = _ahead_adapter(slapd)
    try:
        assert a._specs_ahead is not None and a._ahead_read is not None  # taken over
        specs = a.discover()
        assert [s.name for s in specs] == ["people"]
        assert specs[0].schema == plain.get_stream("people").schema
        got, got_bm = _read(a, specs[0])
        assert a._ahead_read is None
    finally:
        a.close()
        close()
    assert len(searches) == 2  # the plain read's and the one begun ahead: no second search
    assert got.num_rows == 10_000 and got.equals(want)
    assert got_bm == want_bm


def test_read_ahead_with_a_bookmark_is_cancelled_and_reads_exactly(slapd, searches):
    time.sleep(1.1)
    with create_adapter(_config(slapd)) as plain:
        spec = plain.get_stream("people")
        _, bm = _read(plain, spec)
        # the incremental read without a head start: nothing new
        want = list(plain.read(spec, state=bm))
    close, a = _ahead_adapter(slapd)
    try:
        spec = a.discover()[0]
        batches = list(a.read(spec, state=bm))  # not the search begun ahead: cancelled
        # and the adapter's connection serves a read afterwards
        again, _ = _read(a, spec)
    finally:
        a.close()
        close()
    assert sum(len(b) for b in batches) == sum(len(b) for b in want) == 0
    assert [b.bookmark for b in batches] == [b.bookmark for b in want]
    assert again.num_rows == 10_000
    assert searches[0] == searches[2] == STREAM["filter"]  # the plain read, the one ahead, the last
    assert searches[1].startswith("(&") and searches[3].startswith("(&")  # the two incremental reads
    assert len(searches) == 5


def test_read_ahead_with_selected_columns_is_cancelled(slapd, searches):
    close, a = _ahead_adapter(slapd)
    try:
        spec = a.discover()[0]
        table, _ = _read(a, spec, columns=["uid", "mail"])
    finally:
        a.close()
        close()
    assert table.column_names == ["dn", "uid", "mail", "modifyTimestamp"]
    assert table.num_rows == 10_000
    assert len(searches) == 2


def test_read_ahead_nobody_takes_is_closed(slapd):
    from dc_api_x_ldap import ahead
    from dc_api_x_ldap.adapter import LdapAdapter

    close = LdapAdapter.open_ahead(_config(slapd))
    assert close is not None
    pending = list(ahead._pending)
    assert len(pending) == 1
    pending[0].thread.join()
    sock = pending[0].adapter._native.sock
    close()
    assert not ahead._pending
    assert pending[0].adapter._native is None or pending[0].adapter._native.sock is None
    assert sock.fileno() == -1  # the connection was closed (the server ends the search)
    # other options: not taken by an adapter with them
    close = LdapAdapter.open_ahead(_config(slapd))
    with create_adapter(_config(slapd, page_size=999)) as other:
        assert other._ahead_read is None and other._specs_ahead is None
    close()


@pytest.mark.parametrize(
    "more",
    [
        {"streams": [{**STREAM, "object_classes": None}]},  # discovery scans the directory first
        {"reader": "backend"},
        {"streams": []},
    ],
)
def test_no_read_ahead_where_it_cannot_be_known(slapd, more):
    from dc_api_x_ldap.adapter import LdapAdapter

    assert LdapAdapter.open_ahead({**_config(slapd), **more}) is None
    assert LdapAdapter.open_ahead({**_config(slapd), "timeout": "not a number"}) is None
    assert LdapAdapter.open_ahead(_config(slapd), role="destination") is None  # it reads nothing


@pytest.mark.parametrize("classes", [CLASSES, ["inetOrgPerson"]])
def test_native_asks_for_star_and_drops_other_classes_attributes(slapd, monkeypatch, classes):
    """Streams with their object classes given: the native reader asks for ``*`` + the operational
    attributes (the server matches an entry's attributes against ~60 names otherwise), and what
    an entry holds of another class (posixAccount's, dcapixRecord's with ["inetOrgPerson"]) is
    left out, exactly as the backend's read sending the list gets it."""
    from dc_api_x_ldap.native import NativeReader

    asked: list[list[str]] = []
    orig = NativeReader.paged_columns

    def spy(self, base, scope, filter, attributes, *a, **kw):
        asked.append(list(attributes))
        return orig(self, base, scope, filter, attributes, *a, **kw)

    monkeypatch.setattr(NativeReader, "paged_columns", spy)
    time.sleep(1.1)
    stream = {**STREAM, "object_classes": classes}
    tables = {}
    for reader in ("native", "backend"):
        cfg = admin_config(slapd, "python-ldap", streams=[stream], reader=reader)
        with create_adapter(cfg) as a:
            tables[reader] = _read(a, a.get_stream("people"))
    assert asked == [["*", "entryUUID", "createTimestamp", "modifyTimestamp", "entryCSN"]]
    (native, nbm), (backend, bbm) = tables["native"], tables["backend"]
    assert native.num_rows == 10_000
    assert native.equals(backend) and nbm == bbm
    assert ("uidNumber" in native.column_names) == (classes == CLASSES)


def test_runner_takes_the_read_ahead_and_the_incremental_run_cancels_it(slapd, tmp_path, searches):
    """What ``dcapix run`` does where the core calls ``open_ahead`` (with the endpoint's options)
    before it creates the source: the run's adapter takes the read begun ahead (one paged search
    in all), exact rows to Parquet and the bookmark stored; the next run, with that bookmark in its
    state, cancels the search begun ahead and moves no row."""
    import pyarrow.parquet as pq
    from dc_api_x_ldap.adapter import LdapAdapter

    from dc_api_x.runner.config import PipelineConfig
    from dc_api_x.runner.pipeline import Runner
    from dc_api_x.runner.state import SQLiteStateStore

    time.sleep(1.1)
    store = SQLiteStateStore(tmp_path / "state.db")
    rows = []
    for run in range(2):
        cfg = PipelineConfig.model_validate(
            {
                "source": _config(slapd),
                "destination": {"adapter": "parquet", "path": str(tmp_path / f"out{run}")},
            }
        )
        close = LdapAdapter.open_ahead(cfg.source.adapter_config())
        assert close is not None
        try:
            metrics = Runner("ahead", cfg, store).run()
        finally:
            close()
        rows.append(metrics.stream("people").rows)
        if run == 0:
            files = list((tmp_path / "out0").rglob("*.parquet"))
            table = pq.read_table(files[0])
            assert table.num_rows == 10_000 and table.column("dn").null_count == 0
            assert len(set(table.column("dn").to_pylist())) == 10_000
    assert rows == [10_000, 0]
    assert store.get("ahead", "people") is not None
    # run 1: the search begun ahead, taken; run 2: the one begun ahead (cancelled), the incremental
    assert len(searches) == 3 and searches[0] == searches[1] == STREAM["filter"]
    assert searches[2].startswith("(&")
    store.close()
