"""Base classes for pagination plugins (placeholder)."""
