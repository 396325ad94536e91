"""Supplied for the guide's ``version_plugin``."""

from dc_api_x.ext.adapters import ProtocolAdapter


class CompatibleAdapter(ProtocolAdapter):
    def __init__(self, url):
        self.url = url

    def request(self, method, path, **kwargs):
        return {"success": True, "data": {"compatible": True}}
