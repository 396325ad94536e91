# Environment variables
import os

# Config files
import json
from pathlib import Path

def get_plugin_config():
    """Get plugin configuration from multiple sources."""
    # Default config
    config = {
        "timeout": 30,
        "max_connections": 10,
        "retry": True
    }
    
    # Override from config file
    config_file = Path.home() / ".config" / "dcapix" / "plugins" / "custom.json"
    if config_file.exists():
        with open(config_file) as f:
            config.update(json.load(f))
    
    # Override from environment variables
    if "CUSTOM_TIMEOUT" in os.environ:
        config["timeout"] = int(os.environ["CUSTOM_TIMEOUT"])
    
    return config
