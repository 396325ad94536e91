"""Base classes for schemas plugins (placeholder)."""
