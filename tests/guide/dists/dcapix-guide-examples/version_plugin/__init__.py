# version_plugin/__init__.py
"""Version-aware plugin."""
import importlib.metadata
from packaging import version

def register_adapters(registry):
    """Register adapters with version check."""
    # Check dc-api-x version
    core_version = version.parse(importlib.metadata.version("dc-api-x"))
    required_version = version.parse("0.2.0")
    
    if core_version < required_version:
        import warnings
        warnings.warn(
            f"Plugin requires dc-api-x>=0.2.0, but found {core_version}. "
            "Some features may not work correctly."
        )
    
    # Register the adapter
    from .compatible_adapter import CompatibleAdapter
    registry["compatible_protocol"] = CompatibleAdapter
