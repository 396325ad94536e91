"""Base classes for hooks plugins (placeholder)."""
