"""Supplied: registers the guide's ``ConfigurableAdapter`` (the guide shows the class, not a plugin
module for it)."""


def register_adapters(registry):
    registry["configurable"] = "pydantic_plugin.adapter:ConfigurableAdapter"
