"""``python -m tap_dcapix``: the same as the ``tap-dcapix`` console script."""

from __future__ import annotations

from tap_dcapix.cli import main

main()
