"""A paginator that asks for the next page with ``?from=<records seen so far>``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dc_api_x.ext.pagination import PageRequest, Paginator, PaginatorOptions


class SkipOptions(PaginatorOptions):
    param: str = "from"


class SkipPaginator(Paginator[int]):
    name = "example_pages"
    Options = SkipOptions

    def prepare(self, request: PageRequest) -> None:
        if self.current_value is not None:
            request.params[self.options.param] = self.current_value

    def get_next(self, response: Any, records: Sequence[Any]) -> int | None:
        return self.items
