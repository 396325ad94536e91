"""The ``sqlalchemy_instrumentation`` SQL extension: loads the ``dcapix_instrumentation`` engine
plugin into every engine the SQL adapter creates and reports its figures in the run's metrics."""

from __future__ import annotations

from typing import Any, ClassVar

from dc_api_x.ext.sql import SQLExtension

__all__ = ["InstrumentationExtension"]


class InstrumentationExtension(SQLExtension):
    """Instrumentation of the SQL adapter's engines (:mod:`dc_api_x_sqlalchemy.instrumentation`)."""

    name = "sqlalchemy_instrumentation"
    engine_plugins: ClassVar[tuple[str, ...]] = ("dcapix_instrumentation",)

    def figures(self, engine: Any) -> dict[str, Any] | None:
        from .instrumentation import figures_of

        found = figures_of(engine)
        return {"sql": found.as_dict()} if found is not None else None
