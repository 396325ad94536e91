"""The ``ldap`` adapter: LDAP v3 directories as streams (source) and as a sink, on three clients.

Streams are search bases + filters (``streams:``; default: one per naming context), read page by
page with the simple paged results control (RFC 2696). Their JSON Schema comes from the server's
subschema (:mod:`dc_api_x_ldap.schema`); the key is ``dn``; incremental streams use
``modifyTimestamp`` (or ``entryCSN``) with the toolkit's boundary bookmark
(:class:`dc_api_x.bookmarks.BoundaryBookmark`), see :meth:`LdapAdapter.read`. As a sink it adds
entries (``append``) or adds-or-replaces them by DN (``upsert``). The request side serves
``ApiClient``: GET searches, POST adds, PUT upserts, PATCH modifies, DELETE deletes and EXTENDED
runs an extended operation.

One concept per module, put together here:

* :mod:`.base` — the backend, root DSE, subschema and LDAP errors as the toolkit's errors;
* :mod:`.streams` — schema mapping: the streams and their JSON Schema (``discover``);
* :mod:`.source` — paged, incremental reads (``read``);
* :mod:`.sink` — writes (``start_write`` / ``write`` / ``finish_write``);
* :mod:`.operations` — the request side (``request``);
* :mod:`.ldif_io` — LDIF export and import;
* :mod:`.backends` — the three LDAP clients behind one interface.

This module imports no LDAP library: the backend named by ``backend:`` is loaded on construction.
"""

from __future__ import annotations

from .ldif_io import LdapLdif
from .operations import LdapOperations
from .sink import LdapSink
from .source import LdapSource
from .streams import LdapStreams

__all__ = ["LdapAdapter"]


class LdapAdapter(LdapStreams, LdapSource, LdapSink, LdapOperations, LdapLdif):
    """An LDAP v3 directory through ldap3, python-ldap or ldaptor (``backend:``)."""
