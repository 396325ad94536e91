"""Base classes for transforms plugins (placeholder)."""
