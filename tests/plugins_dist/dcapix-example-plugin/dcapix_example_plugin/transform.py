"""A transform that upper-cases the string values of chosen fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dc_api_x.types import Batch


class UpperTransform:
    name = "example_upper"

    def __init__(self, options: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        opts = {**dict(options or {}), **kwargs}
        self.fields: list[str] = list(opts.get("fields", []))

    def apply(self, batch: Batch) -> Batch:
        out = []
        for rec in batch.records:
            rec = dict(rec)
            for f in self.fields:
                if isinstance(rec.get(f), str):
                    rec[f] = rec[f].upper()
            out.append(rec)
        return batch.with_records(out)

    __call__ = apply
