"""The ``tap-dcapix`` console script: a bare ``--about`` is answered from a cache without importing
singer-sdk (:mod:`dc_api_x.singer_about`); every other command line runs ``TapDcApiX.cli()``."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    from dc_api_x.process_exit import freeze_at_exit
    from dc_api_x.singer_about import run_with_cached_about

    freeze_at_exit()  # no last garbage-collection pass over everything the run built

    run_with_cached_about("tap-dcapix", "tap_dcapix.tap:TapDcApiX", packages=("tap_dcapix",))


if __name__ == "__main__":  # pragma: no cover
    main()
