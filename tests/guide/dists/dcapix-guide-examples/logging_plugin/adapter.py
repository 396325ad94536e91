import logfire
from dc_api_x.ext.adapters import ProtocolAdapter

class LoggingAdapter(ProtocolAdapter):
    """Adapter with comprehensive logging."""
    
    def __init__(self, **kwargs):
        self.name = kwargs.get("name", self.__class__.__name__)
        logfire.info(f"Initializing {self.name} adapter", **kwargs)
        # Initialize actual adapter
        
    def request(self, method, path, **kwargs):
        """Log requests and responses."""
        with logfire.context(adapter=self.name, method=method, path=path):
            logfire.debug("Making request")
            
            try:
                response = self._make_actual_request(method, path, **kwargs)
                logfire.info("Request successful", status=response.get("status"))
                return response
            except Exception as e:
                logfire.exception("Request failed", error_type=type(e).__name__)
                raise


# --- supplied: the helper the guide leaves undefined (not part of the guide's text) ---------------
def _make_actual_request(self, method, path, **kwargs):
    return {"status": 200, "data": {"method": method, "path": path}}


LoggingAdapter._make_actual_request = _make_actual_request
