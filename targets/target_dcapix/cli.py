"""The ``target-dcapix`` console script: ``TargetDcApiX.cli()``, ending the process without the
interpreter's last garbage-collection pass (:mod:`dc_api_x.process_exit`), with Arrow allocating
through the C library's ``malloc`` (:func:`arrow_system_allocator`)."""

from __future__ import annotations

import os
import sys

__all__ = ["arrow_system_allocator", "main"]


def arrow_system_allocator() -> None:
    """Make Arrow allocate with the C library's ``malloc`` in this (the console script's) process,
    unless ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise — as ``dcapix run`` does (docs/runner.md).

    pyarrow's default mimalloc pool keeps per-thread heaps (the Parquet writer's threads): W3
    (200,000 RECORD lines → Parquet) peaked at 196-201 MiB with it and 160-164 MiB with the system
    pool (docs/benchmarks.md). Set before pyarrow is imported, through the variable pyarrow reads at
    import; if it is imported already, through ``pyarrow.set_memory_pool``. Only the console script:
    a host application that imports :class:`~target_dcapix.target.TargetDcApiX` keeps its pool.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    if "pyarrow" not in sys.modules:
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
        return
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


def main() -> None:
    from dc_api_x.process_exit import freeze_at_exit

    freeze_at_exit()
    arrow_system_allocator()
    from target_dcapix.target import TargetDcApiX

    TargetDcApiX.cli()


if __name__ == "__main__":  # pragma: no cover
    main()
