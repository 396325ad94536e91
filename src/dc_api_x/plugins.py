"""Plugin sets: the pluggy manager, the plugins' statuses, the seven registries and the lookups.

Built-in plugins are ordinary plugins: :data:`DEFAULT_PLUGINS` lists them by dotted module name,
and they are registered under that name through the same hooks a third-party plugin implements
(datasette's pattern), so a third-party entry point can never be skipped by a name clash. Third-party
plugins are found through the entry-point group :data:`ENTRY_POINT_GROUP`.

Nothing happens at import time: a plugin set is built by :func:`enable_plugins` (or lazily, with
defaults, by the first ``get_*``/``list_*`` call). The registry class is :mod:`dc_api_x.registry`;
``create_adapter`` / ``create_plugin`` live in :mod:`dc_api_x.factories` (both names still import
from here).

A little over 700 lines: loading (version checks, blocking, the built-ins' lazy stand-ins of
:data:`BUILTIN_HOOKS`) and the plugin set those produce are one concept; the entry points
themselves (and their snapshot) come from :mod:`dc_api_x.entry_points`. What would move out next:
the built-in stand-ins and their hook table into a module of their own.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import inspect
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .entry_points import ENTRY_POINT_CACHE_ENV
from .entry_points import entry_points as _entry_points
from .entry_points import metadata_module as _metadata
from .entry_points import snapshot as _snapshot
from .exceptions import PluginError
from .registry import BLOCKED_ENV, Registry, clash_message

if TYPE_CHECKING:  # pragma: no cover
    from importlib import metadata

__all__ = [
    "ALLOWED_ENV",
    "BLOCKED_ENV",
    "BUILTIN_HOOKS",
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_CACHE_ENV",
    "ENTRY_POINT_GROUP",
    "GROUPS_ENV",
    "INCOMPATIBLE_ENV",
    "KINDS",
    "PluginInfo",
    "PluginSet",
    "PluginWarning",
    "REQUIRES_ATTR",
    "Registry",
    "core_version",
    "enable_plugins",
    "get_adapter",
    "get_auth_provider",
    "get_config_provider",
    "get_hook",
    "get_paginator",
    "get_plugin_manager",
    "get_plugins",
    "get_schema_provider",
    "get_sql_extension",
    "get_transform",
    "list_adapters",
    "list_auth_providers",
    "list_config_providers",
    "list_hooks",
    "list_paginators",
    "list_schema_providers",
    "list_sql_extensions",
    "list_transforms",
]

log = logging.getLogger(__name__)

#: Entry-point group third-party plugins declare (``[project.entry-points."dc_api_x.plugins"]``).
ENTRY_POINT_GROUP = "dc_api_x.plugins"
#: Comma-separated allowlist: when set, only these entry points (entry-point, module or distribution
#: names) are imported; every other installed plugin is listed as ``blocked``, never imported.
ALLOWED_ENV = "DC_API_X_ALLOWED_PLUGINS"
#: Set to ``1`` to load plugins whose declared core-version range excludes this version.
INCOMPATIBLE_ENV = "DC_API_X_ALLOW_INCOMPATIBLE"
#: Comma-separated extra entry-point groups to scan (after ``dc_api_x.plugins``).
GROUPS_ENV = "DC_API_X_ENTRY_POINT_GROUPS"
#: Module-level attribute a plugin may set to the core versions it supports (a PEP 440 specifier).
REQUIRES_ATTR = "DC_API_X_REQUIRES"

#: The built-in plugins, registered in this order before any entry point.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "dc_api_x.adapters.http",
    "dc_api_x.adapters.sql",
    "dc_api_x.adapters.files",
    "dc_api_x.pagination",
    "dc_api_x.auth",
    "dc_api_x.request_hooks",
    "dc_api_x.transforms",
    "dc_api_x.schemas",
    "dc_api_x.config_providers",
)

#: The hooks each built-in plugin implements (checked against the modules by
#: tests/core/test_plugins.py). A built-in listed here is registered with pluggy through a stand-in
#: (:class:`_LazyBuiltin`) and its module is imported when one of these hooks is called, i.e. at the
#: first use of that registry: a SQL → Parquet run does not import the paginators, auth providers
#: and request hooks with their pydantic option models (issue 15; docs/benchmarks.md).
BUILTIN_HOOKS: dict[str, tuple[str, ...]] = {
    "dc_api_x.adapters.http": ("register_adapters",),
    "dc_api_x.adapters.sql": ("register_adapters",),
    "dc_api_x.adapters.files": ("register_adapters",),
    "dc_api_x.pagination": ("register_pagination_handlers",),
    "dc_api_x.auth": ("register_auth_providers",),
    "dc_api_x.request_hooks": ("register_hooks",),
    "dc_api_x.transforms": ("register_transform_providers",),
    "dc_api_x.schemas": ("register_schema_providers",),
    "dc_api_x.config_providers": ("register_config_providers",),
}

#: hook name → (registry attribute, human label). ``register_transforms`` is the guide's other name
#: of ``register_transform_providers``: both fill the transform registry.
KINDS: dict[str, tuple[str, str]] = {
    "register_adapters": ("adapters", "adapter"),
    "register_auth_providers": ("auth_providers", "auth provider"),
    "register_hooks": ("hooks", "hook"),
    "register_schema_providers": ("schema_providers", "schema provider"),
    "register_transform_providers": ("transforms", "transform"),
    "register_transforms": ("transforms", "transform"),
    "register_pagination_handlers": ("paginators", "paginator"),
    "register_config_providers": ("config_providers", "config provider"),
    "register_sql_extensions": ("sql_extensions", "SQL extension"),
}


@functools.cache
def core_version() -> str:
    """The installed version of the ``dc-api-x`` distribution."""
    snap = _snapshot([ENTRY_POINT_GROUP])
    if snap is not None and snap.get("version"):
        return str(snap["version"])
    try:
        return _metadata().version("dc-api-x")
    except _metadata().PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


# ------------------------------------------------------------------------------ plugin manager
class PluginWarning(UserWarning):
    """Warned when a plugin is skipped or misbehaves (failed import, failed hook, incompatible core).

    Filter it like any warning: ``warnings.simplefilter("ignore", dc_api_x.PluginWarning)``.
    """


@dataclass
class PluginInfo:
    """What ``dcapix plugins`` shows for one plugin."""

    name: str
    module: str = ""
    distribution: str | None = None
    version: str | None = None
    status: str = "loaded"  # loaded | failed | blocked | incompatible
    reason: str = ""
    builtin: bool = False
    registers: dict[str, list[str]] = field(default_factory=dict)
    #: the entry-point group it came from (``None`` for built-ins and objects passed in).
    group: str | None = None


class PluginSet:
    """One loaded set of plugins: the pluggy manager, the seven registries and plugin statuses.

    Registries are attributes (``ps.adapters``, ``ps.paginators``, …, see :data:`KINDS`). Each is
    filled on its first use — a lookup, ``in``, ``len``, iteration — by calling every loaded plugin's
    ``register_*`` hook of that kind (so a plugin that imports a heavy module inside
    ``register_adapters`` costs nothing until adapters are used); :meth:`fill_registries` fills them
    now. Cleanups registered with :meth:`Registry.add_cleanup` run at :meth:`close` (or at
    interpreter exit); a plugin set is also a context manager.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.plugins: dict[str, PluginInfo] = {}
        self.registries: dict[str, Registry] = {}
        for attr, label in dict.fromkeys(KINDS.values()):
            reg = Registry(label, owner=self)
            reg._filler = functools.partial(self._fill, attr)
            self.registries[attr] = reg
        self._cleanups: list[Callable[[], Any]] = []
        self._closed = False
        #: the plugins registered with pluggy, in load order (their hooks fill the registries)
        self._loaded: list[tuple[PluginInfo, Any]] = []
        #: the registries filled already
        self._filled: set[str] = set()
        self._filling: set[str] = set()
        self._fill_lock = threading.RLock()

    def fill_registries(self, *attrs: str) -> PluginSet:
        """Call the plugins' ``register_*`` hooks of these registries now (default: all seven), as
        their first use would (what happens to a hook that raises or a name registered twice:
        :func:`enable_plugins`). Returns the set."""
        for attr in attrs or tuple(self.registries):
            self._fill(attr)
        return self

    def _fill(self, attr: str) -> None:
        if attr in self._filled:
            return
        with self._fill_lock:
            if attr in self._filled or attr in self._filling:  # a hook looking up its own kind
                return  # sees what is there
            self._filling.add(attr)
            try:
                _fill_registry(self, attr)
                self._filled.add(attr)
            finally:
                self._filling.discard(attr)

    # registries as attributes: ps.adapters, ps.paginators, …
    def __getattr__(self, name: str) -> Registry:
        regs = self.__dict__.get("registries", {})
        if name in regs:
            return regs[name]  # type: ignore[no-any-return]
        raise AttributeError(name)

    def add_cleanup(self, func: Callable[[], Any]) -> None:
        """Run ``func`` at :meth:`close`. Added after ``close()``: runs at once."""
        if self._closed:
            func()
            return
        self._cleanups.append(func)
        _ensure_atexit()
        _with_cleanups.add(self)  # kept alive until closed, so its cleanups run at exit at the latest

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Run registered cleanups (last registered first). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        _with_cleanups.discard(self)
        while self._cleanups:
            func = self._cleanups.pop()
            try:
                func()
            except Exception as exc:  # a cleanup must not stop the others
                log.warning("plugin cleanup %r failed: %s", func, exc)

    def __enter__(self) -> PluginSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def failed(self) -> list[PluginInfo]:
        """Plugins that are not loaded (failed, blocked or incompatible)."""
        return [p for p in self.plugins.values() if p.status != "loaded"]

    def __repr__(self) -> str:
        loaded = sum(1 for p in self.plugins.values() if p.status == "loaded")
        return f"<PluginSet {loaded}/{len(self.plugins)} plugins loaded>"


def _env_list(var: str) -> set[str]:
    return {x.strip() for x in os.environ.get(var, "").split(",") if x.strip()}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


#: a requirement without marker or URL: name, extras, version specifiers (optionally in parentheses).
#: Pattern texts, compiled (and cached by :mod:`re`) on first use: only a scan of the installed
#: distributions reads requirements, and compiling both costs every start ~0.2 ms (issue 15)
_PLAIN_REQUIREMENT = (
    r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*"
    r"(?:\(([^;@()\[\]]*)\)|([^;@()\[\]]*))\s*"
)
_REQUIREMENT_NAME = r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"


def _dist_requirement(dist: metadata.Distribution | None) -> str | None:
    """The specifier of ``dist``'s (unconditional) requirement on ``dc-api-x``, if any.

    ``packaging.requirements`` (with its markers and parser: ~12 ms of CPU at every start) is
    imported only for a requirement on dc-api-x with a marker, URL or unusual form: another
    project's requirement is passed over by its name, a plain one is read by
    :data:`_PLAIN_REQUIREMENT` and normalised by ``SpecifierSet`` as ``Requirement`` does."""
    if dist is None:
        return None
    judged = getattr(dist, "dcapix_judged", None)  # (read from the entry-point snapshot)
    if judged is not None:
        spec, ok = judged
        if spec:
            _JUDGED[spec] = ok
        return spec  # type: ignore[no-any-return]
    for req in dist.requires or ():
        named = re.match(_REQUIREMENT_NAME, req)
        if named is None or _canonical(named.group(1)) != "dc-api-x":
            continue  # not a requirement on dc-api-x (or not one packaging would parse)
        try:
            plain = re.fullmatch(_PLAIN_REQUIREMENT, req)
            if plain is not None:
                from packaging.specifiers import SpecifierSet

                spec = SpecifierSet(plain.group(2) or plain.group(3) or "")
            else:
                from packaging.requirements import Requirement

                r = Requirement(req)
                if _canonical(r.name) != "dc-api-x":
                    continue
                if r.marker is not None and not r.marker.evaluate({"extra": ""}):
                    continue
                spec = r.specifier
        except Exception:
            continue
        return str(spec) or None
    return None


#: specifier -> whether this core's version is in it, as the entry-point snapshot recorded it
_JUDGED: dict[str, bool] = {}


def _compatible(spec: str | None) -> bool:
    """Whether this core's version is in ``spec`` (raises ``InvalidSpecifier`` for a bad one)."""
    if not spec:
        return True
    if spec in _JUDGED:
        return _JUDGED[spec]
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    return Version(core_version()) in SpecifierSet(spec, prereleases=True)


def _module_requirement(obj: Any) -> Any:
    """``DC_API_X_REQUIRES`` of a plugin object, or of the module that defines it."""
    spec = getattr(obj, REQUIRES_ATTR, None)
    if spec is None and not inspect.ismodule(obj):
        mod = sys.modules.get(getattr(obj, "__module__", None) or "")
        spec = getattr(mod, REQUIRES_ATTR, None) if mod is not None else None
    return spec


def _warn(message: str) -> None:
    """Warn with :class:`PluginWarning`, attributed to the first caller outside dc_api_x (the caller
    of :func:`enable_plugins`, or the code whose lookup filled a registry)."""
    frame = inspect.currentframe()
    level = 1
    while frame is not None and str(frame.f_globals.get("__name__", "")).partition(".")[0] == "dc_api_x":
        frame = frame.f_back
        level += 1
    warnings.warn(message, PluginWarning, stacklevel=level)


def _unique_name(ps: PluginSet, name: str, qualifier: str | None) -> str:
    if name not in ps.plugins:
        return name
    base = f"{qualifier}:{name}" if qualifier else name
    candidate, n = base, 2
    while candidate in ps.plugins:
        candidate, n = f"{base}#{n}", n + 1
    return candidate


def _check_version(info: PluginInfo, spec: Any, source: str, allow_incompatible: bool) -> bool:
    """Apply a declared core-version range; return False when the plugin must be skipped."""
    if spec is None or spec == "":
        return True
    try:
        if not isinstance(spec, str):
            raise TypeError(f"expected a version specifier string, got {type(spec).__name__}")
        ok = _compatible(spec)
    except Exception as exc:
        info.status = "failed"
        info.reason = f"invalid {source} {spec!r}: {exc}"
        _warn(f"dc-api-x plugin {info.name!r} ({info.distribution or info.module}) has an {info.reason}")
        return False
    if ok:
        return True
    where = info.distribution or info.module
    if allow_incompatible:
        info.reason = f"requires dc-api-x {spec}, found {core_version()}; loaded anyway"
        _warn(
            f"dc-api-x plugin {info.name!r} ({where}) requires dc-api-x {spec}, found {core_version()}; "
            f"loading it anyway ({INCOMPATIBLE_ENV} / allow_incompatible)"
        )
        return True
    info.status = "incompatible"
    info.reason = f"requires dc-api-x {spec}, found {core_version()}"
    _warn(
        f"dc-api-x plugin {info.name!r} ({where}) requires dc-api-x {spec}, found {core_version()}; "
        f"skipped (set {INCOMPATIBLE_ENV}=1 or enable_plugins(allow_incompatible=True) to load it anyway)"
    )
    return False


def _blocked(blocked: set[str], *names: str | None) -> bool:
    if not blocked:
        return False
    canon = {_canonical(b) for b in blocked}
    return any(n and (n in blocked or _canonical(n) in canon) for n in names)


def _register_with_pm(pm: pluggy.PluginManager, info: PluginInfo, obj: Any) -> bool:
    pname = info.name
    try:
        pm.register(obj, name=pname)
        bad = hookspecs.unknown_hooks(pm, obj)
        if bad:
            raise PluginError(
                f"unknown hook(s) {', '.join(bad)}; known hooks: {', '.join(hookspecs.known_hooks(pm))}"
            )
    except Exception as exc:
        info.status, info.reason = "failed", f"invalid plugin: {type(exc).__name__}: {exc}"
        _warn(f"dc-api-x plugin {pname!r} is invalid: {exc}")
        try:
            if pm.get_plugin(pname) is not None:
                pm.unregister(name=pname)
        except Exception:  # pragma: no cover - half-registered plugin
            pass
        return False
    for name in hookspecs.stray_register_functions(pm, obj):
        _warn(
            f"dc-api-x plugin {pname!r}: {name}() matches no hook and is ignored; "
            f"hooks: {', '.join(hookspecs.known_hooks(pm))}"
        )
    return True


def enable_plugins(
    *,
    entry_points: bool = True,
    blocked: Iterable[str] = (),
    plugins: Iterable[Any] = (),
    allow_incompatible: bool | None = None,
    builtins: bool = True,
    make_current: bool = True,
    entry_point_groups: Iterable[str] = (),
    lazy: bool = True,
    allowed: Iterable[str] | None = None,
) -> PluginSet:
    """Build a plugin set: built-ins, then entry points, then ``plugins``.

    Each call builds a fresh pluggy manager and fresh registries (nothing is cached between calls).
    Plugins are imported and registered with pluggy now; each registry is filled on its first use
    (``lazy=False``: now), by calling every loaded plugin's hook of that kind in load order.

    Failure isolation: a plugin that fails to import, declares an incompatible core version, or
    defines an invalid hook is skipped here, with a :class:`PluginWarning`, and listed in
    :attr:`PluginSet.plugins` with its status and reason; every other plugin still loads. When a
    registry is filled, a plugin whose hook raises, or which registers a name another plugin
    registered before it (built-ins, then entry points, then objects), gets one warning naming the
    hook or both plugins; what it registered there is dropped, it is marked ``failed`` and skipped
    by registries filled after (registries filled before keep its entries).

    :param entry_points: load third-party plugins from the ``dc_api_x.plugins`` entry-point group
        (plus ``entry_point_groups`` and the groups in :data:`GROUPS_ENV`).
    :param blocked: plugin names (built-in module names, entry-point names or distribution names)
        not to load. :data:`BLOCKED_ENV` adds more.
    :param plugins: extra plugin objects (modules, classes, instances) to register.
    :param allow_incompatible: load plugins whose declared core-version range excludes this core
        (default: :data:`INCOMPATIBLE_ENV`).
    :param builtins: register :data:`DEFAULT_PLUGINS`.
    :param make_current: make this the set the module-level ``get_*``/``list_*`` functions use
        (the previous current set is closed).
    :param entry_point_groups: more entry-point groups to scan after the default one.
    :param lazy: fill each registry on its first use (default), or all of them now.
    :param allowed: an allowlist of entry points (entry-point, module or distribution names): the
        others are not imported (status ``blocked``). ``None`` (default): :data:`ALLOWED_ENV` if set,
        else every entry point. Built-ins and ``plugins`` are not filtered.
    """
    global _current
    from .logs import install_redaction

    install_redaction()
    blocked_names = set(blocked) | _env_list(BLOCKED_ENV)
    allow = set(allowed) if allowed is not None else (_env_list(ALLOWED_ENV) or None)
    if allow_incompatible is None:
        flag = os.environ.get(INCOMPATIBLE_ENV, "").strip().lower()
        allow_incompatible = flag not in ("", "0", "false", "no")
    pm = hookspecs.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    ps = PluginSet(pm)
    order: list[tuple[PluginInfo, Any]] = []
    if builtins:
        order += _builtin_plugins(ps, blocked_names)
    if entry_points:
        groups = [ENTRY_POINT_GROUP]
        for g in [*entry_point_groups, *sorted(_env_list(GROUPS_ENV))]:
            if g not in groups:
                groups.append(g)
        order += _entry_point_plugins(ps, groups, blocked_names, allow_incompatible, allow)
    order += _object_plugins(ps, plugins, blocked_names, allow_incompatible)

    ps._loaded = [(info, obj) for info, obj in order if _register_with_pm(pm, info, obj)]
    if not lazy:
        try:
            ps.fill_registries()
        except BaseException:
            ps.close()
            raise

    if make_current:
        with _lock:
            old, _current = _current, ps
        if old is not None and old is not ps:
            old.close()
    _ensure_atexit()
    return ps


class _LazyBuiltin:
    """A built-in plugin registered before its module is imported: one function per hook of
    :data:`BUILTIN_HOOKS`, each importing the module and calling the module's own hook."""

    def __init__(self, modname: str, hooks: tuple[str, ...]) -> None:
        self.__name__ = self.__module__ = modname
        for hook in hooks:
            setattr(self, hook, self._hook(modname, hook))

    @staticmethod
    def _hook(modname: str, hook: str) -> Callable[..., Any]:
        def call(registry: Registry) -> Any:
            return getattr(importlib.import_module(modname), hook)(registry)

        call.__name__ = call.__qualname__ = hook
        call.__module__ = modname
        return call

    def __repr__(self) -> str:
        return f"<built-in plugin {self.__name__} (imported on first use)>"


# -- the three sources of plugins: each adds a PluginInfo per plugin and returns those to register --
def _builtin_plugins(ps: PluginSet, blocked: set[str]) -> list[tuple[PluginInfo, Any]]:
    """The modules of :data:`DEFAULT_PLUGINS` under their dotted names: those of
    :data:`BUILTIN_HOOKS` not imported yet through a :class:`_LazyBuiltin`, the others imported now."""
    out: list[tuple[PluginInfo, Any]] = []
    for modname in DEFAULT_PLUGINS:
        info = PluginInfo(
            modname, module=modname, distribution="dc-api-x", version=core_version(), builtin=True
        )
        ps.plugins[modname] = info
        if _blocked(blocked, modname):
            info.status, info.reason = "blocked", "blocked by name"
            continue
        hooks = BUILTIN_HOOKS.get(modname)
        if hooks is not None and modname not in sys.modules:
            out.append((info, _LazyBuiltin(modname, hooks)))
            continue
        try:
            mod = importlib.import_module(modname)
        except Exception as exc:
            info.status, info.reason = "failed", f"import failed: {type(exc).__name__}: {exc}"
            _warn(f"dc-api-x plugin {modname!r} failed to import: {type(exc).__name__}: {exc}")
            continue
        out.append((info, mod))
    return out


def _entry_point_plugins(
    ps: PluginSet, groups: list[str], blocked: set[str], allow_incompatible: bool, allow: set[str] | None
) -> list[tuple[PluginInfo, Any]]:
    """The entry points of ``groups``: one not in ``allow`` (when given) is not imported, nor is a
    distribution whose requirement on dc-api-x excludes this version; a module whose
    ``DC_API_X_REQUIRES`` excludes it is skipped after import."""
    out = []
    seen: set[tuple[str | None, str]] = set()
    for group in groups:
        for ep in _entry_points(group, groups):
            dist = getattr(ep, "dist", None)
            dname = dist.metadata["Name"] if dist is not None else None
            if (dname, ep.value) in seen:  # the same plugin declared in two groups: load it once
                continue
            seen.add((dname, ep.value))
            name = _unique_name(ps, ep.name, dname)
            info = PluginInfo(
                name,
                module=ep.value,
                distribution=dname,
                version=dist.version if dist is not None else None,
                group=group,
            )
            ps.plugins[name] = info
            if _blocked(blocked, ep.name, name, dname, ep.value):
                info.status, info.reason = "blocked", "blocked by name"
                continue
            if allow is not None and not _blocked(allow, ep.name, name, dname, ep.value):
                info.status, info.reason = "blocked", f"not in the allowlist ({ALLOWED_ENV})"
                continue
            if not _check_version(info, _dist_requirement(dist), "requirement", allow_incompatible):
                continue
            try:
                obj = ep.load()
            except Exception as exc:
                info.status, info.reason = "failed", f"import failed: {type(exc).__name__}: {exc}"
                _warn(
                    f"dc-api-x plugin {name!r} ({dname or ep.value}) failed to import: "
                    f"{type(exc).__name__}: {exc}"
                )
                continue
            if info.reason == "" and not _check_version(
                info, _module_requirement(obj), REQUIRES_ATTR, allow_incompatible
            ):
                continue
            out.append((info, obj))
    return out


def _object_plugins(
    ps: PluginSet, objects: Iterable[Any], blocked: set[str], allow_incompatible: bool
) -> list[tuple[PluginInfo, Any]]:
    """Plugin objects given to :func:`enable_plugins` (modules, classes, instances)."""
    out = []
    for obj in objects:
        base = getattr(obj, "__name__", None) if inspect.ismodule(obj) or inspect.isclass(obj) else None
        base = base or getattr(obj, "__name__", None) or type(obj).__name__
        name = _unique_name(ps, base, None)
        objmod: str = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None) or name
        info = PluginInfo(name, module=objmod)
        ps.plugins[name] = info
        if _blocked(blocked, base, name):
            info.status, info.reason = "blocked", "blocked by name"
            continue
        if not _check_version(info, _module_requirement(obj), REQUIRES_ATTR, allow_incompatible):
            continue
        out.append((info, obj))
    return out


def _fill_registry(ps: PluginSet, attr: str) -> None:
    """Call every loaded plugin's hooks of registry ``attr``, in load order. A plugin's registrations
    are staged and merged only when all its hooks of this kind returned and none of its names is
    taken; otherwise the plugin fails (one warning) and the others are unaffected."""
    target = ps.registries[attr]
    hook_names = [h for h, (a, _label) in KINDS.items() if a == attr]
    for info, obj in ps._loaded:
        if info.status != "loaded":  # failed while another registry was filled
            continue
        staged = Registry(target.kind, owner=ps, plugin=info.name)
        hook_name = hook_names[0]
        try:
            for hook_name in hook_names:
                caller = getattr(ps.pm.hook, hook_name, None)
                if caller is None:  # pragma: no cover - hookspecs and KINDS disagree
                    continue
                for impl in caller.get_hookimpls():
                    if impl.plugin is not obj or impl.hookwrapper or getattr(impl, "wrapper", False):
                        continue
                    impl.function(**({"registry": staged} if "registry" in impl.argnames else {}))
        except Exception as exc:
            kind = type(exc).__name__
            _fail(ps, info, obj, f"{kind} in {hook_name}: {exc}", f"failed in {hook_name}: {kind}: {exc}")
            continue
        taken = next((n for n in staged._entries if n in target._entries), None)
        if taken is not None:  # the plugin loaded first keeps the name: built-ins before entry points
            clash = clash_message(target.kind, taken, target._entries[taken].plugin, info.name)
            _fail(ps, info, obj, clash, f"failed: {clash}")
            continue
        target._merge(staged)
        if staged._entries:
            info.registers[attr] = sorted(staged._entries)


def _fail(ps: PluginSet, info: PluginInfo, obj: Any, reason: str, message: str) -> None:
    """Mark a plugin failed while a registry is filled: one warning, its hooks unregistered."""
    info.status, info.reason = "failed", reason
    _warn(f"dc-api-x plugin {info.name!r} {message}")
    ps.pm.unregister(obj)


_current: PluginSet | None = None
_lock = threading.RLock()
_atexit_done = False
#: Open plugin sets that hold cleanups (strong references: their cleanups must run).
_with_cleanups: set[PluginSet] = set()


def _ensure_atexit() -> None:
    global _atexit_done
    if not _atexit_done:
        _atexit_done = True
        atexit.register(_close_all)


def _close_all() -> None:
    """At interpreter exit: close every plugin set still open (runs their cleanups)."""
    for ps in list(_with_cleanups):
        ps.close()


def get_plugins() -> PluginSet:
    """The current plugin set, built with defaults on first use."""
    with _lock:
        if _current is None:
            return enable_plugins()
        return _current


def _swap_current(ps: PluginSet | None) -> PluginSet | None:
    """Make ``ps`` the current set without closing the previous one, which is returned (for
    :func:`dc_api_x.testing.isolated_plugins`, which puts it back)."""
    global _current
    with _lock:
        old, _current = _current, ps
    return old


def get_plugin_manager() -> pluggy.PluginManager:
    """The pluggy manager of the current plugin set (advanced use)."""
    return get_plugins().pm


def _getter(attr: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    def get(name: str) -> Any:
        return get_plugins().registries[attr].get(name)

    def list_() -> list[str]:
        return get_plugins().registries[attr].names()

    return get, list_


get_adapter, list_adapters = _getter("adapters")
get_auth_provider, list_auth_providers = _getter("auth_providers")
get_hook, list_hooks = _getter("hooks")
get_schema_provider, list_schema_providers = _getter("schema_providers")
get_sql_extension, list_sql_extensions = _getter("sql_extensions")
get_transform, list_transforms = _getter("transforms")
get_paginator, list_paginators = _getter("paginators")
get_config_provider, list_config_providers = _getter("config_providers")
for _f, _doc in (
    (get_adapter, "The adapter class registered as ``name``."),
    (get_auth_provider, "The auth provider class registered as ``name``."),
    (get_hook, "The request-hook class registered as ``name``."),
    (get_schema_provider, "The schema provider class registered as ``name``."),
    (get_sql_extension, "The SQL extension class registered as ``name``."),
    (get_transform, "The transform class registered as ``name``."),
    (get_paginator, "The paginator class registered as ``name``."),
    (get_config_provider, "The config provider class registered as ``name``."),
):
    _f.__doc__ = _doc + " Unknown names raise :class:`UnknownPluginError` listing the known ones."


def __getattr__(name: str) -> Any:
    # ``from dc_api_x.plugins import create_adapter`` (how plugins and the tap/target import it) keeps
    # working; the factories live one layer up, in dc_api_x.factories.
    if name in ("create_adapter", "create_plugin"):
        from . import factories

        return getattr(factories, name)
    if name == "metadata":  # importlib.metadata, imported on first use
        return _metadata()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
