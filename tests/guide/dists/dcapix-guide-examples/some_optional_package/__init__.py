"""Supplied: the optional dependency the guide's ``conditional_plugin`` tries to import."""
