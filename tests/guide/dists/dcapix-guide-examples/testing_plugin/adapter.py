# testing_plugin/adapter.py
class TestableAdapter:
    """Adapter designed for testability."""
    
    def __init__(self, client=None, **kwargs):
        # Accept client injection for testing
        self.client = client or self._create_real_client(**kwargs)
    
    def _create_real_client(self, **kwargs):
        # Create actual client - can be mocked in tests
        return RealClient(**kwargs)
    
    def request(self, method, path, **kwargs):
        # Delegate to client, allowing for easy mocking
        return self.client.make_request(method, path, **kwargs)


# --- supplied: the helper the guide leaves undefined (not part of the guide's text) ---------------
class RealClient:
    """A real HTTP client (httpx) for ``url``: ``make_request`` returns the guide's result shape."""

    def __init__(self, url, **options):
        import httpx

        self.http = httpx.Client(base_url=url, timeout=options.get("timeout", 10))

    def make_request(self, method, path, **kwargs):
        params = kwargs.get("params") or None
        headers = kwargs.get("headers") or None
        response = self.http.request(method, path, params=params, headers=headers)
        return {"success": response.is_success, "status": response.status_code, "data": response.json()}
