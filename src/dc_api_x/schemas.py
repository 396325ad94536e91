"""Built-in plugin: schemas (placeholder until implemented)."""
