"""Supplied for the guide's ``conditional_plugin``."""

from dc_api_x.ext.adapters import ProtocolAdapter


class ExperimentalAdapter(ProtocolAdapter):
    def __init__(self, url):
        self.url = url

    def request(self, method, path, **kwargs):
        return {"success": True, "data": {"experimental": True, "path": path}}
