"""``dcapix meltano-snippet`` (placeholder until implemented)."""
