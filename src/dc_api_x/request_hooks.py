"""Built-in plugin: request_hooks (placeholder until implemented)."""
