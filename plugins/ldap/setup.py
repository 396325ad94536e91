"""Builds the optional native entry decoder (``dc_api_x_ldap._berpage``, plain C, no library).

Everything else is in pyproject.toml. When no C compiler (or no Python headers) is at hand the
build goes on without the extension: the plugin then reads through its backends' own decoders and
``dc_api_x_ldap.native.status()`` gives the reason.
"""

from __future__ import annotations

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Skip the extension, with a warning, when it cannot be compiled."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all (distutils' PlatformError and the like)
            self.warn(f"dc_api_x_ldap._berpage not built ({exc}); the native reader is unavailable")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, LinkError
            self.warn(f"{ext.name} not built ({exc}); the native reader is unavailable")


setup(
    ext_modules=[
        Extension(
            "dc_api_x_ldap._berpage",
            ["src/dc_api_x_ldap/_berpage.c"],
            extra_compile_args=["-O2", "-std=c99"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
