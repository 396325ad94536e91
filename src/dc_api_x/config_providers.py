"""Built-in plugin: config_providers (placeholder until implemented)."""
