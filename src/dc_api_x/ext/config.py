"""The config-provider contract: one source of settings merged by :func:`dc_api_x.config.load_settings`.

:func:`~dc_api_x.config.load_settings` instantiates every registered provider with the same keyword
arguments (``file``, ``env_prefix``, ``defaults``, ``model``), sorts them by :attr:`ConfigProvider.priority`
(lowest first) and deep-merges what their :meth:`~ConfigProvider.load` returns, so a higher priority
wins key by key. The built-ins are ``defaults`` (0) < ``file`` (10) < ``env`` (20); a plugin adds its
own source (a vault, a remote store, …) by registering a subclass with its own priority::

    class VaultProvider(ConfigProvider):
        name = "vault"
        priority = 30           # above the environment

        def load(self) -> dict:
            return {"password": read_from_vault()}

    def register_config_providers(registry):
        registry.register("vault", VaultProvider)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from ..exceptions import ConfigError

__all__ = ["ConfigProvider"]


class ConfigProvider:
    """Base class of configuration providers.

    :param file: the config file ``load_settings`` was given (or ``None``).
    :param env_prefix: the environment-variable prefix (``DCAPIX_``).
    :param defaults: the ``defaults`` mapping ``load_settings`` was given.
    :param model: the pydantic model being built (lets a provider read only known fields).
    """

    #: The registry name.
    name: ClassVar[str] = ""
    #: Merge order: providers with a higher priority override lower ones.
    priority: ClassVar[int] = 50

    def __init__(
        self,
        *,
        file: str | None = None,
        env_prefix: str = "DCAPIX_",
        defaults: Mapping[str, Any] | None = None,
        model: type[BaseModel] | None = None,
        **kwargs: Any,
    ) -> None:
        self.file = file
        self.env_prefix = env_prefix
        self.defaults: dict[str, Any] = dict(defaults or {})
        self.model = model
        self.extra = kwargs

    def load(self) -> dict[str, Any]:
        """The settings this provider supplies, as a (possibly nested) dict; ``{}`` for none."""
        raise NotImplementedError(f"config provider {self.name!r} does not implement load()")

    def error(self, message: str, *, field: str | None = None) -> ConfigError:
        """A :class:`ConfigError` naming this provider."""
        who = f"config provider {self.name!r}"
        return ConfigError(f"{who}: {message}", plugin=who, field=field)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} priority={self.priority}>"
