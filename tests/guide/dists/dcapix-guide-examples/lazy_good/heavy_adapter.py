"""Supplied for the guide's lazy-loading example: a module that is expensive to import (it imports
a real heavy library), which the guide's recommended pattern keeps out of ``enable_plugins()``."""

import sqlalchemy  # noqa: F401  - the heavy dependency

from dc_api_x.ext.adapters import ProtocolAdapter


class HeavyAdapter(ProtocolAdapter):
    def __init__(self, url):
        self.url = url

    def request(self, method, path, **kwargs):
        return {"success": True, "data": {"heavy": True}}
