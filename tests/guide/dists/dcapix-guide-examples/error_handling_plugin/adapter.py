"""Supplied for the guide's error-handling example (``from .adapter import CustomAdapter``)."""

from dc_api_x.ext.adapters import ProtocolAdapter


class CustomAdapter(ProtocolAdapter):
    def __init__(self, url):
        self.url = url

    def request(self, method, path, **kwargs):
        return {"success": True, "data": {"path": path}}
