"""Built-in plugin: sql adapters (placeholder)."""
