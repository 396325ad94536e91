"""Built-in plugin: pagination (placeholder until implemented)."""
