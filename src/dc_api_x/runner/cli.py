"""``dcapix run`` / ``state`` / ``bench`` (placeholder until implemented)."""
