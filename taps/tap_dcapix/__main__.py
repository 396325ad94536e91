"""``python -m tap_dcapix``: the same as the ``tap-dcapix`` console script."""

from __future__ import annotations

from tap_dcapix.tap import TapDcApiX

TapDcApiX.cli()
