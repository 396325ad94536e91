"""Supplied for the guide's ``advanced_plugin`` (which imports ``CustomAdapter`` from here but does not
show it): the guide's own adapter shape — the URL as ``connection_string`` — taking any further option,
so the guide's ApiClient example (``adapter_options={"key": "value"}``) has an adapter that accepts it."""

from dc_api_x.ext.adapters import ProtocolAdapter


class CustomAdapter(ProtocolAdapter):
    """Answers every request with the guide's result shape, echoing what it was given."""

    def __init__(self, connection_string, **settings):
        self.connection_string = connection_string
        self.settings = settings
        self.client = None

    def request(self, method, path, **kwargs):
        return {
            "success": True,
            "data": {
                "url": self.connection_string,
                "method": method,
                "path": path,
                "settings": self.settings,
            },
        }

    def close(self):
        self.closed = True
