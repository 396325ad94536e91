"""``FACTORY``: the default of a ``default_factory`` field in the ``__init__`` of a dataclass whose
methods are written out (issue 15).

``@dataclass`` builds ``__init__``, ``__repr__``, ``__eq__`` (and a frozen class's ``__hash__``) by
compiling their source text when the class is created: ~2 M instructions per class, ~4 M for a frozen
one, on every start of a process (a 20,000-row ``dcapix run`` creates a dozen of ours). The classes
on the run's path therefore declare ``@dataclass(init=False, repr=False, eq=False)`` (``frozen`` kept)
and carry those methods in their source, as ``@dataclass`` would generate them; the dataclass field
machinery (``fields()``, ``replace()``, ``asdict()``, ``__match_args__``) is unchanged.
``tests/core/test_written_dataclasses.py`` checks each against the dataclass generated from its fields.

A written ``__init__`` takes :data:`FACTORY` as the default of such a field (shown as ``<factory>``,
as ``@dataclass`` shows it) and calls the factory when it is given.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FACTORY"]


class _Factory:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


#: the default of a ``default_factory`` field's ``__init__`` parameter
FACTORY: Any = _Factory()
