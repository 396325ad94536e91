"""Fixtures of the LDAP plugin's tests: a real OpenLDAP slapd (10,000 people) per session.

The server is started from a throwaway config directory on 127.0.0.1 and an ``ldapi://`` socket
(:class:`dc_api_x_ldap.testing.Slapd`) and killed at the end. When slapd is not installed the
fixture runs ``.ci/start-slapd.sh`` (root: apt-get) and skips with a loud reason only when that
fails.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator

import pytest

pytest.importorskip(
    "dc_api_x_ldap",
    reason="!!! dc-api-x-ldap is not installed (pip install -e './plugins/ldap[python-ldap,ldaptor]', "
    "as .ci/run does) -- LDAP plugin tests SKIPPED",
)
from dc_api_x_ldap.testing import ADMIN_DN, ADMIN_PASSWORD, SUFFIX, Slapd
from ldap_support import N_GROUPS, N_PEOPLE, start_slapd


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slapd: needs the real OpenLDAP slapd started by the session fixture")
    from ldap_support import BACKENDS

    for name in sorted({"ldap3", "python-ldap", "ldaptor"} - set(BACKENDS)):
        warnings.warn(
            f"!!! the {name} client library is not installed: the LDAP tests of backend {name!r} are not run "
            f"(pip install -e './plugins/ldap[{name}]')",
            stacklevel=1,
        )
    from ldap_support import NATIVE

    if not NATIVE:
        warnings.warn(
            "!!! the native reader (dc_api_x_ldap._berpage) is not built: its tests are not run "
            "(reinstall plugins/ldap where gcc and the Python headers are present)",
            stacklevel=1,
        )


@pytest.fixture(autouse=True)
def _plugins_with_entry_points() -> Iterator[None]:
    """Each test uses a fresh current plugin set with the installed entry points (tests elsewhere
    in the suite leave a built-ins-only set current)."""
    import dc_api_x

    ps = dc_api_x.enable_plugins()
    try:
        yield
    finally:
        ps.close()


REFERRAL_LDIF = f"""dn: ou=elsewhere,{SUFFIX}
objectClass: referral
objectClass: extensibleObject
ou: elsewhere
ref: ldap://127.0.0.1:1/ou=elsewhere,{SUFFIX}

"""


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    """The session's slapd: 10,000 people under ou=people, 20 groups, a referral object."""
    srv = start_slapd(N_PEOPLE, groups=N_GROUPS, extra=REFERRAL_LDIF)
    # the directory's entries carry the second they were loaded in; a read that starts in that
    # second of the server's clock leaves them to the next run (the incremental boundary), so the
    # tests start one second later (a first run then bookmarks them all, as the tests expect)
    time.sleep(1.1)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def empty_slapd() -> Iterator[Slapd]:
    """A fresh slapd per test with only the suffix and ou=people (a destination)."""
    srv = start_slapd(0)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def subtree(slapd: Slapd) -> Iterator[str]:
    """A fresh organizational unit under the suffix (for tests that write), deleted afterwards."""
    import ldap3

    ou = f"t{uuid.uuid4().hex[:10]}"
    dn = f"ou={ou},{SUFFIX}"
    conn = ldap3.Connection(slapd.url, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    assert conn.add(dn, ["organizationalUnit"], {"ou": ou}), conn.result
    try:
        yield dn
    finally:
        conn.search(dn, "(objectClass=*)", attributes=["1.1"])
        for entry in sorted(conn.response or [], key=lambda e: -len(e["dn"])):
            conn.delete(entry["dn"])
        conn.unbind()
