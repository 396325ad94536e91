"""The subschema's ``attributeTypes`` and ``objectClasses`` descriptions (RFC 4512 §4.1) parsed
into :class:`dc_api_x_ldap.schema.SubSchema`, for the native reader (:mod:`.native`), which reads
the subschema subentry without a client library.

The rules are python-ldap's (:mod:`ldap.schema.tokenizer` and :mod:`ldap.schema.models`), so the
result is the one the python-ldap backend builds (the plugin's tests compare them): the same
tokens (quoted strings unescaped, ``$`` dropped), a keyword followed by another keyword or a
parenthesised list, a structural class without ``SUP`` under ``top``, the syntax without its
``{length}``, and a later description of the same OID replacing an earlier one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .schema import AttributeType, ObjectClass, SubSchema

__all__ = ["parse_subschema", "split_tokens"]

_TOKENS = re.compile(
    r"(\()"  # opening parenthesis
    r"|(\))"  # closing parenthesis
    r"|([^'$()\s]+)"  # a string without '$() or whitespace
    r"|('(?:[^'\\]|\\.)*'(?!\w))"  # a quoted string (not followed by a word character)
    r"|([^\s]+?)"  # the rest: '$' or junk
).findall
_UNESCAPE = re.compile(r"\\(.)")

_AT_KEYS = (
    "NAME",
    "DESC",
    "OBSOLETE",
    "SUP",
    "EQUALITY",
    "ORDERING",
    "SUBSTR",
    "SYNTAX",
    "SINGLE-VALUE",
    "COLLECTIVE",
    "NO-USER-MODIFICATION",
    "USAGE",
    "X-ORIGIN",
    "X-ORDERED",
)
_OC_KEYS = (
    "NAME",
    "DESC",
    "OBSOLETE",
    "SUP",
    "STRUCTURAL",
    "AUXILIARY",
    "ABSTRACT",
    "MUST",
    "MAY",
    "X-ORIGIN",
)


def split_tokens(text: str) -> list[str]:
    """The tokens of one description, quotes and ``$`` removed (``ValueError`` when malformed)."""
    parts: list[str] = []
    depth = 0
    for opar, cpar, unquoted, quoted, residue in _TOKENS(text):
        if unquoted:
            parts.append(unquoted)
        elif quoted:
            parts.append(_UNESCAPE.sub(r"\1", quoted[1:-1]))
        elif opar:
            depth += 1
            parts.append(opar)
        elif cpar:
            depth -= 1
            parts.append(cpar)
        elif residue == "$":
            if not depth:
                raise ValueError(f"'$' outside parentheses in {text!r}")
        else:
            raise ValueError(f"unexpected {residue!r} in {text!r}")
    if depth:
        raise ValueError(f"unbalanced parentheses in {text!r}")
    return parts


def _extract(tokens: list[str], keys: Iterable[str]) -> dict[str, tuple[str, ...] | None]:
    """Each known keyword's values: ``None`` when absent, ``()`` for a flag, else a tuple."""
    known = set(keys)
    out: dict[str, tuple[str, ...] | None] = dict.fromkeys(known)
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        i += 1
        if tok not in known or i >= n:
            continue
        if tokens[i] in known:
            out[tok] = ()
        elif tokens[i] == "(":
            i += 1
            start = i
            while i < n and tokens[i] != ")":
                i += 1
            out[tok] = tuple(v for v in tokens[start:i] if v != "$")
            i += 1
        else:
            out[tok] = (tokens[i],)
            i += 1
    return out


def _attribute_type(text: str) -> AttributeType:
    tokens = split_tokens(text)
    if len(tokens) < 3 or tokens[0] != "(" or tokens[-1] != ")":
        raise ValueError(f"not an attribute type description: {text!r}")
    d = _extract(tokens, _AT_KEYS)
    syntax = (d["SYNTAX"] or (None,))[0]
    if syntax is not None:
        syntax = syntax.split("{")[0]
    usage = (d["USAGE"] or (None,))[0]
    return AttributeType(
        oid=tokens[1],
        names=tuple(d["NAME"] or ()),
        syntax=syntax,
        single_value=d["SINGLE-VALUE"] is not None,
        no_user_modification=d["NO-USER-MODIFICATION"] is not None,
        usage="operational"
        if usage in ("directoryOperation", "distributedOperation", "dSAOperation")
        else "userApplications",
        sup=(d["SUP"] or (None,))[0],
    )


def _object_class(text: str) -> ObjectClass:
    tokens = split_tokens(text)
    if len(tokens) < 3 or tokens[0] != "(" or tokens[-1] != ")":
        raise ValueError(f"not an object class description: {text!r}")
    d = _extract(tokens, _OC_KEYS)
    kind = (
        "ABSTRACT"
        if d["ABSTRACT"] is not None
        else "AUXILIARY"
        if d["AUXILIARY"] is not None
        else "STRUCTURAL"
    )
    sup = tuple(d["SUP"] or ())
    if kind == "STRUCTURAL" and not sup and tokens[1] != "2.5.6.0":
        sup = ("top",)
    return ObjectClass(
        oid=tokens[1],
        names=tuple(d["NAME"] or ()),
        kind=kind,
        sup=sup,
        must=tuple(d["MUST"] or ()),
        may=tuple(d["MAY"] or ()),
    )


def parse_subschema(attrs: dict[str, list[bytes]]) -> SubSchema:
    """The :class:`SubSchema` of a subschema subentry's raw attributes (``attributeTypes`` and
    ``objectClasses``, matched without case)."""
    by_name = {k.lower(): v for k, v in attrs.items()}
    ats: dict[str, AttributeType] = {}
    for raw in by_name.get("attributetypes", ()):
        at = _attribute_type(bytes(raw).decode("utf-8"))
        ats[at.oid] = at
    ocs: dict[str, ObjectClass] = {}
    for raw in by_name.get("objectclasses", ()):
        oc = _object_class(bytes(raw).decode("utf-8"))
        ocs[oc.oid] = oc
    return SubSchema.build(ats.values(), ocs.values())
