"""dc-api-x: a pluggy-based ETL toolkit.

Importing this package has no side effects and imports no heavy library (httpx, SQLAlchemy, pyarrow,
singer-sdk): plugins load when :func:`enable_plugins` runs or on the first ``get_*``/``list_*`` call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .exceptions import (
    AdapterError,
    AuthError,
    ConfigError,
    DcApiXError,
    HTTPStatusError,
    NotSupportedError,
    PaginationError,
    PluginError,
    ResponseDecodeError,
    SchemaError,
    StateError,
    TransportError,
    UnknownPluginError,
)
from .hookspecs import hookimpl, hookspec
from .plugins import (
    PluginInfo,
    PluginSet,
    PluginWarning,
    enable_plugins,
    get_adapter,
    get_auth_provider,
    get_config_provider,
    get_hook,
    get_paginator,
    get_plugin_manager,
    get_plugins,
    get_schema_provider,
    get_sql_extension,
    get_transform,
    list_adapters,
    list_auth_providers,
    list_config_providers,
    list_hooks,
    list_paginators,
    list_schema_providers,
    list_sql_extensions,
    list_transforms,
)
from .registry import Registry
from .types import Batch, StreamSpec, WriteResult

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from .async_client import AsyncApiClient
    from .client import ApiClient
    from .factories import create_adapter, create_plugin

__version__: str

__all__ = [
    "AdapterError",
    "ApiClient",
    "AsyncApiClient",
    "AuthError",
    "Batch",
    "ConfigError",
    "DcApiXError",
    "HTTPStatusError",
    "NotSupportedError",
    "PaginationError",
    "PluginError",
    "PluginInfo",
    "PluginSet",
    "PluginWarning",
    "Registry",
    "ResponseDecodeError",
    "SchemaError",
    "StateError",
    "StreamSpec",
    "TransportError",
    "UnknownPluginError",
    "WriteResult",
    "__version__",
    "create_adapter",
    "create_plugin",
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
    "hookimpl",
    "hookspec",
    "list_adapters",
    "list_auth_providers",
    "list_config_providers",
    "list_hooks",
    "list_paginators",
    "list_schema_providers",
    "list_sql_extensions",
    "list_transforms",
]


def __getattr__(name: str) -> Any:  # lazy: these import pydantic and the request machinery
    if name == "ApiClient":
        from .client import ApiClient

        return ApiClient
    if name == "AsyncApiClient":
        from .async_client import AsyncApiClient

        return AsyncApiClient
    if name in ("create_adapter", "create_plugin"):
        from . import factories

        return getattr(factories, name)
    if name == "__version__":
        from .plugins import core_version

        return core_version()
    raise AttributeError(f"module 'dc_api_x' has no attribute {name!r}")
