def register_adapters(registry):
    try:
        from .adapter import CustomAdapter
        registry["custom"] = CustomAdapter
    except ImportError as e:
        import logging
        logging.warning(f"Could not register custom adapter: {e}")
        # Continue without failing - core functionality remains intact
