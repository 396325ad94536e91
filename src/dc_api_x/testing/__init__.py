"""The test kit for plugin authors (and for dc-api-x's own adapters).

Two things, in the spirit of singer-sdk's ``get_tap_test_class``:

* **An isolated plugin set** — :func:`isolated_plugins` (a context manager) and
  :func:`plugin_set_fixture` (a pytest fixture factory): a fresh set holding the built-ins and the
  plugins you give, no entry points of the environment, made current for the test (so
  ``create_adapter``, ``ApiClient``, ``dcapix run`` code paths see it) and closed afterwards, with
  whatever set was current before put back.
* **A standard adapter test suite** — :func:`get_adapter_test_class` returns a pytest test class
  for one registered adapter and a config: construction through the registry, unknown options,
  discovery, reading (batches, ``limit``), the pagination contract (resuming from any batch's
  bookmark gives exactly the rest; ``ApiClient.paginate`` over request-side adapters), writing
  where supported (and reading it back), ``close()`` idempotent, errors one line with secrets
  redacted. See :mod:`dc_api_x.testing.adapters`.

::

    # tests/test_my_adapter.py
    from dc_api_x.testing import get_adapter_test_class, plugin_set_fixture
    import my_plugin

    TestXyzAdapter = get_adapter_test_class(
        "xyz", {"url": "xyz://127.0.0.1:7000"}, plugins=[my_plugin], expected_records=100,
    )

``pytest_plugins = ["dc_api_x.testing"]`` in a ``conftest.py`` adds the fixture ``dcapix_plugins``
(the built-ins only, isolated). The kit needs pytest (it is for test suites).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .adapters import AdapterTestSuite, get_adapter_test_class

if TYPE_CHECKING:  # pragma: no cover
    from ..plugins import PluginSet

__all__ = [
    "AdapterTestSuite",
    "dcapix_plugins",
    "get_adapter_test_class",
    "isolated_plugins",
    "plugin_set_fixture",
]


@contextlib.contextmanager
def isolated_plugins(
    *plugins: Any,
    builtins: bool = True,
    entry_points: bool = False,
    blocked: Iterable[str] = (),
    lazy: bool = True,
) -> Iterator[PluginSet]:
    """A fresh plugin set — the built-ins (``builtins``) and ``plugins``, no entry points unless
    ``entry_points`` — current inside the block; at exit it is closed (its cleanups run) and the set
    that was current before is current again (not closed)."""
    from .. import plugins as plugins_mod

    ps = plugins_mod.enable_plugins(
        plugins=plugins,
        builtins=builtins,
        entry_points=entry_points,
        blocked=blocked,
        lazy=lazy,
        make_current=False,
    )
    previous = plugins_mod._swap_current(ps)
    try:
        yield ps
    finally:
        plugins_mod._swap_current(previous)
        ps.close()


def plugin_set_fixture(*plugins: Any, name: str | None = None, **kwargs: Any) -> Callable[..., Any]:
    """A pytest fixture yielding :func:`isolated_plugins` of ``plugins`` (``kwargs`` as there)::

    # conftest.py
    my_plugins = plugin_set_fixture(my_plugin)

    def test_registers(my_plugins):
        assert "xyz" in my_plugins.adapters
    """

    def fixture() -> Iterator[PluginSet]:
        with isolated_plugins(*plugins, **kwargs) as ps:
            yield ps

    return pytest.fixture(name=name)(fixture) if name else pytest.fixture(fixture)


@pytest.fixture
def dcapix_plugins() -> Iterator[PluginSet]:
    """The built-in plugins only, isolated (``pytest_plugins = ["dc_api_x.testing"]`` adds it)."""
    with isolated_plugins() as ps:
        yield ps
