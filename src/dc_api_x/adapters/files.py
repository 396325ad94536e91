"""Built-in plugin: files adapters (placeholder)."""
