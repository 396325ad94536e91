# lifecycle_plugin/__init__.py
"""Plugin with lifecycle management."""
import atexit

# Track resources that need cleanup
_resources = []

def register_adapters(registry):
    """Register adapters with lifecycle management."""
    from .managed_adapter import ManagedAdapter
    
    # Initialize adapter factory
    adapter_factory = ManagedAdapter.create_factory()
    _resources.append(adapter_factory)
    
    # Register the adapter
    registry["managed_protocol"] = adapter_factory.create_adapter
    
    # Register cleanup on exit
    atexit.register(cleanup_resources)

def cleanup_resources():
    """Clean up all resources when Python exits."""
    for resource in _resources:
        resource.cleanup()
    _resources.clear()
