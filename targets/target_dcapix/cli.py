"""The ``target-dcapix`` console script: ``TargetDcApiX.cli()``, ending the process without the
interpreter's last garbage-collection pass (:mod:`dc_api_x.process_exit`), with Arrow allocating
through the C library's ``malloc`` (:func:`dc_api_x.runner.startup.arrow_system_allocator`, as
``dcapix run``: W3 peaked at 196-201 MiB with pyarrow's default mimalloc pool, 160-164 MiB with the
system pool) and no cyclic garbage collection during the start-up (:func:`gc_off_for_startup`)."""

from __future__ import annotations

import gc

__all__ = ["gc_off_for_startup", "main", "startup_done"]

_gc_off_for_startup = False


def gc_off_for_startup() -> None:
    """Turn the cyclic garbage collector off until :func:`startup_done` (called once the target is
    built, before the first line is read).

    The start-up (singer-sdk, pyarrow, pydantic, the adapter: ~150 young collections, one full) spent
    0.08-0.10 of its ~0.55 CPU-s in the collector, tracing the objects the imports build, which live
    until the process ends. Only the console script: a host application keeps its collector."""
    global _gc_off_for_startup
    if gc.isenabled():
        gc.disable()
        _gc_off_for_startup = True


def startup_done() -> None:
    """Turn the collector back on if :func:`gc_off_for_startup` turned it off, after moving what the
    start-up built to the permanent generation (``gc.freeze``, as ``dcapix run`` does): never
    collected, those objects would otherwise all be young, and every later collection (the target
    collects after each drain; the reader turns the collector off while it reads lines) would trace
    them again."""
    global _gc_off_for_startup
    if _gc_off_for_startup:
        _gc_off_for_startup = False
        gc.freeze()
        gc.enable()


def main() -> None:
    gc_off_for_startup()
    from dc_api_x.process_exit import freeze_at_exit
    from dc_api_x.runner.startup import arrow_system_allocator

    freeze_at_exit()
    arrow_system_allocator()
    from target_dcapix.target import TargetDcApiX

    TargetDcApiX.cli()


if __name__ == "__main__":  # pragma: no cover
    main()
