# Good - lazy import
def register_adapters(registry):
    # Only import when needed, reducing startup time
    from .heavy_adapter import HeavyAdapter
    registry["heavy"] = HeavyAdapter
