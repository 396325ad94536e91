# conditional_plugin/__init__.py
"""Plugin that registers conditionally."""
import os

def register_adapters(registry):
    """Register adapters only if conditions are met."""
    # Check for feature flag
    if os.environ.get("ENABLE_EXPERIMENTAL_ADAPTER") != "1":
        return  # Skip registration if feature flag is not set
    
    # Try to import optional dependency
    try:
        import some_optional_package
    except ImportError:
        # Log warning but don't fail
        import logging
        logging.warning("Optional dependency 'some_optional_package' not found, "
                      "experimental adapter not registered")
        return
    
    # Import and register the adapter if dependencies are available
    from .experimental_adapter import ExperimentalAdapter
    registry["experimental"] = ExperimentalAdapter
