"""A pipeline config running the fake Singer tap and target of ``tests/runner/singer_fakes`` as real
processes (``dcapix run --via-singer``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["FAKES", "fake_singer_pipe"]

FAKES = Path(__file__).resolve().parents[1] / "runner" / "singer_fakes"


def fake_singer_pipe(out: Path, rows: int, **tap_extra: Any) -> dict[str, Any]:
    """Pipeline ``p``: the fake tap emitting ``rows`` records (``tap_extra``: more tap config, e.g.
    ``sleep``, ``state_every``, ``crash_at``), the fake target writing their ids to ``out``."""
    return {
        "p": {
            "source": {"adapter": "t_sqlite_src", "path": "unused"},
            "destination": {"adapter": "t_sqlite_dst", "path": "unused"},
            "singer": {
                "tap": f"{sys.executable} {FAKES / 'fake_tap.py'}",
                "target": f"{sys.executable} {FAKES / 'fake_target.py'}",
                "tap_config": {"rows": rows, **tap_extra},
                "target_config": {"path": str(out)},
            },
        }
    }
