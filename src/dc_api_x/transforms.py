"""Built-in plugin: transforms (placeholder until implemented)."""
