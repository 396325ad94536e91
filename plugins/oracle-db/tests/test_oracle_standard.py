"""The standard adapter test suite of dc-api-x (``dc_api_x.testing``) on the ``oracle_db`` adapter:
the tests that need no server run (creation through the registry, unknown options, ``close()``,
errors redacted against a port nobody listens on); the ones that read or write a database are
skipped with the reason — no Oracle Database can be installed here, and none is faked."""

from __future__ import annotations

from typing import Any

import pytest

testing = pytest.importorskip(
    "dc_api_x.testing", reason="!!! dc_api_x.testing (the standard adapter suite) is not in this dc-api-x"
)

import dc_api_x_oracle_db  # noqa: E402

SECRET = "s3cret-tiger-not-logged"
CONFIG = {"url": "oracle+oracledb://scott:tiger@127.0.0.1:1/?service_name=FREEPDB1", "streams": ["orders"]}
ERROR_CONFIG = {**CONFIG, "url": f"oracle+oracledb://scott:{SECRET}@127.0.0.1:1/?service_name=FREEPDB1"}
NO_SERVER = "!!! needs a live Oracle Database: none can be installed here (see plugins/oracle-db/README.md)"

_Suite: Any = testing.get_adapter_test_class(
    "oracle_db",
    CONFIG,
    plugins=[dc_api_x_oracle_db],
    stream="orders",
    error_config=ERROR_CONFIG,
    secret=SECRET,
)


class TestOracleAdapterWithoutServer(_Suite):  # type: ignore[misc,valid-type]
    @pytest.mark.skip(reason=NO_SERVER)
    def test_discover(self) -> None: ...

    @pytest.mark.skip(reason=NO_SERVER)
    def test_unknown_stream_is_one_line(self) -> None: ...

    @pytest.mark.skip(reason=NO_SERVER)
    def test_read(self) -> None: ...

    @pytest.mark.skip(reason=NO_SERVER)
    def test_read_limit(self) -> None: ...

    @pytest.mark.skip(reason=NO_SERVER)
    def test_pagination_contract(self) -> None: ...

    @pytest.mark.skip(reason=NO_SERVER)
    def test_write_and_read_back(self) -> None: ...
