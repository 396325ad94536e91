"""The ``tap-dcapix`` console script: a bare ``--about`` is answered from a cache without importing
singer-sdk (:mod:`dc_api_x.singer_about`); every other command line runs ``TapDcApiX.cli()``, with
no cyclic garbage collection during the start-up (:func:`gc_off_for_startup`)."""

from __future__ import annotations

import gc

__all__ = ["gc_off_for_startup", "main", "startup_done"]

_gc_off_for_startup = False


def gc_off_for_startup() -> None:
    """Turn the cyclic garbage collector off until :func:`startup_done` (called once the tap is
    built, before the sync). The start-up's imports build objects that live until the process
    ends; the target's start-up spent 0.08-0.10 of its ~0.55 CPU-s tracing them
    (:func:`target_dcapix.cli.gc_off_for_startup`). Only the console script."""
    global _gc_off_for_startup
    if gc.isenabled():
        gc.disable()
        _gc_off_for_startup = True


def startup_done() -> None:
    """Turn the collector back on if :func:`gc_off_for_startup` turned it off, after moving what the
    start-up built to the permanent generation (``gc.freeze``), so later collections do not trace
    it again."""
    global _gc_off_for_startup
    if _gc_off_for_startup:
        _gc_off_for_startup = False
        gc.freeze()
        gc.enable()


def main() -> None:
    from dc_api_x.process_exit import freeze_at_exit
    from dc_api_x.singer_about import run_with_cached_about

    gc_off_for_startup()
    freeze_at_exit()  # no last garbage-collection pass over everything the run built

    run_with_cached_about("tap-dcapix", "tap_dcapix.tap:TapDcApiX", packages=("tap_dcapix",))


if __name__ == "__main__":  # pragma: no cover
    main()
