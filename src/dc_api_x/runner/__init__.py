"""The runner: ``dcapix run`` pipelines (placeholder until implemented)."""
