"""A plugin written the guide's way for the four registries its examples do not show (the "Plugin
Registry Reference" table): request hooks, schema providers, transform providers and pagination
handlers, and config providers, each registered with ``registry[name] = ...``, heavy imports inside
the hooks."""


def register_hooks(registry):
    from .parts import RequestIdHook

    registry["request_id"] = RequestIdHook


def register_schema_providers(registry):
    from .parts import StaticSchemaProvider

    registry["static_schema"] = StaticSchemaProvider


def register_transform_providers(registry):
    from .parts import SuffixTransform

    registry["suffix"] = SuffixTransform


def register_pagination_handlers(registry):
    from .parts import SkipTakePaginator

    registry["skip_take"] = SkipTakePaginator


def register_config_providers(registry):
    from .parts import DotfileConfigProvider

    registry["dotfile"] = DotfileConfigProvider
