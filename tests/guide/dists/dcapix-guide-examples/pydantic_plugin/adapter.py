from pydantic import BaseModel, Field
from dc_api_x.ext.adapters import ProtocolAdapter

class CustomAdapterConfig(BaseModel):
    """Configuration for CustomAdapter."""
    host: str = Field(..., description="Host address")
    port: int = Field(8080, description="Port number")
    timeout: int = Field(30, description="Connection timeout in seconds")
    use_ssl: bool = Field(True, description="Whether to use SSL")

class ConfigurableAdapter(ProtocolAdapter):
    """Adapter that uses Pydantic for configuration."""
    
    def __init__(self, **kwargs):
        # Validate configuration with Pydantic
        self.config = CustomAdapterConfig(**kwargs)
        
        # Use validated configuration
        connection_string = f"{'https' if self.config.use_ssl else 'http'}://{self.config.host}:{self.config.port}"
        self.client = self._create_client(connection_string, self.config.timeout)


# --- supplied: the helper the guide leaves undefined (not part of the guide's text) ---------------
def _create_client(self, connection_string, timeout):
    """A real HTTP client for the configured host (httpx, imported only here)."""
    import httpx

    return httpx.Client(base_url=connection_string, timeout=timeout)


ConfigurableAdapter._create_client = _create_client
