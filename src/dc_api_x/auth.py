"""Built-in plugin: auth (placeholder until implemented)."""
