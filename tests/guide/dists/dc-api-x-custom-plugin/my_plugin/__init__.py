# my_plugin/__init__.py
"""Example DCApiX plugin."""

def register_adapters(registry):
    """Register custom adapters with DCApiX."""
    from .custom_adapter import CustomAdapter
    registry["custom_protocol"] = CustomAdapter
