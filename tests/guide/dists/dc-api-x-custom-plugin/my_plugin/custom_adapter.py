# my_plugin/custom_adapter.py
from dc_api_x.ext.adapters import ProtocolAdapter

class CustomAdapter(ProtocolAdapter):
    """A custom protocol adapter."""
    
    def __init__(self, connection_string):
        self.connection_string = connection_string
        self.client = None  # Would initialize actual client here
    
    def request(self, method, path, **kwargs):
        """Implement the request method required by ProtocolAdapter."""
        # Implementation details
        result = {"success": True, "data": {"sample": "data"}}
        return result
        
    def close(self):
        """Clean up resources."""
        if self.client:
            self.client.close()
