"""target-dcapix: a Singer target whose sinks delegate to dc-api-x adapters (placeholder)."""
