# my_plugin/__init__.py
"""
DCApiX plugin for XYZ protocol.

This plugin provides:
- XYZ protocol adapter
- Authentication for XYZ services
- Data transformation for XYZ formats

Requirements:
- dc-api-x>=0.2.0
- xyz-client>=1.5.0

Environment variables:
- XYZ_API_KEY: Required API key for XYZ services
- XYZ_TIMEOUT: Optional timeout in seconds (default: 30)
"""

def register_adapters(registry):
    """
    Register the XYZ protocol adapter.
    
    The adapter supports the following features:
    - Automatic authentication with API key
    - Connection pooling
    - Rate limiting with backoff
    """
    from .xyz_adapter import XyzAdapter
    registry["xyz"] = XyzAdapter
