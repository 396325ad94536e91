"""``dcapix run`` tunes CPython's cyclic GC for the rest of its process (runner/startup.py)."""

from __future__ import annotations

import gc

import pytest

from dc_api_x.runner import startup as cli


@pytest.fixture
def restore_gc():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_gc_freezes_startup_and_raises_young_threshold(restore_gc):
    gc.set_threshold(700, 10, 10)
    objects = gc.get_freeze_count()
    cli.tune_gc()
    assert gc.get_freeze_count() > objects
    assert gc.get_threshold() == (cli.GC_GEN0_THRESHOLD, 10, 10)
    gc.collect()  # cycles are still collected
    a: list[object] = []
    a.append(a)
    del a
    assert gc.collect() >= 1


def test_tune_gc_keeps_a_higher_threshold_and_a_disabled_collector(restore_gc):
    gc.set_threshold(50_000, 10, 10)
    cli.tune_gc()
    assert gc.get_threshold()[0] == 50_000
    gc.set_threshold(0, 10, 10)
    cli.tune_gc()
    assert gc.get_threshold()[0] == 0
