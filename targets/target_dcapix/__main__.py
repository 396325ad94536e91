"""``python -m target_dcapix`` runs the target's CLI (as the ``target-dcapix`` console script)."""

from __future__ import annotations

from target_dcapix.cli import main

if __name__ == "__main__":
    main()
