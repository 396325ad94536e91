"""Built-in adapters. Each module is a plugin registered by dotted name (see ``plugins.DEFAULT_PLUGINS``);
nothing imports them directly: adapters are reached through the registry (``get_adapter(name)``)."""
