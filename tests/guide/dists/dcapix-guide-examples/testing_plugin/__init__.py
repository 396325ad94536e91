"""Supplied: registers the guide's ``TestableAdapter``."""


def register_adapters(registry):
    registry["testable"] = "testing_plugin.adapter:TestableAdapter"
