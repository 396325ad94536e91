"""tap-dcapix: a Singer tap whose streams delegate to dc-api-x adapters (placeholder)."""
