"""Supplied: registers the guide's ``LoggingAdapter``."""


def register_adapters(registry):
    registry["logging_adapter"] = "logging_plugin.adapter:LoggingAdapter"
