"""A registry: the name → entry mapping of one plugin kind (adapters, paginators, …).

Plugins receive one in each ``register_*`` hook and fill it, in either form::

    def register_adapters(registry):
        registry["ldap"] = "my_plugin.ldap:LdapAdapter"          # the guide's form
        registry.register("ldap2", LdapAdapter)                   # the same, as a call

An entry is an object (usually a class, or any callable that builds one), a ``"package.module:Attr"``
string imported on first lookup, or a zero-argument ``factory=`` called on first lookup. A name is
registered once per registry: registering it again is a :class:`~dc_api_x.exceptions.PluginError`
naming both plugins (:func:`clash_message`) — inside one plugin's hook it fails that plugin; between
two plugins, the plugin set fails the one loaded second with that message.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import PluginError, UnknownPluginError

if TYPE_CHECKING:  # pragma: no cover
    from .plugins import PluginSet

__all__ = ["BLOCKED_ENV", "OFFICIAL_DISTRIBUTIONS", "Registry", "clash_message"]

#: Comma-separated plugin names (entry-point, module or distribution names) to block.
BLOCKED_ENV = "DC_API_X_BLOCKED_PLUGINS"

#: Names the official plugins register → the distribution to install (named by unknown-name errors).
OFFICIAL_DISTRIBUTIONS: dict[str, str] = {
    "oracle_db": "dc-api-x-oracle-db",
    "ldap": "dc-api-x-ldap",
    "redis": "dc-api-x-redis",
    "keycloak": "dc-api-x-keycloak",
}


def clash_message(kind: str, name: str, first: str, second: str) -> str:
    """The one-line message of two plugins registering one name: names both and says what to do."""
    return (
        f"{kind} {name!r} is provided by both {first!r} and {second!r}; "
        f"block one of them ({BLOCKED_ENV}=NAME or enable_plugins(blocked=[...]))"
    )


@dataclass
class _Entry:
    target: Any
    plugin: str
    lazy: bool = False
    factory: bool = False
    resolved: Any = None
    done: bool = False
    #: ``"module:attr"`` of the entry's head-start function (:meth:`Registry.ahead`), or ``None``
    ahead: str | None = None


class Registry:
    """A name → entry registry of one kind (adapters, paginators, …), usable as a mapping.

    Filling: ``registry[name] = entry`` or :meth:`register`. Lookup: ``registry[name]`` /
    :meth:`get` (unknown names raise :class:`UnknownPluginError` listing the known ones), ``in``,
    ``len``, iteration (sorted names), :meth:`keys`, :meth:`values`, :meth:`items`.

    A registry of a :class:`~dc_api_x.plugins.PluginSet` is filled on first use: every lookup first
    lets the set call the plugins' ``register_*`` hook of this kind.
    """

    def __init__(self, kind: str, *, owner: PluginSet | None = None, plugin: str = "") -> None:
        self.kind = kind
        self._entries: dict[str, _Entry] = {}
        self._owner = owner
        self._plugin = plugin
        self._lock = threading.Lock()
        #: set by the owning plugin set: fills this registry on first use
        self._filler: Callable[[], None] | None = None

    # -- filling -------------------------------------------------------------------------------
    def register(
        self,
        name: str | Any,
        entry: Any = None,
        *,
        factory: Callable[[], Any] | None = None,
        ahead: str | None = None,
    ) -> None:
        """Register ``entry`` under ``name``.

        ``registry.register(MyAdapter)`` uses ``MyAdapter.name``. ``entry`` may be a class, any
        other object or callable (stored as it is), or a ``"module:attr"`` string (imported on first
        lookup); ``factory=`` gives a zero-argument callable that returns the entry on first lookup.
        ``ahead=`` names (``"module:attr"``) a function a caller may give an endpoint's raw options
        before it imports the entry (:meth:`ahead`; ``dcapix run``'s head start for an adapter).
        """
        self._fill()
        if entry is None and factory is None:
            entry = name
            name = getattr(entry, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"{self.kind} {entry!r} has no 'name'; call register(name, entry)")
        if not isinstance(name, str) or not name:
            raise PluginError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if name in self._entries:
            raise PluginError(clash_message(self.kind, name, self._entries[name].plugin, self._plugin))
        if ahead is not None and (not isinstance(ahead, str) or ":" not in ahead):
            raise PluginError(f"{self.kind} {name!r}: ahead= must be a 'package.module:function' string")
        if factory is not None:
            self._entries[name] = _Entry(factory, self._plugin, lazy=True, factory=True)
        elif isinstance(entry, str):
            mod, sep, attr = entry.partition(":")
            if not (sep and mod and attr) and "." not in entry.strip("."):
                raise PluginError(
                    f"{self.kind} {name!r}: lazy entry {entry!r} must be 'package.module:Attr' "
                    f"or 'package.module.Attr'"
                )
            self._entries[name] = _Entry(entry, self._plugin, lazy=True)
        else:
            self._entries[name] = _Entry(entry, self._plugin, resolved=entry, done=True)
        self._entries[name].ahead = ahead

    def add_cleanup(self, func: Callable[[], Any]) -> None:
        """Run ``func`` when the plugin set is closed (or at interpreter exit)."""
        if self._owner is None:
            raise PluginError("this registry is not attached to a plugin set")
        self._owner.add_cleanup(func)

    def _fill(self) -> None:
        if self._filler is not None:
            self._filler()

    # -- lookup --------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """The entry registered as ``name`` (imported on first use). Unknown names raise
        :class:`UnknownPluginError` listing the known ones."""
        self._fill()
        try:
            ent = self._entries[name]
        except KeyError:
            raise self._unknown(name) from None
        if not ent.done:
            with self._lock:
                if not ent.done:
                    ent.resolved = _resolve(ent, self.kind, name)
                    ent.done = True
        return ent.resolved

    def ahead(self, name: str) -> Callable[..., Any] | None:
        """The head-start function registered with ``name`` (``register(..., ahead=…)``), imported
        without importing the entry; ``None`` for an unknown name, none registered, or one that
        cannot be imported (a head start is optional: the entry's own use reports its errors)."""
        self._fill()
        ent = self._entries.get(name)
        if ent is None or ent.ahead is None:
            return None
        modname, _, attr = ent.ahead.partition(":")
        try:
            func = getattr(importlib.import_module(modname), attr)
        except Exception:
            return None
        return func if callable(func) else None

    def plugin_of(self, name: str) -> str:
        """The name of the plugin that registered ``name``."""
        self._fill()
        try:
            return self._entries[name].plugin
        except KeyError:
            raise self._unknown(name) from None

    def _unknown(self, name: str) -> UnknownPluginError:
        dist = OFFICIAL_DISTRIBUTIONS.get(name)
        hint = f"{name!r} is provided by the official plugin {dist} (pip install {dist})" if dist else ""
        return UnknownPluginError(self.kind, name, self._entries, hint=hint)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._fill()
        return sorted(self._entries)

    # -- the mapping form plugin authors write: registry["name"] = Entry --------------------------
    def __setitem__(self, name: str, entry: Any) -> None:
        """``registry[name] = entry`` is :meth:`register` (a class, ``"module:Attr"`` or a callable)."""
        self.register(name, entry)

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def keys(self) -> list[str]:
        return self.names()

    def values(self) -> list[Any]:
        return [self.get(n) for n in self.names()]

    def items(self) -> list[tuple[str, Any]]:
        return [(n, self.get(n)) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._fill()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._fill()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<Registry {self.kind}: {', '.join(sorted(self._entries))}>"

    def _merge(self, other: Registry) -> None:
        """Add ``other``'s entries (a plugin's staged registrations); a name held already clashes."""
        for name, ent in other._entries.items():
            if name in self._entries:
                raise PluginError(clash_message(self.kind, name, self._entries[name].plugin, ent.plugin))
        self._entries.update(other._entries)


def _resolve(ent: _Entry, kind: str, name: str) -> Any:
    try:
        if ent.factory:
            return ent.target()
        modname, _, attr = ent.target.partition(":")
        if not attr:
            modname, _, attr = ent.target.rpartition(".")
        obj: Any = importlib.import_module(modname)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    except Exception as exc:
        raise PluginError(
            f"{kind} {name!r} from plugin {ent.plugin!r} could not be loaded: {type(exc).__name__}: {exc}"
        ) from exc
