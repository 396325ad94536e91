"""Keycloak's ``first``/``max`` paging (the admin REST API's list endpoints).

``GET /admin/realms/{realm}/users?first=0&max=100`` returns a JSON array. Keycloak applies
``first``/``max`` in the database query and may then leave out entries the caller is not allowed
to see (fine-grained admin permissions), so a page can be shorter than ``max`` while more pages
follow. This paginator therefore moves ``first`` by ``max`` (not by the records received, which
would read entries twice) and stops on an empty page; set ``stop_on_short_page: true`` to save that
last request when the caller sees everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from dc_api_x.ext.pagination import PageRequest, Paginator, PaginatorOptions

__all__ = ["KeycloakPaginator", "KeycloakPaginatorOptions"]


class KeycloakPaginatorOptions(PaginatorOptions):
    """Options of the ``keycloak`` paginator."""

    max: int = Field(default=100, ge=1, description="page size (Keycloak's 'max')")
    first: int = Field(default=0, ge=0, description="offset of the first page (Keycloak's 'first')")
    first_param: str = Field(default="first", min_length=1)
    max_param: str = Field(default="max", min_length=1)
    stop_on_short_page: bool = Field(
        default=False,
        description="a page shorter than 'max' is the last (only when no entry is hidden from the caller)",
    )


class KeycloakPaginator(Paginator[int]):
    """``?first=N&max=M``; the next ``first`` is ``N + M``. Stops on an empty page (or, with
    ``stop_on_short_page``, on a page shorter than ``max``) and at the shared stop conditions."""

    name = "keycloak"
    Options = KeycloakPaginatorOptions

    def start_value(self) -> int:
        return int(self.options.first)

    def prepare(self, request: PageRequest) -> None:
        request.params[self.options.first_param] = self.current_value
        request.params[self.options.max_param] = self.options.max

    def has_more(self, response: Any, records: Sequence[Any]) -> bool:
        if not super().has_more(response, records):
            return False
        if not records:  # even with stop_on_empty: false, an empty page past the end is the end
            return False
        return not (self.options.stop_on_short_page and len(records) < self.options.max)

    def get_next(self, response: Any, records: Sequence[Any]) -> int:
        return int(self.current_value or 0) + int(self.options.max)
