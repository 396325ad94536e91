"""Base classes for auth plugins (placeholder)."""
