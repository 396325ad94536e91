"""Every hook a dc-api-x plugin can implement, and how a plugin's functions are matched to them
(:class:`PluginManager` accepts plain functions named like a hook; :func:`unknown_hooks` and
:func:`stray_register_functions` find the misnamed ones).

A plugin is any module or object. It implements a hook by defining a function with the hook's name,
marked with :data:`hookimpl` or left plain (both work)::

    # my_plugin.py
    def register_adapters(registry):
        registry["ldap"] = "my_plugin.adapter:LdapAdapter"   # imported on first use

Each hook receives one :class:`~dc_api_x.registry.Registry` (a mapping: ``registry[name] = entry``)
and fills it. A hook is called once per plugin set, when its registry is first used (a lookup, a
listing; or at once with ``enable_plugins(lazy=False)``); results are not collected (the registry is
the result). A plugin that raises in a hook is reported as failed and what that hook registered is
dropped; the other plugins still load.

The eight registries and what their entries are:

=============================  ===========================  ============================================
hook                           registry kind                entries (class, ``"module:attr"`` or factory)
=============================  ===========================  ============================================
``register_adapters``          ``adapter``                  :class:`dc_api_x.ext.adapters.ProtocolAdapter`
``register_auth_providers``    ``auth provider``            :class:`dc_api_x.ext.auth.AuthProvider`
``register_hooks``             ``hook``                     :class:`dc_api_x.ext.hooks.RequestHook`
``register_schema_providers``  ``schema provider``          :class:`dc_api_x.ext.schemas.SchemaProvider`
``register_transform_providers`` ``transform``              :class:`dc_api_x.ext.transforms.Transform`
``register_transforms``        ``transform`` (an alias)     :class:`dc_api_x.ext.transforms.Transform`
``register_pagination_handlers`` ``paginator``              :class:`dc_api_x.ext.pagination.Paginator`
``register_config_providers``  ``config provider``          :class:`dc_api_x.ext.config.ConfigProvider`
``register_sql_extensions``    ``SQL extension``            :class:`dc_api_x.ext.sql.SQLExtension`
=============================  ===========================  ============================================
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, cast

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .registry import Registry

__all__ = [
    "PROJECT_NAME",
    "PluginManager",
    "hookimpl",
    "hookspec",
    "known_hooks",
    "stray_register_functions",
    "unknown_hooks",
]

#: The pluggy project name; also the prefix of marker attributes.
PROJECT_NAME = "dc_api_x"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a function as a dc-api-x hook implementation (optional: plain functions work too).
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------------------- registration hooks
@hookspec
def register_adapters(registry: Registry) -> None:
    """Register protocol adapters (HTTP, SQL, files, LDAP, …).

    Called once per plugin set. Each entry is a :class:`~dc_api_x.ext.adapters.ProtocolAdapter`
    subclass (or a lazy ``"module:Class"`` string) under the name users write as ``adapter:``.

    :param registry: the adapter registry; ``registry[name] = entry`` (or ``registry.register(name, entry)``).
    """


@hookspec
def register_auth_providers(registry: Registry) -> None:
    """Register authentication providers (``bearer``, ``api_key``, ``oauth2_client_credentials``, …).

    Called once per plugin set. Entries are :class:`~dc_api_x.ext.auth.AuthProvider` subclasses,
    selected by ``auth: {type: NAME}`` in config.

    :param registry: the auth-provider registry.
    """


@hookspec
def register_hooks(registry: Registry) -> None:
    """Register request observers called around every request (``before_request``, ``after_response``,
    ``on_error``).

    Called once per plugin set. Entries are :class:`~dc_api_x.ext.hooks.RequestHook` subclasses;
    :class:`~dc_api_x.client.ApiClient` instantiates the ones a client enables.

    :param registry: the request-hook registry.
    """


@hookspec
def register_schema_providers(registry: Registry) -> None:
    """Register schema providers, which produce a stream's JSON Schema (from SQL reflection, Arrow
    metadata, sample records, a JSON Schema file, …).

    Called once per plugin set. Entries are :class:`~dc_api_x.ext.schemas.SchemaProvider` subclasses.

    :param registry: the schema-provider registry.
    """


@hookspec
def register_transform_providers(registry: Registry) -> None:
    """Register transforms (``select``, ``rename``, ``cast``, ``flatten``, ``mask``, …) applied to
    batches between read and write.

    Called once per plugin set. Entries are :class:`~dc_api_x.ext.transforms.Transform` subclasses,
    selected by ``transforms: [{type: NAME, …}]`` in config.

    :param registry: the transform registry.
    """


@hookspec
def register_transforms(registry: Registry) -> None:
    """The same as :func:`register_transform_providers` (the plugin guide uses both names): register
    transforms into the same registry.

    :param registry: the transform registry.
    """


@hookspec
def register_pagination_handlers(registry: Registry) -> None:
    """Register paginators (``single_page``, ``offset``, ``page_number``, ``cursor``, ``link_header``, …).

    Called once per plugin set. Entries are :class:`~dc_api_x.ext.pagination.Paginator` subclasses,
    selected by ``pagination: {type: NAME, …}`` in config.

    :param registry: the paginator registry.
    """


@hookspec
def register_sql_extensions(registry: Registry) -> None:
    """Register extensions of the SQL adapter: SQLAlchemy engine plugins loaded into every engine it
    creates (instrumentation), type mappings used by discovery and table creation, figures for the
    run's metrics.

    Called once per plugin set. Each entry is a :class:`~dc_api_x.ext.sql.SQLExtension` subclass
    (or a lazy ``"module:Class"`` string); the SQL adapter makes one instance per adapter.

    :param registry: the SQL extension registry; ``registry[name] = entry``.
    """


@hookspec
def register_config_providers(registry: Registry) -> None:
    """Register configuration providers (sources of settings: defaults, files, environment, …).

    Called once per plugin set. Entries are :class:`~dc_api_x.ext.config.ConfigProvider` subclasses;
    :func:`dc_api_x.config.load_settings` merges them by their ``priority`` (higher wins).

    :param registry: the config-provider registry.
    """


# ------------------------------------------------------------ matching a plugin's functions to hooks
_PLAIN_IMPL_OPTS: dict[str, Any] = {
    "wrapper": False,
    "hookwrapper": False,
    "optionalhook": False,
    "tryfirst": False,
    "trylast": False,
    "specname": None,
}


class PluginManager(pluggy.PluginManager):
    """Accepts plain functions named like a hook, besides ``@hookimpl``-marked ones."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and not name.startswith("_"):
            caller = getattr(self.hook, name, None)
            if caller is not None and caller.has_spec():
                try:
                    method = getattr(plugin, name, None)
                except Exception:  # a property that raises is not a hook
                    return None
                if inspect.isroutine(method):
                    opts = cast("pluggy.HookimplOpts", dict(_PLAIN_IMPL_OPTS))
        return opts


def unknown_hooks(pm: pluggy.PluginManager, obj: Any) -> list[str]:
    """Hook names ``obj`` implements with ``@hookimpl`` that no hookspec declares (typos)."""
    bad = []
    for name, caller in vars(pm.hook).items():
        if name.startswith("_") or caller.has_spec():
            continue
        if any(impl.plugin is obj and not impl.optionalhook for impl in caller.get_hookimpls()):
            bad.append(name)
    return sorted(bad)


def known_hooks(pm: pluggy.PluginManager) -> list[str]:
    return sorted(n for n, c in vars(pm.hook).items() if not n.startswith("_") and c.has_spec())


def stray_register_functions(pm: pluggy.PluginManager, obj: Any) -> list[str]:
    """Plain ``register_*`` functions or methods of ``obj`` that match no hook (a typo such as
    ``register_adapter``, or a hook of another version), which pluggy would silently ignore.
    Functions of dc_api_x itself (``register_secret`` imported into a plugin) are not counted."""
    found = []
    for name in dir(obj):
        if not name.startswith("register_") or pm.parse_hookimpl_opts(obj, name) is not None:
            continue
        try:
            value = inspect.getattr_static(obj, name)
        except AttributeError:  # pragma: no cover - listed by dir() but not there
            continue
        func = getattr(value, "__func__", value)
        if not inspect.isfunction(func):
            continue
        if str(getattr(func, "__module__", "") or "").partition(".")[0] == "dc_api_x":
            continue
        found.append(name)
    return found
