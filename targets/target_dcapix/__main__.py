"""``python -m target_dcapix`` runs the target's CLI."""

from __future__ import annotations

from target_dcapix.target import TargetDcApiX

if __name__ == "__main__":
    TargetDcApiX.cli()
