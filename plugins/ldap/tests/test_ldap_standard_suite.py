"""The toolkit's standard adapter test suite (``dc_api_x.testing``) against the real slapd.

Two classes, because an LDAP directory writes its own operational attributes: the reading class
uses an incremental stream (``modifyTimestamp``: the pagination contract applies), the writing class
a stream of user attributes only, written into a second, empty slapd and read back from it.
"""

from __future__ import annotations

import pytest

testing = pytest.importorskip(
    "dc_api_x.testing", reason="dc_api_x.testing (the standard adapter suite) is not in this core yet"
)

import dc_api_x_ldap  # noqa: E402
from dc_api_x_ldap.testing import ADMIN_DN, ADMIN_PASSWORD  # noqa: E402
from ldap_support import BACKENDS, PEOPLE  # noqa: E402

pytestmark = pytest.mark.slapd

FILTER = "(uid=user0000*)"  # 100 people, loaded at the start of the session
USER_ATTRIBUTES = ["objectClass", "uid", "cn", "sn", "givenName", "mail", "uidNumber", "gidNumber",
                   "homeDirectory", "dcapixActive", "dcapixScore", "dcapixSince", "dcapixBlob",
                   "dcapixTag", "dcapixCounts", "telephoneNumber", "description"]  # fmt: skip


def _config(srv, backend, stream):
    return {
        "url": srv.url,
        "backend": backend,
        "bind_dn": ADMIN_DN,
        "password": ADMIN_PASSWORD,
        "streams": [stream],
    }


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


TestLdapReading = testing.get_adapter_test_class(
    "ldap",
    plugins=[dc_api_x_ldap],
    stream="people",
    expected_records=100,
    secret="not-the-password-123",
    write_stream="people_copy",
    read_back=False,  # its records hold operational attributes the destination sets anew
)


@pytest.fixture
def adapter_config(request, slapd, backend):
    stream = {"name": "people", "base": PEOPLE, "filter": FILTER}
    if request.cls is TestLdapWriting:
        stream = {**stream, "attributes": USER_ATTRIBUTES, "replication_key": None}
    return _config(slapd, backend, stream)


@pytest.fixture
def error_config(slapd, backend):
    return {**_config(slapd, backend, {"name": "people", "base": PEOPLE}), "password": "not-the-password-123"}


TestLdapWriting = testing.get_adapter_test_class(
    "ldap", plugins=[dc_api_x_ldap], stream="people", expected_records=100, write_stream="people_copy"
)


@pytest.fixture
def write_config(empty_slapd, backend):
    stream = {"name": "people_copy", "base": PEOPLE, "filter": FILTER, "attributes": USER_ATTRIBUTES,
              "replication_key": None}  # fmt: skip
    return _config(empty_slapd, backend, stream)
