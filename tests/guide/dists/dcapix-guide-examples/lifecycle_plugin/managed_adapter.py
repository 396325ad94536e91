"""Supplied for the guide's ``lifecycle_plugin``: ``ManagedAdapter.create_factory()`` returns a factory
whose bound method ``create_adapter`` the plugin registers, and whose ``cleanup()`` closes every
adapter it made (the plugin calls it at exit)."""

import os

from dc_api_x.ext.adapters import ProtocolAdapter


class ManagedAdapter(ProtocolAdapter):
    def __init__(self, url, pool_size=2):
        self.url = url
        self.pool_size = pool_size
        self.closed = False

    def request(self, method, path, **kwargs):
        return {"success": True, "data": {"url": self.url, "path": path, "pool_size": self.pool_size}}

    def close(self):
        self.closed = True

    @classmethod
    def create_factory(cls):
        return _Factory(cls)


class _Factory:
    def __init__(self, adapter_cls):
        self.adapter_cls = adapter_cls
        self.adapters = []

    def create_adapter(self, url, pool_size=2):
        adapter = self.adapter_cls(url, pool_size=pool_size)
        self.adapters.append(adapter)
        return adapter

    def cleanup(self):
        for adapter in self.adapters:
            adapter.close()
        marker = os.environ.get("GUIDE_LIFECYCLE_MARKER")
        if marker:  # lets a test see, from outside the process, that the cleanup ran at exit
            with open(marker, "a") as fh:
                fh.write(f"cleaned {len(self.adapters)}\n")
