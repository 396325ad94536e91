# advanced_plugin/__init__.py
"""Advanced DCApiX plugin."""

def register_adapters(registry):
    """Register custom adapters."""
    from .custom_adapter import CustomAdapter
    registry["custom_protocol"] = CustomAdapter

def register_auth_providers(registry):
    """Register custom auth providers."""
    from .custom_auth import CustomAuthProvider
    registry["custom_auth"] = CustomAuthProvider

def register_transforms(registry):
    """Register custom transforms."""
    from .custom_transform import CustomTransformProvider
    registry["custom_transform"] = CustomTransformProvider
