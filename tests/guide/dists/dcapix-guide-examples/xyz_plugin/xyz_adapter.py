"""Supplied for the guide's documentation example: reads ``XYZ_API_KEY`` / ``XYZ_TIMEOUT`` as its
docstring says."""

import os

from dc_api_x.ext.adapters import ProtocolAdapter


class XyzAdapter(ProtocolAdapter):
    def __init__(self, url):
        self.url = url
        self.api_key = os.environ["XYZ_API_KEY"]
        self.timeout = int(os.environ.get("XYZ_TIMEOUT", "30"))

    def request(self, method, path, **kwargs):
        return {"success": True, "data": {"path": path, "timeout": self.timeout}}
