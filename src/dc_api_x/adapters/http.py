"""Built-in plugin: http adapters (placeholder)."""
