"""Builds the optional native RECORD-line scanner (``dc_api_x.arrow._recordscan``) and the optional
PostgreSQL binary COPY decoder (``dc_api_x.adapters.sql._pgcopy``), plain C, no library.

Everything else is in pyproject.toml. When no C compiler (or no Python headers) is at hand the
build goes on without the extensions: target-dcapix then reads RECORD lines through its Python column
path (msgspec), and ``dc_api_x.arrow.native.status()`` gives the reason; PostgreSQL tables are read
through the ADBC driver (``dc_api_x.adapters.sql.pgcopy.status()``).
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
            self.warn(f"native extensions not built ({exc}); the Python column path and ADBC reads are used")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, LinkError
            self.warn(f"{ext.name} not built ({exc}); its Python or ADBC path is used")


setup(
    ext_modules=[
        Extension(
            "dc_api_x.arrow._recordscan",
            ["src/dc_api_x/arrow/_recordscan.c"],
            extra_compile_args=["-O2", "-std=c99"],
            optional=True,
        ),
        Extension(
            "dc_api_x.adapters.sql._pgcopy",
            ["src/dc_api_x/adapters/sql/_pgcopy.c"],
            extra_compile_args=["-O2", "-std=c99"],
            optional=True,
        ),
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
