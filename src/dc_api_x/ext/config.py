"""Base classes for config plugins (placeholder)."""
