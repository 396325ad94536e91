"""The small interface each LDAP client library implements (``backend:`` of the adapter).

A backend connects and binds, reads the root DSE and the subschema, runs searches — the stream
reads page by page with the simple paged results control (RFC 2696) — and applies writes. Entries
are exchanged raw, as ``(dn, {attribute: [bytes, ...]})``, so the conversion to Arrow/JSON is
shared (:mod:`dc_api_x_ldap.schema`). The backends are imported by name on first use
(:func:`load_backend`), so only the chosen client library is ever imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    from ..config import LdapOptions
    from ..schema import SubSchema

__all__ = [
    "AUTH_METHODS",
    "BACKEND_MODULES",
    "Backend",
    "Change",
    "Control",
    "Entry",
    "LdapError",
    "RESULT_NAMES",
    "SCOPES",
    "WriteOp",
    "load_backend",
    "missing_library",
]

#: one entry: its DN and its attributes' raw values
Entry = tuple[str, dict[str, list[bytes]]]
#: a server control: (OID, criticality, BER value or None)
Control = tuple[str, bool, bytes | None]

SCOPES = {"base": 0, "one": 1, "sub": 2}
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
WHOAMI_OID = "1.3.6.1.4.1.4203.1.11.3"
PASSWD_OID = "1.3.6.1.4.1.4203.1.11.1"

#: backend name → "module:Class" (the module imports the client library)
BACKEND_MODULES = {
    "ldap3": ("dc_api_x_ldap.backends._ldap3", "Ldap3Backend", "ldap3"),
    "python-ldap": ("dc_api_x_ldap.backends._python_ldap", "PythonLdapBackend", "ldap"),
    "ldaptor": ("dc_api_x_ldap.backends._ldaptor", "LdaptorBackend", "ldaptor"),
}

#: backend name → the auth methods it supports (its class's ``auth_methods``), known without
#: importing the client library
AUTH_METHODS = {
    "ldap3": frozenset({"anonymous", "simple", "sasl_external", "ntlm"}),
    "python-ldap": frozenset({"anonymous", "simple", "sasl_external"}),
    "ldaptor": frozenset({"anonymous", "simple", "sasl_external"}),
}

#: LDAP result codes (RFC 4511 and the usual client-side codes) → names
RESULT_NAMES = {
    0: "success",
    1: "operationsError",
    2: "protocolError",
    3: "timeLimitExceeded",
    4: "sizeLimitExceeded",
    7: "authMethodNotSupported",
    8: "strongerAuthRequired",
    10: "referral",
    11: "adminLimitExceeded",
    12: "unavailableCriticalExtension",
    13: "confidentialityRequired",
    14: "saslBindInProgress",
    16: "noSuchAttribute",
    17: "undefinedAttributeType",
    18: "inappropriateMatching",
    19: "constraintViolation",
    20: "attributeOrValueExists",
    21: "invalidAttributeSyntax",
    32: "noSuchObject",
    33: "aliasProblem",
    34: "invalidDNSyntax",
    36: "aliasDereferencingProblem",
    48: "inappropriateAuthentication",
    49: "invalidCredentials",
    50: "insufficientAccessRights",
    51: "busy",
    52: "unavailable",
    53: "unwillingToPerform",
    54: "loopDetect",
    64: "namingViolation",
    65: "objectClassViolation",
    66: "notAllowedOnNonLeaf",
    67: "notAllowedOnRDN",
    68: "entryAlreadyExists",
    69: "objectClassModsProhibited",
    71: "affectsMultipleDSAs",
    80: "other",
    81: "serverDown",
    82: "localError",
    84: "decodingError",
    85: "timeout",
    86: "authUnknown",
    87: "filterError",
    91: "connectError",
}

ALREADY_EXISTS = 68
NO_SUCH_OBJECT = 32


class LdapError(Exception):
    """An LDAP operation failed: ``code`` (result code, ``-1`` when unknown), ``message`` (the
    server's diagnostic), ``dn`` (the entry it concerns, if any)."""

    def __init__(self, code: int, message: str = "", *, dn: str | None = None, what: str = "") -> None:
        self.code = code
        self.message = " ".join(str(message or "").split())
        self.dn = dn
        self.what = what
        super().__init__(self.describe())

    @property
    def name(self) -> str:
        return RESULT_NAMES.get(self.code, f"result {self.code}")

    def describe(self) -> str:
        text = f"{self.what + ': ' if self.what else ''}{self.name} ({self.code})"
        if self.message:
            text += f": {self.message}"
        if self.dn:
            text += f" [dn {self.dn!r}]"
        return text


@dataclass
class Change:
    """One modification of an attribute: ``op`` is add, delete or replace."""

    op: str
    attribute: str
    values: list[bytes] = field(default_factory=list)


@dataclass
class WriteOp:
    """An add (``attributes``), a modify (``changes``) or a delete of ``dn``."""

    kind: str
    dn: str
    attributes: dict[str, list[bytes]] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)


class Backend:
    """Base of the client-library backends. Subclasses set :attr:`name`, :attr:`library` and
    :attr:`features` and implement the methods below; a feature the library lacks raises
    :class:`NotImplementedError` with a sentence saying so."""

    name: ClassVar[str] = ""
    #: the import name of the client library
    library: ClassVar[str] = ""
    #: what the backend offers beyond the common operations (shown in errors and the README)
    features: ClassVar[frozenset[str]] = frozenset()
    #: auth methods the backend supports
    auth_methods: ClassVar[frozenset[str]] = frozenset({"anonymous", "simple"})
    #: ``paged_search(..., ahead=True)`` sends the request for page N+1 before it yields page N
    #: (the library sends requests without waiting): the server prepares the next page while the
    #: reader converts this one, with no thread in the client
    pages_ahead: ClassVar[bool] = False

    def __init__(self, options: LdapOptions) -> None:
        self.options = options

    # -- session ----------------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the connection and bind (``LdapError`` naming the failure)."""
        raise NotImplementedError

    def close(self) -> None:
        """Unbind and close; safe to call twice."""

    # -- reading ----------------------------------------------------------------------------------
    def search(
        self,
        base: str,
        scope: str,
        filter: str,
        attributes: Sequence[str] | None,
        *,
        controls: Sequence[Control] = (),
    ) -> list[Entry]:
        """One search, all results at once (small reads: root DSE, schema, one entry)."""
        raise NotImplementedError

    def paged_search(
        self,
        base: str,
        scope: str,
        filter: str,
        attributes: Sequence[str] | None,
        page_size: int,
        *,
        controls: Sequence[Control] = (),
        ahead: bool = False,
    ) -> Generator[list[Entry], None, None]:
        """The pages of a search with the simple paged results control; closing the generator
        early abandons the paged search on the server (size 0 with the cookie). ``ahead`` asks
        for the next page before yielding this one where the backend can (:attr:`pages_ahead`)."""
        raise NotImplementedError

    def root_dse(self) -> dict[str, list[bytes]]:
        found = self.search("", "base", "(objectClass=*)", ["*", "+"])
        return found[0][1] if found else {}

    def subschema(self, dn: str) -> SubSchema:
        """The subschema subentry ``dn`` parsed with the client library's own schema parser."""
        raise NotImplementedError

    # -- writing ----------------------------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp]) -> list[LdapError | None]:
        """Apply ``ops`` (pipelined where the library can), in order; one result per op."""
        raise NotImplementedError

    # -- extended operations ----------------------------------------------------------------------
    def extended(self, oid: str, value: bytes | None = None) -> tuple[str | None, bytes | None]:
        """An extended operation (RFC 4511 §4.12): ``(responseName, responseValue)``."""
        raise NotImplementedError

    def whoami(self) -> str:
        """The authorization identity (RFC 4532), e.g. ``dn:cn=admin,dc=example,dc=com``."""
        _, value = self.extended(WHOAMI_OID)
        return (value or b"").decode("utf-8")

    def password_modify(self, user: str | None, old: str | None, new: str | None) -> str | None:
        """RFC 3062 password modify; returns the generated password when ``new`` is ``None``."""
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------------
    def unsupported(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"backend {self.name!r} ({self.library}) does not support {what}")


def missing_library(name: str) -> str | None:
    """Why backend ``name`` cannot be loaded (its client library is not installed), or ``None``;
    checked without importing the library."""
    from importlib.util import find_spec

    try:
        library = BACKEND_MODULES[name][2]
    except KeyError:
        return f"unknown backend {name!r}; valid: {', '.join(BACKEND_MODULES)}"
    try:
        found = find_spec(library) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    return (
        f"backend {name!r} needs the {library!r} library, which is not installed "
        f"(No module named {library!r}): pip install 'dc-api-x-ldap[{name}]'"
    )


def load_backend(name: str) -> type[Backend]:
    """The backend class called ``name``; a missing client library raises ``ImportError`` naming
    the extra to install."""
    try:
        module, attr, library = BACKEND_MODULES[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; valid: {', '.join(BACKEND_MODULES)}") from None
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or library
        raise ImportError(
            f"backend {name!r} needs the {library!r} library, which is not installed "
            f"(No module named {missing!r}): pip install 'dc-api-x-ldap[{name}]'",
            name=missing,
        ) from exc
    cls: type[Backend] = getattr(mod, attr)
    return cls


def first(attrs: Mapping[str, Sequence[bytes]], name: str) -> str | None:
    """The first value of ``name`` in raw attributes (case-insensitive), decoded."""
    for key, vals in attrs.items():
        if key.lower() == name.lower() and vals:
            return bytes(vals[0]).decode("utf-8")
    return None


def values(attrs: Mapping[str, Sequence[bytes]], name: str) -> list[str]:
    """All values of ``name`` in raw attributes (case-insensitive), decoded."""
    out: list[str] = []
    for key, vals in attrs.items():
        if key.split(";", 1)[0].lower() == name.lower():
            out.extend(bytes(v).decode("utf-8") for v in vals)
    return out


def paged_control_value(size: int, cookie: bytes) -> bytes:
    """The BER value of the paged results request control: SEQUENCE {size INTEGER, cookie OCTET STRING}."""
    body = _ber_int(size) + _ber_tlv(0x04, cookie)
    return _ber_tlv(0x30, body)


def parse_paged_control_value(value: bytes) -> tuple[int, bytes]:
    """``(size estimate, cookie)`` from the paged results response control's BER value."""
    tag, body, _ = _ber_read(value, 0)
    if tag != 0x30:
        raise ValueError("paged results control: expected a SEQUENCE")
    tag, raw_size, pos = _ber_read(body, 0)
    size = int.from_bytes(raw_size, "big", signed=True) if raw_size else 0
    tag, cookie, _ = _ber_read(body, pos)
    return size, cookie


def _ber_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _ber_tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _ber_len(len(body)) + body


def _ber_int(n: int) -> bytes:
    raw = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True)
    return _ber_tlv(0x02, raw)


def _ber_read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(data[pos : pos + k], "big")
        pos += k
    return tag, data[pos : pos + n], pos + n
