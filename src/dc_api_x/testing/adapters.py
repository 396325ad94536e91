"""The standard adapter test suite: :func:`get_adapter_test_class`.

Point it at a registered adapter name and a config; it returns a pytest class whose tests check the
adapter contract of :mod:`dc_api_x.ext.adapters` the way dc-api-x uses it (through the registry,
like ``create_adapter``, ``dcapix run``, the tap and the target do):

==========================================  ====================================================
test                                        checks
==========================================  ====================================================
``test_created_through_the_registry``       ``create_adapter({"adapter": NAME, **config})`` works
``test_unknown_option_is_one_config_error`` an unknown option is a one-line ``ConfigError`` naming
                                            it (not silently accepted)
``test_close_is_idempotent``                ``close()`` twice, and as a context manager
``test_discover``                           streams with names and object schemas; the stream under
                                            test is among them
``test_unknown_stream_is_one_line``         ``get_stream(unknown)`` names the stream, one line
``test_read``                               ``Batch`` objects of dict records, the expected count,
                                            fields the schema declares
``test_read_limit``                         ``read(limit=n)`` yields at most ``n`` records
``test_pagination_contract``                the last batch of an incremental read carries a
                                            bookmark; resuming from a batch's bookmark yields
                                            exactly the records after it; over the
                                            request side, ``ApiClient.paginate`` yields every
                                            record once (``paginate=``)
``test_write_and_read_back``                adapters with ``load_methods``: write the records read,
                                            ``WriteResult.rows`` add up, reading back gives them
``test_errors_are_redacted``                ``error_config`` fails with one ``DcApiXError`` line
                                            that does not contain ``secret``
==========================================  ====================================================

A test that does not apply (a read-only adapter, a full-table stream, no ``error_config``) is
skipped with the reason — never passed silently.

The config, the write config and the error config are pytest fixtures (``adapter_config``,
``write_config``, ``error_config``) holding what was given; leave one out and define the fixture
yourself (in the module or a ``conftest.py``) when it needs other fixtures — a temporary
directory, a server started for the test::

    TestHttp = get_adapter_test_class("http", None, stream="items", expected_records=25)

    @pytest.fixture
    def adapter_config(http_server):
        return {"base_url": http_server.url, "streams": [{"name": "items", "path": "/items"}]}
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

__all__ = ["AdapterTestSuite", "get_adapter_test_class"]

#: The option name no adapter has.
UNKNOWN_OPTION = "dcapix_no_such_option"


def _jsonable(value: Any) -> Any:
    """A record value in its JSON form (dates ISO, decimals as text) so two adapters' values compare."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.hex()
    return value


def _sorted(records: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[Any]:
    rows = [_jsonable(dict(r)) for r in records]
    if keys:
        return sorted(rows, key=lambda r: json.dumps([r.get(k) for k in keys], default=str))
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


class AdapterTestSuite:
    """The tests; :func:`get_adapter_test_class` makes a subclass with the class attributes set."""

    #: the registered adapter name
    adapter: str = ""
    #: plugin objects to load besides the built-ins (modules, classes, instances)
    plugins: Sequence[Any] = ()
    #: also load the environment's entry-point plugins
    entry_points: bool = False
    #: the stream to read (``None``: the first discovered)
    stream: str | None = None
    #: how many records the stream holds (``None``: at least one)
    expected_records: int | None = None
    #: the name the write test writes to (``None``: ``<stream>_dcapix_test``)
    write_stream: str | None = None
    #: read back what was written (with the write config) and compare
    read_back: bool = True
    #: the load method the write test uses (``None``: ``append`` if offered, else the first)
    load_method: str | None = None
    #: a value of ``error_config`` that must not appear in the error
    secret: str | None = None
    #: ``{"path": ..., "paginator": {...}, "records_path": ..., "params": {...}}``: check
    #: ``ApiClient(adapter=NAME, adapter_options=config).paginate(...)``
    paginate: Mapping[str, Any] | None = None
    #: unknown options must be refused (``False``: the adapter takes any keyword on purpose)
    strict_options: bool = True

    # -- fixtures --------------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _dcapix_plugin_set(self) -> Iterator[Any]:
        from . import isolated_plugins

        with isolated_plugins(*self.plugins, entry_points=self.entry_points) as ps:
            yield ps

    @pytest.fixture
    def adapter_factory(self, adapter_config: Mapping[str, Any]) -> Iterator[Any]:
        """``make(**overrides)`` creates the adapter from the config; every one is closed after."""
        from dc_api_x import create_adapter

        made: list[Any] = []

        def make(config: Mapping[str, Any] | None = None, **overrides: Any) -> Any:
            cfg = dict(adapter_config if config is None else config)
            cfg.pop("adapter", None)
            adapter = create_adapter({"adapter": self.adapter, **cfg, **overrides})
            made.append(adapter)
            return adapter

        make.config = {k: v for k, v in adapter_config.items() if k != "adapter"}  # type: ignore[attr-defined]
        yield make
        for adapter in made:
            try:
                adapter.close()
            except Exception:  # a close() that is not idempotent fails test_close_is_idempotent
                pass

    def _stream(self, adapter: Any) -> Any:
        from dc_api_x.exceptions import NotSupportedError

        try:
            streams = list(adapter.discover())
        except NotSupportedError as exc:
            pytest.skip(f"adapter {self.adapter!r} does not discover streams: {exc}")
        if self.stream is None:
            assert streams, f"adapter {self.adapter!r} discovered no stream"
            return streams[0]
        by_name = {s.name: s for s in streams}
        assert self.stream in by_name, f"stream {self.stream!r} not discovered; found {sorted(by_name)}"
        return by_name[self.stream]

    def _read_all(self, adapter: Any, spec: Any, **kwargs: Any) -> list[Any]:
        from dc_api_x.exceptions import NotSupportedError

        try:
            return list(adapter.read(spec, **kwargs))
        except NotSupportedError as exc:
            pytest.skip(f"adapter {self.adapter!r} does not read: {exc}")

    # -- construction and lifecycle ----------------------------------------------------------------
    def test_created_through_the_registry(self, adapter_factory: Any, _dcapix_plugin_set: Any) -> None:
        assert self.adapter in _dcapix_plugin_set.adapters, f"no adapter {self.adapter!r} is registered"
        first, second = adapter_factory(), adapter_factory()
        assert first is not second

    def test_unknown_option_is_one_config_error(self, adapter_factory: Any) -> None:
        from dc_api_x.exceptions import ConfigError

        if not self.strict_options:
            pytest.skip(f"adapter {self.adapter!r} is declared to accept any option (strict_options=False)")
        with pytest.raises(ConfigError) as ei:
            adapter_factory(**{UNKNOWN_OPTION: 1})
        message = str(ei.value)
        assert UNKNOWN_OPTION in message and self.adapter in message and "\n" not in message, message

    def test_close_is_idempotent(self, adapter_factory: Any) -> None:
        adapter = adapter_factory()
        adapter.close()
        adapter.close()
        with adapter_factory() as again:
            pass
        again.close()

    # -- reading ------------------------------------------------------------------------------------
    def test_discover(self, adapter_factory: Any) -> None:
        adapter = adapter_factory()
        spec = self._stream(adapter)
        for s in adapter.discover():
            assert isinstance(s.name, str) and s.name
            assert isinstance(s.schema, Mapping) and s.schema.get("type") in ("object", ["object"], None)
        assert spec.name == (self.stream or spec.name)

    def test_unknown_stream_is_one_line(self, adapter_factory: Any) -> None:
        from dc_api_x.exceptions import DcApiXError

        adapter = adapter_factory()
        if not hasattr(adapter, "get_stream"):
            pytest.skip(f"adapter {self.adapter!r} has no get_stream()")
        self._stream(adapter)
        with pytest.raises(DcApiXError) as ei:
            adapter.get_stream("dcapix_no_such_stream")
        assert "dcapix_no_such_stream" in str(ei.value) and "\n" not in str(ei.value)

    def test_read(self, adapter_factory: Any) -> None:
        from dc_api_x.types import Batch

        adapter = adapter_factory()
        spec = self._stream(adapter)
        batches = self._read_all(adapter, spec)
        assert all(isinstance(b, Batch) for b in batches)
        records = [r for b in batches for r in b.records]
        assert all(isinstance(r, Mapping) for r in records)
        if self.expected_records is None:
            assert records, f"stream {spec.name!r} yielded no record"
        else:
            assert len(records) == self.expected_records
        declared = set(spec.properties)
        if declared:
            extra = {k for r in records for k in r} - declared
            assert not extra, f"fields the schema of {spec.name!r} does not declare: {sorted(extra)}"

    def test_read_limit(self, adapter_factory: Any) -> None:
        adapter = adapter_factory()
        spec = self._stream(adapter)
        total = sum(len(b) for b in self._read_all(adapter, spec))
        if total < 2:
            pytest.skip("the stream holds fewer than two records")
        n = min(total - 1, 3)
        got = sum(len(b) for b in self._read_all(adapter_factory(), spec, limit=n))
        assert got <= n, f"read(limit={n}) yielded {got} records"

    def test_pagination_contract(self, adapter_factory: Any) -> None:
        if self.paginate is not None:
            self._check_request_pagination(adapter_factory)
            return
        adapter = adapter_factory()
        spec = self._stream(adapter)
        if not spec.replication_key:
            pytest.skip(f"stream {spec.name!r} is full-table (no bookmark to resume from)")
        batches = self._read_all(adapter, spec)
        rows = [[_jsonable(dict(r)) for r in b.records] for b in batches]
        marked = [i for i, b in enumerate(batches) if b.bookmark is not None]
        assert marked, f"incremental stream {spec.name!r}: no batch carries a bookmark"
        assert marked[-1] == len(batches) - 1, "the last batch of an incremental read must carry the bookmark"
        keys = list(spec.key_properties)
        for i in sorted({marked[0], marked[len(marked) // 2], marked[-1]}):
            bookmark = batches[i].bookmark
            rest = [r for b in self._read_all(adapter_factory(), spec, state=bookmark) for r in b.records]
            expected = [r for chunk in rows[i + 1 :] for r in chunk]
            assert _sorted(rest, keys) == _sorted(expected, keys), (
                f"resuming after batch {i} of {len(batches)} (bookmark {bookmark}) "
                "did not give exactly the rest"
            )

    def _check_request_pagination(self, adapter_factory: Any) -> None:
        from dc_api_x import ApiClient

        spec = dict(self.paginate or {})
        with ApiClient(adapter=self.adapter, adapter_options=adapter_factory.config, hooks=[]) as api:
            records = list(
                api.paginate(
                    spec.get("path", ""),
                    paginator=spec.get("paginator"),
                    records_path=spec.get("records_path", ""),
                    params=spec.get("params"),
                )
            )
        keyed = [json.dumps(_jsonable(r), sort_keys=True, default=str) for r in records]
        assert len(set(keyed)) == len(keyed), "paginate() yielded a record twice"
        if self.expected_records is not None:
            assert len(records) == self.expected_records

    # -- writing ------------------------------------------------------------------------------------
    def test_write_and_read_back(self, adapter_factory: Any, request: Any) -> None:
        write_config = _optional_fixture(request, "write_config")
        source = adapter_factory()
        methods = tuple(getattr(source, "load_methods", ()) or ())
        if not methods:
            pytest.skip(f"adapter {self.adapter!r} does not write (no load_methods)")
        spec = self._stream(source)
        batches = self._read_all(source, spec)
        records = [r for b in batches for r in b.records]
        name = self.write_stream or f"{spec.name}_dcapix_test"
        out_spec = spec.with_(name=name)
        method = self.load_method or ("append" if "append" in methods else methods[0])
        dest = adapter_factory(write_config) if write_config is not None else adapter_factory()
        dest.start_write(out_spec, load_method=method)
        written = 0
        for b in batches:
            written += dest.write(out_spec, b).rows
        dest.flush(out_spec)
        dest.finish_write(out_spec)
        assert written == len(records), f"WriteResult rows add up to {written}, {len(records)} were written"
        dest.close()
        if not self.read_back:
            return
        reader = adapter_factory(write_config) if write_config is not None else adapter_factory()
        back_spec = {s.name: s for s in reader.discover()}.get(name)
        assert back_spec is not None, f"the written stream {name!r} is not discovered when reading back"
        back = [r for b in reader.read(back_spec) for r in b.records]
        keys = list(spec.key_properties)
        assert _sorted(back, keys) == _sorted(records, keys)

    # -- errors -------------------------------------------------------------------------------------
    def test_errors_are_redacted(self, adapter_factory: Any, request: Any) -> None:
        from dc_api_x.exceptions import DcApiXError

        error_config = _optional_fixture(request, "error_config")
        if error_config is None:
            pytest.skip("no error_config given (a config that must fail, holding a secret)")
        with pytest.raises(DcApiXError) as ei:
            adapter = adapter_factory(error_config)
            spec = self._stream(adapter)
            for _ in adapter.read(spec, limit=1):
                pass
        message = str(ei.value)
        assert "\n" not in message, f"not one line: {message!r}"
        if self.secret:
            assert self.secret not in message, f"the secret leaks: {message}"
            from dc_api_x.logs import redact

            assert self.secret not in redact(repr(ei.value))


def _optional_fixture(request: Any, name: str) -> Any:
    """The value of fixture ``name``, or ``None`` when nobody defines it."""
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        return None


def get_adapter_test_class(
    adapter: str,
    config: Mapping[str, Any] | None = None,
    *,
    plugins: Sequence[Any] = (),
    entry_points: bool = False,
    stream: str | None = None,
    expected_records: int | None = None,
    write_config: Mapping[str, Any] | None = None,
    write_stream: str | None = None,
    read_back: bool = True,
    load_method: str | None = None,
    error_config: Mapping[str, Any] | None = None,
    secret: str | None = None,
    paginate: Mapping[str, Any] | None = None,
    strict_options: bool = True,
    base_class: type = AdapterTestSuite,
) -> type:
    """A pytest test class (assign it to a ``Test*`` name) running the standard adapter tests.

    :param adapter: the registered adapter name.
    :param config: its options (without ``adapter``); ``None``: the module defines an
        ``adapter_config`` fixture instead.
    :param plugins: plugin objects to load besides the built-ins (no entry points unless
        ``entry_points``).
    :param stream: the stream to read (default: the first discovered).
    :param expected_records: the number of records the stream holds.
    :param write_config: the options of the adapter written to (default: ``config``); ``None`` and a
        ``write_config`` fixture work as for ``config``.
    :param write_stream: the stream name written to (default ``<stream>_dcapix_test``).
    :param read_back: read what was written back (with the write config) and compare.
    :param error_config: options that must fail (at creation, discovery or read).
    :param secret: a value inside ``error_config`` that must not appear in the error.
    :param paginate: check ``ApiClient.paginate`` (``path``, ``paginator``, ``records_path``,
        ``params``) instead of resuming from bookmarks.
    :param strict_options: an unknown option must be a ``ConfigError`` (``False``: skip that test,
        for adapters taking any keyword on purpose).
    """
    namespace: dict[str, Any] = {
        "adapter": adapter,
        "plugins": tuple(plugins),
        "entry_points": entry_points,
        "stream": stream,
        "expected_records": expected_records,
        "write_stream": write_stream,
        "read_back": read_back,
        "load_method": load_method,
        "secret": secret,
        "paginate": paginate,
        "strict_options": strict_options,
    }
    given = {"adapter_config": config, "write_config": write_config, "error_config": error_config}
    for fixture_name, value in given.items():
        if value is not None:  # else the module or a conftest.py may define the fixture
            namespace[fixture_name] = _constant_fixture(fixture_name, value)
    return type(f"Test_{adapter}_adapter", (base_class,), namespace)


def _constant_fixture(name: str, value: Any) -> Any:
    def fixture(self: Any) -> Any:
        return dict(value)

    fixture.__name__ = name
    return pytest.fixture(name=name)(fixture)
